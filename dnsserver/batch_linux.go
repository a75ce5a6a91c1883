//go:build linux && !nommsg

package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn reads and writes batches of datagrams with recvmmsg and
// sendmmsg on the socket's descriptor, through buffers made once. Other
// systems have a portable one (batch_other.go), one datagram a call.
//
// Why not x/net's ipv4.PacketConn.ReadBatch:
// it allocates a *net.UDPAddr per datagram (about 100 bytes a query, a GC
// cycle every 40,000 queries), and it enters each system call as a
// blocking one, so when a sendmmsg of 64 replies runs past 20 µs the
// runtime hands the loop's P to another thread, and with GOMAXPROCS=1 the
// two threads take turns on one core. The socket is non-blocking and
// every call here passes MSG_DONTWAIT, so a call never blocks and is made
// as a raw one; waiting for the socket is left to the runtime's poller
// (syscall.RawConn), as for any Go socket.
type batchConn struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	names []unix.RawSockaddrInet6 // large enough for either family
	oobs  [][]byte                // nil when no control messages are asked for

	out    []unix.Mmsghdr // the replies of a batch
	outIov []unix.Iovec
	// filled is how many headers the last read may have written into
	// (lengths, flags): only those are reset before the next read. At
	// low rates a read takes one datagram, and resetting all 64 headers
	// cost more than answering it.
	filled int

	// The current call's argument and outcome; the closures below are
	// made once, so a call allocates nothing.
	pending []unix.Mmsghdr
	n       int
	err     error
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func newBatchConn(conn *net.UDPConn, batch, bufSize, oobSize int) (*batchConn, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	c := &batchConn{
		rc: rc, hdrs: make([]unix.Mmsghdr, batch), iovs: make([]unix.Iovec, batch), filled: batch,
		bufs: make([][]byte, batch), names: make([]unix.RawSockaddrInet6, batch),
		out: make([]unix.Mmsghdr, batch), outIov: make([]unix.Iovec, batch),
	}
	if oobSize > 0 {
		c.oobs = make([][]byte, batch)
	}
	for i := range c.hdrs {
		c.bufs[i] = make([]byte, bufSize)
		c.iovs[i].Base = &c.bufs[i][0]
		c.iovs[i].SetLen(bufSize)
		h := &c.hdrs[i].Hdr
		h.Iov = &c.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&c.names[i]))
		if c.oobs != nil {
			c.oobs[i] = make([]byte, oobSize)
			h.Control = &c.oobs[i][0]
		}
		c.out[i].Hdr.Iov = &c.outIov[i]
		c.out[i].Hdr.SetIovlen(1)
	}
	c.readFn = func(fd uintptr) bool { return c.call(fd, unix.SYS_RECVMMSG, "recvmmsg") }
	c.writeFn = func(fd uintptr) bool { return c.call(fd, unix.SYS_SENDMMSG, "sendmmsg") }
	return c, nil
}

// call makes one recvmmsg or sendmmsg on c.pending. It returns false, to
// have the poller wait, only when the socket is not ready.
func (c *batchConn) call(fd, trap uintptr, name string) bool {
	for {
		n, _, errno := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&c.pending[0])), uintptr(len(c.pending)), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			c.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			c.err = os.NewSyscallError(name, errno)
			return true
		}
	}
}

// read waits for datagrams and reads up to a batch of them. The error is
// the socket's (a deadline, a close) or the system call's.
func (c *batchConn) read() (int, error) {
	for i := range c.filled {
		h := &c.hdrs[i].Hdr
		h.Namelen = uint32(unsafe.Sizeof(c.names[i]))
		if c.oobs != nil {
			h.SetControllen(len(c.oobs[i]))
		}
		h.Flags = 0
	}
	c.pending, c.n, c.err = c.hdrs, 0, nil
	c.filled = len(c.hdrs)
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, err
	}
	if c.err == nil {
		c.filled = c.n // recvmmsg writes the headers of the datagrams it returns only
	}
	return c.n, c.err
}

// datagram returns the i-th datagram of the last read: its bytes, where it
// came from, its control messages, and whether the kernel cut it.
func (c *batchConn) datagram(i int) (pkt []byte, from netip.AddrPort, oob []byte, truncated bool) {
	h := &c.hdrs[i]
	pkt = c.bufs[i][:h.Len]
	truncated = h.Hdr.Flags&unix.MSG_TRUNC != 0
	if c.oobs != nil {
		oob = c.oobs[i][:h.Hdr.Controllen]
	}
	return pkt, sockaddrAddrPort(&c.names[i], h.Hdr.Namelen), oob, truncated
}

// sockaddrAddrPort reads a sockaddr_in or sockaddr_in6; the zero AddrPort
// for anything else.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, size uint32) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		if size < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), netPort(s4.Port))
	case unix.AF_INET6:
		if size < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 { // a link-local client: replies need the interface
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port as the kernel stores it, in network byte order.
func netPort(p uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p))[:])
}

// setReply makes the k-th outgoing message a reply to the i-th datagram of
// the last read: to its sender (the sockaddr the kernel gave, reused as
// is), with oob as its control message.
func (c *batchConn) setReply(k, i int, reply, oob []byte) {
	c.outIov[k].Base = &reply[0]
	c.outIov[k].SetLen(len(reply))
	h := &c.out[k].Hdr
	h.Name, h.Namelen = c.hdrs[i].Hdr.Name, c.hdrs[i].Hdr.Namelen
	h.Control = nil
	h.SetControllen(0)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// write sends the first n replies set with setReply. A reply that cannot
// go (the kernel refuses its destination) is skipped, as a single write's
// would be lost: the client retries.
func (c *batchConn) write(n int) {
	for sent := 0; sent < n; {
		c.pending, c.n, c.err = c.out[sent:n], 0, nil
		if err := c.rc.Write(c.writeFn); err != nil {
			return // the socket is closed
		}
		if c.err != nil || c.n == 0 {
			sent++
			continue
		}
		sent += c.n
	}
}
