package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Why a read loop of our own: miekg/dns's Server starts a goroutine and
// unpacks a whole message for every datagram, which caps it near 190k
// queries/s per core here however cheap the handler is. Most queries are
// repeats that the answer cache holds as bytes, so this loop parses just
// the header and question from the packet and answers cache hits on the
// reading goroutine, with no allocation. Everything else (misses,
// forwards, malformed or unusual packets) is unpacked by miekg/dns and
// handed to the handler on a goroutine of its own, as miekg/dns would. See
// BENCHMARKS.md for the figures.

const (
	// At shutdown the read loop goes on answering what is queued until the
	// socket has been quiet for drainQuiet, for at most drainMax: queries
	// sent just before SIGTERM are answered, not dropped with the socket.
	drainQuiet = 20 * time.Millisecond
	drainMax   = time.Second
	// maxSlowInFlight bounds the packets being handled off the read loop;
	// past it new ones are dropped (the client retries) instead of piling up
	// goroutines under a flood.
	maxSlowInFlight = 10000
	oobSize         = 128
)

// udpServer serves one UDP socket.
type udpServer struct {
	conn    *net.UDPConn
	handler dns.Handler
	fast    *Handler // nil when handler is not a *Handler: everything goes the slow way
	// wildcard: the socket is bound to 0.0.0.0 or ::, so each reply must
	// leave from the address its query was sent to, or a multi-homed host's
	// clients would drop it.
	wildcard bool
	slots    chan struct{}
	wg       sync.WaitGroup
	closing  atomic.Bool
	stopped  chan struct{} // closed when serve returns
}

func newUDPServer(conn *net.UDPConn, handler dns.Handler) (*udpServer, error) {
	u := &udpServer{conn: conn, handler: handler, slots: make(chan struct{}, maxSlowInFlight), stopped: make(chan struct{})}
	u.fast, _ = handler.(*Handler)
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok && la.IP.IsUnspecified() {
		u.wildcard = true
		// As miekg/dns: ask for each datagram's destination, for both
		// families; an error for one of them is fine.
		err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err4 != nil && err6 != nil {
			return nil, err4
		}
	}
	return u, nil
}

const (
	// batchSize is how many datagrams one system call reads or writes at
	// most. Under load the kernel queue is rarely empty, so one recvmmsg
	// takes what queued while the last batch was answered, and one
	// sendmmsg sends all the replies: two system calls a batch instead of
	// two a query, the main cost per query here.
	batchSize = 64
	// maxQuerySize is the largest query read: a query has one question
	// and at most an OPT and a TSIG, far below this. A larger datagram is
	// cut by the kernel (MSG_TRUNC) and dropped.
	maxQuerySize = 4096
)

// serve reads until shutdown and returns nil then, or the read error that
// stopped it.
func (u *udpServer) serve() error {
	defer close(u.stopped)
	oob := 0
	if u.wildcard {
		oob = oobSize
	}
	mc, err := newMMsgConn(u.conn, batchSize, maxQuerySize, oob)
	if err != nil {
		return err
	}
	replies := make([][]byte, batchSize)
	for i := range replies {
		replies[i] = make([]byte, 0, DefaultMaxUDPSize)
	}
	var lastOOB, lastReply []byte // the reply control message of the last destination
	var drainEnd time.Time
	for {
		n, err := mc.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if u.closing.Load() {
					return nil // quiet for drainQuiet: every queued query answered
				}
				continue
			}
			if u.closing.Load() {
				return nil
			}
			return err
		}
		if u.closing.Load() {
			// Shutting down: the datagrams already queued in the kernel were
			// sent before the signal; answer them, until the socket has been
			// quiet for drainQuiet or drainMax has passed.
			now := time.Now()
			if drainEnd.IsZero() {
				drainEnd = now.Add(drainMax)
			}
			if now.After(drainEnd) {
				return nil
			}
			_ = u.conn.SetReadDeadline(now.Add(drainQuiet))
		}
		out := 0
		for i := range n {
			pkt, from, oob, truncated := mc.datagram(i)
			if truncated || !from.IsValid() {
				continue
			}
			var replyOOB []byte
			if u.wildcard {
				if !bytes.Equal(oob, lastOOB) {
					lastOOB = append(lastOOB[:0], oob...)
					lastReply = sourceOOB(lastOOB)
				}
				replyOOB = lastReply
			}
			if u.fast != nil {
				if reply, ok := u.fast.packetReply(replies[i][:0], pkt, from.Addr().Unmap()); ok {
					replies[i] = reply
					mc.setReply(out, i, reply, replyOOB)
					out++
					continue
				}
			}
			u.slow(pkt, from, replyOOB)
		}
		mc.write(out)
	}
}

