package dnsserver

import (
	"net"

	"golang.org/x/sys/unix"
)

// setSocketBuffers asks for receive and send buffers of size bytes. The
// FORCE options pass net.core.rmem_max and wmem_max when svcdns may (root
// or CAP_NET_ADMIN); otherwise the plain ones, which the kernel caps.
// Neither failing is fatal: the socket keeps the default.
func setSocketBuffers(fd, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
	}
}

// queued reports whether a datagram waits in conn's receive queue
// (SIOCINQ: the size of the next one; a datagram of 0 bytes is not seen,
// nor answered anyway).
func queued(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }) != nil {
		return false
	}
	return n > 0
}
