//go:build unix && !solaris

package dnsserver

import (
	"cmp"
	"syscall"

	"golang.org/x/sys/unix"
)

// portSharing: several UDP sockets can share a port (SO_REUSEPORT; not
// on Solaris and illumos, where x/sys/unix does not name it: sockopt_single.go).
const portSharing = true

// reusePort sets SO_REUSEPORT, so that several UDP sockets share a port
// and the kernel spreads datagrams over them, and asks for large buffers.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		if network == "udp" || network == "udp4" || network == "udp6" {
			setSocketBuffers(int(fd), udpBufferSize)
		}
	})
	return cmp.Or(err, serr)
}