// slow hands a packet to the handler on a goroutine of its own.
func (u *udpServer) slow(pkt []byte, from netip.AddrPort, replyOOB []byte) {
	select {
	case u.slots <- struct{}{}:
	default:
		if u.fast != nil {
			u.fast.met.overload.Inc()
		}
		return
	}
	p := append([]byte(nil), pkt...)
	u.wg.Add(1)
	go func() {
		defer func() { <-u.slots; u.wg.Done() }()
		w := &udpWriter{u: u, to: from, oob: replyOOB, rateChecked: u.fast != nil}
		serveWire(u.handler, w, p)
	}()
}

// shutdown stops reading, waits (within ctx) for the packets being handled
// so their replies go out, then closes the socket.
func (u *udpServer) shutdown(ctx context.Context) error {
	u.closing.Store(true)
	_ = u.conn.SetReadDeadline(time.Now().Add(drainQuiet))
	done := make(chan struct{})
	go func() { <-u.stopped; u.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = u.conn.Close()
	return err
}

// serveWire does what miekg/dns's server does with a datagram: responses
// are dropped, other opcodes get NOTIMP, anything that is not one plain
// query or does not unpack gets FORMERR, and the rest goes to the handler.
func serveWire(h dns.Handler, w dns.ResponseWriter, p []byte) {
	if len(p) < headerLen {
		return // not even a header: no reply can be addressed
	}
	dh := dns.Header{
		Id: uint16(p[0])<<8 | uint16(p[1]), Bits: uint16(p[2])<<8 | uint16(p[3]),
		Qdcount: uint16(p[4])<<8 | uint16(p[5]), Ancount: uint16(p[6])<<8 | uint16(p[7]),
		Nscount: uint16(p[8])<<8 | uint16(p[9]), Arcount: uint16(p[10])<<8 | uint16(p[11]),
	}
	reject := func(rcode int) {
		m := new(dns.Msg)
		m.Id, m.Response, m.Opcode, m.Rcode = dh.Id, true, int(dh.Bits>>11)&0xF, rcode
		_ = w.WriteMsg(m)
	}
	switch acceptQuery(dh) {
	case dns.MsgIgnore:
		return
	case dns.MsgRejectNotImplemented:
		reject(dns.RcodeNotImplemented)
		return
	case dns.MsgReject:
		reject(dns.RcodeFormatError)
		return
	}
	req := new(dns.Msg)
	if !completeMessage(p) || req.Unpack(p) != nil {
		reject(dns.RcodeFormatError)
		return
	}
	h.ServeDNS(w, req)
}

// sourceOOB is the control message that sends a reply from the address
// its query arrived at (the destination in oob).
func sourceOOB(oob []byte) []byte {
	cm6 := new(ipv6.ControlMessage)
	if cm6.Parse(oob) == nil && cm6.Dst != nil && cm6.Dst.To4() == nil {
		return (&ipv6.ControlMessage{Src: cm6.Dst}).Marshal()
	}
	cm4 := new(ipv4.ControlMessage)
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		return (&ipv4.ControlMessage{Src: cm4.Dst}).Marshal()
	}
	return nil
}

