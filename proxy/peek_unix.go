//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// idleProbe finds whether the other end closed (or reset) an idle
// connection, or sent something on it, with one non-blocking peek: one
// system call and no allocation, since init binds what it needs once per
// connection.
type idleProbe struct {
	raw  syscall.RawConn // nil: nothing to peek at
	peek func(fd uintptr) bool
	hit  bool // the last peek found a close, a reset or bytes
}

func (p *idleProbe) init(conn net.Conn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.raw, p.peek = raw, p.peekFD
}

func (p *idleProbe) peekFD(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.hit = n > 0 || err == nil || err != syscall.EAGAIN && err != syscall.EINTR
	return true // never wait for the connection to be readable
}

// closed reports whether the connection is closed, reset, or has bytes to
// read; false when it cannot be peeked at.
func (p *idleProbe) closed() bool {
	if p.raw == nil {
		return false
	}
	if err := p.raw.Read(p.peek); err != nil {
		return true
	}
	return p.hit
}
