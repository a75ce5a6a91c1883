//go:build !linux || nommsg

package dnsserver

import (
	"net"
	"net/netip"
)

// batchConn is the portable read and write loop of systems without
// recvmmsg and sendmmsg (macOS, the BSDs): one datagram a read, one
// system call a reply, through buffers made once, as miekg/dns's
// udp_no_control.go next to its udp.go. It has the Linux batchConn's
// methods, so the read loop is the same. On Linux the build tag nommsg
// selects it, so its tests run there too (go test -tags nommsg).
type batchConn struct {
	conn    *net.UDPConn
	bufSize int
	buf     []byte // one byte past bufSize: a datagram that fills it was cut
	oob     []byte // nil when no control messages are asked for
	n       int    // the last datagram's length
	oobn    int
	from    netip.AddrPort
	out     []pendingReply
}

type pendingReply struct {
	b, oob []byte
	to     netip.AddrPort
}

func newBatchConn(conn *net.UDPConn, batch, bufSize, oobSize int) (*batchConn, error) {
	c := &batchConn{conn: conn, bufSize: bufSize, buf: make([]byte, bufSize+1), out: make([]pendingReply, 1, batch)}
	if oobSize > 0 {
		c.oob = make([]byte, oobSize)
	}
	return c, nil
}

// read waits for one datagram and reads it. The error is the socket's (a
// deadline, a close) or the system call's.
func (c *batchConn) read() (int, error) {
	n, oobn, _, from, err := c.conn.ReadMsgUDPAddrPort(c.buf, c.oob)
	if err != nil {
		return 0, err
	}
	c.n, c.oobn, c.from = n, oobn, from
	return 1, nil
}

// datagram returns the datagram of the last read (i is 0): its bytes,
// where it came from, its control messages, and whether it was larger
// than the buffer.
func (c *batchConn) datagram(int) (pkt []byte, from netip.AddrPort, oob []byte, truncated bool) {
	if c.oob != nil {
		oob = c.oob[:c.oobn]
	}
	return c.buf[:c.n], c.from, oob, c.n > c.bufSize
}

// setReply makes the k-th outgoing message a reply to the last datagram,
// with oob as its control message.
func (c *batchConn) setReply(k, _ int, reply, oob []byte) {
	c.out[k] = pendingReply{b: reply, oob: oob, to: c.from}
}

// write sends the first n replies set with setReply. A reply that cannot
// go is skipped, as the Linux batch's would be: the client retries.
func (c *batchConn) write(n int) {
	for _, r := range c.out[:n] {
		_, _, _ = c.conn.WriteMsgUDPAddrPort(r.b, r.oob, r.to)
	}
}
