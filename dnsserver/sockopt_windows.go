package dnsserver

import (
	"net"
	"syscall"
)

// setSocketBuffers asks for receive and send buffers of size bytes.
// Failing is not fatal: the socket keeps the default.
func setSocketBuffers(fd, size int) {
	_ = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	_ = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, size)
}

// queued reports nothing queued: a drain at shutdown ends at the first
// quiet window.
func queued(*net.UDPConn) bool { return false }
