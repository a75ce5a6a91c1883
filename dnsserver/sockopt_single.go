//go:build solaris || windows

package dnsserver

import "syscall"

// portSharing: without SO_REUSEPORT (Windows; Solaris and illumos, where
// x/sys/unix does not name it) a second socket cannot share the port, so
// Listen binds one UDP socket, with one reader.
const portSharing = false

// reusePort asks for large buffers on UDP sockets; the port is not shared.
func reusePort(network, address string, c syscall.RawConn) error {
	if network != "udp" && network != "udp4" && network != "udp6" {
		return nil
	}
	return c.Control(func(fd uintptr) { setSocketBuffers(int(fd), udpBufferSize) })
}
