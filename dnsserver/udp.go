package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
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
// reading goroutine, with no allocation. Everything else goes to a
// goroutine of its own: a query the loop read (a miss, a name to forward)
// with its request, to the handler's one answer path (respond), which
// unpacks the message only to forward it; any other datagram (malformed
// or unusual) to miekg/dns's unpacking and ServeDNS, as miekg/dns's server
// would. See BENCHMARKS.md for the figures.

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
	limiter Limiter  // nil: no limit
	met     *metrics // fast's, or unregistered ones
	log     *slog.Logger
	maxUDP  int // fast's, or the default: the size rejections' OPT gives
	// wildcard: the socket is bound to 0.0.0.0 or ::, so each reply must
	// leave from the address its query was sent to, or a multi-homed host's
	// clients would drop it.
	wildcard bool
	slots    chan struct{}
	wg       sync.WaitGroup
	closing  atomic.Bool
	stopped  chan struct{} // closed when serve returns
}

func newUDPServer(conn *net.UDPConn, handler dns.Handler, limiter Limiter) (*udpServer, error) {
	side := sideOf(handler)
	u := &udpServer{
		conn: conn, handler: handler, fast: side.fast, limiter: limiter, met: side.met, log: side.log, maxUDP: side.maxUDP,
		slots: make(chan struct{}, maxSlowInFlight), stopped: make(chan struct{}),
	}
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
	// most, on Linux (batch_linux.go). Under load the kernel queue is
	// rarely empty, so one recvmmsg takes what queued while the last batch
	// was answered, and one sendmmsg sends all the replies: two system
	// calls a batch instead of two a query, the main cost per query here.
	// Elsewhere a batch is one datagram (batch_other.go).
	batchSize = 64
	// maxQuerySize is the largest query read: a query has one question
	// and at most an OPT and a TSIG, far below this. A larger datagram is
	// cut by the kernel and dropped.
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
	mc, err := newBatchConn(u.conn, batchSize, maxQuerySize, oob)
	if err != nil {
		return err
	}
	replies := make([][]byte, batchSize)
	for i := range replies {
		replies[i] = make([]byte, 0, DefaultMaxUDPSize)
	}
	var lastOOB, lastReply []byte // the reply control message of the last destination
	var drainEnd time.Time
	var req request
	for {
		n, err := mc.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !u.closing.Load() {
					continue
				}
				// The deadline may have passed while this goroutine
				// answered a batch or waited for a CPU, not while the
				// socket was quiet: queries sent before the stop may
				// still wait in it.
				if queued(u.conn) && !u.drained(&drainEnd) {
					continue
				}
				return nil // quiet for drainQuiet: every queued query answered
			}
			if u.closing.Load() {
				return nil
			}
			return err
		}
		if u.closing.Load() && u.drained(&drainEnd) {
			return nil
		}
		read := time.Now()
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
			reply, parsed, ok := u.fastReply(replies[i][:0], &req, pkt, from.Addr().Unmap())
			switch {
			case ok:
				replies[i] = reply
				mc.setReply(out, i, reply, replyOOB)
				out++
			case parsed:
				u.slow(pkt, from, replyOOB, &req)
			default:
				u.slow(pkt, from, replyOOB, nil)
			}
		}
		if out > 0 {
			u.met.latency.observeN(time.Since(read).Seconds(), out)
		}
		mc.write(out)
	}
}

// fastReply answers a datagram on the read loop when that needs no
// lookup (a cache hit, or a slip over the rate limit), appending the reply
// to dst. ok false sends the datagram the slow way, with req when it was
// read (parsed). A panic is answered with SERVFAIL when the query was
// read, counted, and never stops the loop.
func (u *udpServer) fastReply(dst []byte, req *request, pkt []byte, client netip.Addr) (reply []byte, parsed, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			reply, ok = u.panicked(dst, req, parsed, p)
		}
	}()
	if u.fast == nil || !req.fromPacket(pkt, client, u.fast.maxUDP) {
		return dst, false, false
	}
	parsed = true
	if !u.allow(client) {
		return u.slip(dst, req), true, true
	}
	reply, ok = u.fast.cachedReply(dst, req)
	return reply, true, ok
}

