//go:build unix && !linux

package dnsserver

import (
	"net"

	"golang.org/x/sys/unix"
)

// setSocketBuffers asks for receive and send buffers of size bytes, which
// the kernel caps at its limit (kern.ipc.maxsockbuf on the BSDs and
// macOS). Failing is not fatal: the socket keeps the default.
func setSocketBuffers(fd, size int) {
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
}

// queued reports whether a datagram waits in conn's receive queue. The
// BSDs and macOS have FIONREAD, which golang.org/x/sys does not name:
// there a drain ends at the first quiet window, as if nothing were queued.
func queued(*net.UDPConn) bool { return false }