// udpWriter is the dns.ResponseWriter of a packet taken the slow way.
type udpWriter struct {
	u   *udpServer
	to  netip.AddrPort
	oob []byte
	// rateChecked: the read loop already charged this packet to the rate
	// limiter.
	rateChecked bool
}

var _ dns.ResponseWriter = (*udpWriter)(nil)

func (w *udpWriter) LocalAddr() net.Addr  { return w.u.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(w.to) }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) {
	n, _, err := w.u.conn.WriteMsgUDPAddrPort(b, w.oob, w.to)
	return n, err
}
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}

// packetReply answers a query straight from its packet when it is a plain
// query whose answer is cached: the reply is appended to dst. ok is false
// when the packet must go the slow way.
func (h *Handler) packetReply(dst, pkt []byte, client netip.Addr) (reply []byte, ok bool) {
	cq, qend, ok := parsePlainQuery(pkt)
	if !ok {
		return dst, false
	}
	if h.limiter != nil && !h.limiter.Allow(client) {
		return h.slipPacket(dst, pkt[:qend]), true
	}
	if cq.edns > 0 {
		cq.size = max(minUDPSize, min(cq.size, h.maxUDP))
	} else {
		cq.size = minUDPSize
	}
	if b := h.fromCache(dst, &cq, client, false); b != nil {
		return b, true
	}
	return dst, false
}

// slipPacket is slip for a parsed packet (header and question): an empty
// reply with TC set.
func (h *Handler) slipPacket(dst, query []byte) []byte {
	h.met.rateLimited.Inc()
	b := append(dst, query...)
	b[2] = b[2]&^0x04 | 0x80 | 0x02 // QR, TC; not AA
	b[3] &= 0x10                    // CD kept; RA, Z, AD, rcode cleared
	b[6], b[7], b[8], b[9], b[10], b[11] = 0, 0, 0, 0, 0, 0
	qtype := uint16(query[len(query)-4])<<8 | uint16(query[len(query)-3])
	h.met.countRcode(qtype, dns.RcodeSuccess)
	return b
}

// parsePlainQuery reads a query that the cache can answer: QR clear,
// opcode QUERY, one question of class IN with an uncompressed name,
// nothing else but at most one OPT of version 0, and nothing after it.
// qend is where the question ends. Anything else is left to miekg/dns.
func parsePlainQuery(p []byte) (cq cacheQuery, qend int, ok bool) {
	if len(p) < headerLen+5 ||
		p[2]&0xf8 != 0 || // QR, opcode
		p[4] != 0 || p[5] != 1 || p[6] != 0 || p[7] != 0 || p[8] != 0 || p[9] != 0 || p[10] != 0 || p[11] > 1 {
		return cq, 0, false
	}
	off := headerLen
	for {
		if off >= len(p) {
			return cq, 0, false
		}
		l := int(p[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l >= len(p) || off+1+l-headerLen > maxWireName {
			return cq, 0, false // a pointer, a reserved label type, or past the end
		}
		off += 1 + l
	}
	if off+4 > len(p) || p[off+2] != 0 || p[off+3] != byte(dns.ClassINET) {
		return cq, 0, false
	}
	cq.wireName = p[headerLen:off]
	cq.qtype = uint16(p[off])<<8 | uint16(p[off+1])
	cq.id = uint16(p[0])<<8 | uint16(p[1])
	cq.rd = p[2]&0x01 != 0
	cq.cd = p[3]&0x10 != 0
	qend = off + 4
	off = qend
	if p[11] == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = extended rcode,
		// version, flags; then the options.
		if off+11 > len(p) || p[off] != 0 || p[off+1] != 0 || p[off+2] != byte(dns.TypeOPT) || p[off+6] != 0 {
			return cq, 0, false
		}
		cq.size = int(p[off+3])<<8 | int(p[off+4])
		cq.edns = 1
		if p[off+7]&0x80 != 0 {
			cq.edns = 2
		}
		rdlen := int(p[off+9])<<8 | int(p[off+10])
		off += 11 + rdlen
	}
	if off != len(p) {
		return cq, 0, false
	}
	return cq, qend, true
}