// panicked counts and logs a panic on the read loop and returns the
// SERVFAIL reply to req, if it was read.
func (u *udpServer) panicked(dst []byte, req *request, parsed bool, p any) ([]byte, bool) {
	u.met.panics.Inc()
	u.log.Error("panic answering a query", "client", req.client, "panic", p, "stack", string(debug.Stack()))
	if !parsed {
		return dst, false
	}
	u.met.countRcode(req.qtype, dns.RcodeServerFailure)
	b := req.appendSlip(dst)
	b[2] &^= 0x02 // not truncated
	b[3] |= dns.RcodeServerFailure
	return b, true
}

// allow charges a reply to client to the rate limiter.
func (u *udpServer) allow(client netip.Addr) bool {
	return u.limiter == nil || u.limiter.Allow(client)
}

// slip appends the reply to a client over the rate limit (appendSlip).
func (u *udpServer) slip(dst []byte, req *request) []byte {
	u.met.rateLimited.Inc()
	u.met.countRcode(req.qtype, dns.RcodeSuccess)
	return req.appendSlip(dst)
}

// drained is asked after each read while shutting down, and after a
// timeout that left datagrams queued: the datagrams already queued in the
// kernel were sent before the signal, so they are answered until the
// socket has been quiet for drainQuiet or drainMax has passed since the
// first such read (end). It reports whether to stop.
func (u *udpServer) drained(end *time.Time) bool {
	now := time.Now()
	if end.IsZero() {
		*end = now.Add(drainMax)
	}
	if now.After(*end) {
		return true
	}
	_ = u.conn.SetReadDeadline(now.Add(drainQuiet))
	return false
}

// slow hands a datagram to a goroutine of its own: a query read by the
// loop (req, already charged to the rate limiter) to respond, anything
// else to serveWire. A panic there is answered with SERVFAIL and counted.
func (u *udpServer) slow(pkt []byte, from netip.AddrPort, replyOOB []byte, req *request) {
	select {
	case u.slots <- struct{}{}:
	default:
		u.met.overload.Inc()
		return
	}
	start := time.Now()
	p := append([]byte(nil), pkt...)
	var r *request
	if req != nil {
		c := *req
		c.pkt = p
		r = &c
	}
	u.wg.Add(1)
	go func() {
		defer func() { <-u.slots; u.wg.Done() }()
		w := &udpWriter{u: u, to: from, oob: replyOOB}
		defer u.recoverSlow(w, p)
		if r == nil {
			u.serveWire(w, p)
			return
		}
		buf := replyPool.Get().(*[]byte)
		if b := u.fast.respond(context.Background(), (*buf)[:0], r); b != nil {
			u.met.latency.Observe(time.Since(start).Seconds())
			if _, err := w.Write(b); err != nil {
				u.log.Debug("write response", "client", r.client, "err", err)
			}
			*buf = b[:0]
		}
		replyPool.Put(buf)
	}()
}

// recoverSlow is deferred by the slow path's goroutine: a panic is
// logged, counted, and answered with SERVFAIL when the query unpacks.
func (u *udpServer) recoverSlow(w *udpWriter, p []byte) {
	pv := recover()
	if pv == nil {
		return
	}
	u.met.panics.Inc()
	u.log.Error("panic answering a query", "client", w.to, "panic", pv, "stack", string(debug.Stack()))
	r := new(dns.Msg)
	if r.Unpack(p) != nil {
		return
	}
	resp := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	u.met.count(r, resp)
	_ = w.WriteMsg(resp)
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

// serveWire does what miekg/dns's server does with a datagram, by the
// rule TCP follows too (vet): nothing for a response, NOTIMP for another
// opcode, FORMERR for what is not one plain query or does not unpack; then
// a slip for a client over the rate limit, and the rest to the handler.
func (u *udpServer) serveWire(w *udpWriter, p []byte) {
	v := vet(p)
	if v.ignore {
		return
	}
	msg := new(dns.Msg)
	if v.rcode == dns.RcodeSuccess && msg.Unpack(p) != nil {
		v.rcode = dns.RcodeFormatError
	}
	if v.rcode != dns.RcodeSuccess {
		u.met.countRcode(v.qtype, v.rcode)
		if b := rejectPacket(p, v, u.maxUDP); b != nil {
			_, _ = w.Write(b)
		}
		return
	}
	if client := w.to.Addr().Unmap(); !u.allow(client) {
		var req request
		if resp := req.fromMsg(msg, client, false, u.maxUDP); resp != nil {
			_ = w.WriteMsg(resp)
			return
		}
		_, _ = w.Write(u.slip(nil, &req))
		return
	}
	u.handler.ServeDNS(w, msg)
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
