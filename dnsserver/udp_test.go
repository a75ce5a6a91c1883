package dnsserver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePlainQuery(t *testing.T) {
	plain := pack(t, newQuery("Books-MS.service.local.", dns.TypeSRV, 0))
	withOPT := func(do bool, version uint8) []byte {
		m := newQuery("books-ms.service.local.", dns.TypeA, 1400)
		if do {
			m.IsEdns0().SetDo()
		}
		m.IsEdns0().SetVersion(version)
		return pack(t, m)
	}
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := []struct {
		name string
		pkt  []byte
		ok   bool
		edns uint8
		size int
	}{
		{"plain query", plain, true, ednsNone, minUDPSize},
		{"EDNS", withOPT(false, 0), true, ednsOPT, 1400},
		{"EDNS with DO", withOPT(true, 0), true, ednsDO, 1400},
		{"EDNS version 1: slow path answers BADVERS", withOPT(false, 1), false, 0, 0},
		{"response", mutate(plain, func(b []byte) []byte { b[2] |= 0x80; return b }), false, 0, 0},
		{"NOTIFY", mutate(plain, func(b []byte) []byte { b[2] |= 4 << 3; return b }), false, 0, 0},
		{"two questions", mutate(plain, func(b []byte) []byte { b[5] = 2; return b }), false, 0, 0},
		{"an answer record", mutate(plain, func(b []byte) []byte { b[7] = 1; return b }), false, 0, 0},
		{"trailing bytes", append(append([]byte(nil), plain...), 0), false, 0, 0},
		{"cut short", plain[:len(plain)-2], false, 0, 0},
		{"class CHAOS", mutate(plain, func(b []byte) []byte { b[len(b)-1] = 3; return b }), false, 0, 0},
		{"compression pointer in the name", []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, false, 0, 0},
		{"label past the end", []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a', 0, 1, 0, 1}, false, 0, 0},
		{"header only", plain[:12], false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req request
			ok := req.fromPacket(tc.pkt, loopback, dns.MaxMsgSize)
			if ok != tc.ok {
				t.Fatalf("ok=%v, want %v", ok, tc.ok)
			}
			if ok && (req.edns != tc.edns || req.size != tc.size) {
				t.Errorf("edns=%d size=%d, want %d %d", req.edns, req.size, tc.edns, tc.size)
			}
		})
	}
	var req request
	req.fromPacket(plain, loopback, DefaultMaxUDPSize)
	if name := req.text(); name != "Books-MS.service.local." || req.qtype != dns.TypeSRV {
		t.Errorf("name %q type %d, want Books-MS.service.local. SRV", name, req.qtype)
	}
}

// The packet path gives the reply the miekg path gives: the same rcode,
// flags and records, the question byte for byte, the ID.
func TestPacketReplyMatchesSlowPath(t *testing.T) {
	cat := seed(t)
	bigService(t, cat, 60)
	cfg := testConfig(cat)
	cfg.Forwarder = &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { return nil, errUpstream }}
	h := newHandler(t, cfg)
	loop := readLoop(h, nil)
	cases := []struct {
		name  string
		qtype uint16
		edns  uint16
	}{
		{"BoOkS-mS.SeRvIcE.LoCaL.", dns.TypeSRV, 0},
		{"books-ms.service.local.", dns.TypeA, 1232},
		{"nope.service.local.", dns.TypeA, 0},
		{"books-ms.service.local.", dns.TypeAAAA, 4096},
		{"2.0.17.172.in-addr.arpa.", dns.TypePTR, 0},
		{"big.service.local.", dns.TypeSRV, 4096}, // too big: the slow path truncates
	}
	for _, tc := range cases {
		t.Run(tc.name+" "+dns.TypeToString[tc.qtype], func(t *testing.T) {
			q := newQuery(tc.name, tc.qtype, tc.edns)
			q.Id = 0x4242
			wire := pack(t, q)
			if _, ok := loop.packetReply(wire, onBridge); ok {
				t.Fatal("answered before anything was cached")
			}
			slow := serveDNS(t, h, q.Copy(), onBridge, false) // fills the cache
			fast, ok := loop.packetReply(wire, onBridge)
			if tc.name == "big.service.local." {
				if ok {
					t.Fatal("a reply over the client's size was not left to the slow path")
				}
				return
			}
			if !ok {
				t.Fatal("cached answer not served from the packet")
			}
			got := new(dns.Msg)
			if err := got.Unpack(fast); err != nil {
				t.Fatal(err)
			}
			if got.Id != q.Id || got.Rcode != slow.Rcode || got.Authoritative != slow.Authoritative || got.RecursionAvailable != slow.RecursionAvailable ||
				!got.RecursionDesired || len(got.Answer) != len(slow.Answer) || len(got.Ns) != len(slow.Ns) || len(got.Extra) != len(slow.Extra) {
				t.Errorf("packet path:\n%v\nslow path:\n%v", got, slow)
			}
			qlen := headerLen + len(tc.name) + 1 + 4
			if string(fast[headerLen:qlen]) != string(wire[headerLen:qlen]) {
				t.Errorf("question not echoed byte for byte")
			}
		})
	}
}

// Over a real socket bound to the wildcard address: answers come back
// from the address the client asked, hits and misses alike, and the rate
// limit slips on the packet path too.
func TestUDPLoopWildcard(t *testing.T) {
	port := serveOn(t, newHandler(t, testConfig(seed(t))), "0.0.0.0:0")
	addr := net.JoinHostPort("127.0.0.1", port)
	c := &dns.Client{Net: "udp", Timeout: replyTimeout}
	for i := range 3 { // a miss, then hits
		q := newQuery("BOOKS-ms.service.local.", dns.TypeA, 0)
		r, _, err := c.Exchange(q, addr) // the client checks the reply's source and ID
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if len(r.Answer) != 2 || r.Question[0].Name != "BOOKS-ms.service.local." || r.Answer[0].Header().Name != "BOOKS-ms.service.local." {
			t.Fatalf("query %d: %v", i, r)
		}
	}
}

// The read loop reads the sender's address from the raw sockaddr the
// kernel fills in, for both families and for IPv4 clients of a dual-stack
// socket (v4-mapped), and sends each reply back through it: hits and misses
// alike reach the client. A datagram larger than the read buffer is
// dropped (cut by the kernel), and the loop goes on.
func TestUDPLoopAddressFamilies(t *testing.T) {
	tests := []struct {
		listen  string
		clients []string // hosts to ask on the listener's port
	}{
		{"127.0.0.1:0", []string{"127.0.0.1"}},
		{"[::1]:0", []string{"::1"}},
		{"[::]:0", []string{"::1", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			if strings.Contains(tt.listen, ":") && !hasIPv6Loopback() {
				t.Skip("no IPv6 loopback here")
			}
			port := serveOn(t, newHandler(t, testConfig(seed(t))), tt.listen)
			for _, host := range tt.clients {
				addr := net.JoinHostPort(host, port)
				conn, err := net.Dial("udp", addr)
				if err != nil {
					t.Fatal(err)
				}
				// Too large to read whole: the kernel cuts it, the loop drops it.
				if _, err := conn.Write(make([]byte, maxQuerySize+100)); err != nil {
					t.Fatal(err)
				}
				conn.Close()
				c := &dns.Client{Net: "udp", Timeout: replyTimeout}
				for i := range 3 { // a miss, then hits
					q := newQuery("books-ms.service.local.", dns.TypeA, 0)
					r, _, err := c.Exchange(q, addr)
					if err != nil {
						t.Fatalf("%s, query %d: %v", addr, i, err)
					}
					if len(r.Answer) != 2 {
						t.Fatalf("%s, query %d: %v", addr, i, r)
					}
				}
			}
		})
	}
}

// serveOn serves h on one UDP socket at addr until the test ends, and
// returns the port.
func serveOn(t *testing.T, h *Handler, addr string) string {
	t.Helper()
	srv, err := Listen(ServerConfig{Addr: addr, Handler: h, UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() { done <- srv.Serve(ctx, replyTimeout, func() { close(started) }) }()
	<-started
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	_, port, _ := net.SplitHostPort(srv.Addr())
	return port
}

func hasIPv6Loopback() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Over the rate limit a UDP client gets an empty reply with TC set, from
// the read loop and from the slow path alike; TCP is never limited.
func TestRateLimitSlip(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	q := newQuery("books-ms.service.local.", dns.TypeA, 1232)
	reply, ok := readLoop(h, denyAll{}).packetReply(pack(t, q), loopback)
	if !ok {
		t.Fatal("no slip from the packet path")
	}
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil {
		t.Fatal(err)
	}
	if !r.Response || !r.Truncated || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || r.Id != q.Id || r.Question[0] != q.Question[0] {
		t.Fatalf("slip %v", r)
	}

	addr := serveWith(t, ServerConfig{Addr: "127.0.0.1:0", Handler: h, RateLimiter: denyAll{}})
	// A query the read loop cannot read (class ANY) is unpacked on the
	// slow path, and limited there.
	anyClass := newQuery("books-ms.service.local.", dns.TypeA, 0)
	anyClass.Question[0].Qclass = dns.ClassANY
	for _, q := range []*dns.Msg{newQuery("books-ms.service.local.", dns.TypeA, 0), anyClass} {
		c := &dns.Client{Net: "udp", Timeout: replyTimeout}
		resp, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Truncated || len(resp.Answer) != 0 || resp.Rcode != dns.RcodeSuccess {
			t.Errorf("over the limit over UDP, class %d: TC=%v, %d answers, %s; want an empty TC reply", q.Question[0].Qclass, resp.Truncated, len(resp.Answer), dns.RcodeToString[resp.Rcode])
		}
		c.Net = "tcp"
		if resp, _, err = c.Exchange(q, addr); err != nil {
			t.Fatal(err)
		}
		if resp.Truncated || len(resp.Answer) == 0 {
			t.Errorf("over TCP: TC=%v, %d answers; TCP is never limited", resp.Truncated, len(resp.Answer))
		}
	}
}

func TestCompleteMessage(t *testing.T) {
	full := pack(t, newQuery("books-ms.service.local.", dns.TypeA, 1232))
	plain := pack(t, newQuery("books-ms.service.local.", dns.TypeA, 0))
	cases := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"query", plain, true},
		{"query with OPT", full, true},
		{"trailing bytes tolerated", append(append([]byte(nil), plain...), 0, 0), true},
		{"question without type and class", plain[:len(plain)-4], false},
		{"question without class", plain[:len(plain)-2], false},
		{"OPT promised, missing", plain[:0:0], false},
		{"OPT cut in its rdata", append(append([]byte(nil), full[:len(full)-11]...), 0, 0, 41), false},
		{"header claiming a question", plain[:12], false},
		{"bare header, no counts", make([]byte, 12), true},
		{"ANCOUNT 65535 of nothing", func() []byte { b := append([]byte(nil), plain...); b[6], b[7] = 0xff, 0xff; return b }(), false},
	}
	cases[5].pkt = func() []byte { b := append([]byte(nil), plain...); b[11] = 1; return b }()
	for _, tc := range cases {
		if got := completeMessage(tc.pkt); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Queries already sent when the server is told to stop are answered: the
// read loop drains what the kernel queued before it closes the socket.
func TestShutdownAnswersQueued(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() { done <- srv.Serve(ctx, 5*time.Second, func() { close(started) }) }()
	<-started
	c := newUDPClient(t, srv.Addr())
	const n = 500
	for i := range n {
		c.send(t, uint16(i))
		if i == n/2 {
			cancel() // mid-burst: the rest are queued or on their way
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Everything sent before the stop must be answered; what came after may
	// be, the drain goes on while the socket is busy.
	answered := c.end(t)
	for i := range n/2 + 1 {
		if !answered[uint16(i)] {
			t.Errorf("query %d, sent before the stop, not answered (%d of %d answered)", i, len(answered), n)
			break
		}
	}
}

// gateLimiter holds the first query it is asked about until release is
// closed, as a read loop waiting for a CPU would be held.
type gateLimiter struct {
	once             sync.Once
	entered, release chan struct{}
}

func (g *gateLimiter) Allow(netip.Addr) bool {
	g.once.Do(func() { close(g.entered); <-g.release })
	return true
}

// A read loop held up past the stop's quiet window (a loaded machine,
// a long batch) still answers every query queued meanwhile: the window
// counts only while the socket is really empty.
func TestShutdownDrainsAfterHeldLoop(t *testing.T) {
	gate := &gateLimiter{entered: make(chan struct{}), release: make(chan struct{})}
	h := newHandler(t, testConfig(seed(t)))
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 1, RateLimiter: gate})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() { done <- srv.Serve(ctx, 5*time.Second, func() { close(started) }) }()
	<-started
	c := newUDPClient(t, srv.Addr())
	c.send(t, 0)
	<-gate.entered // the loop holds query 0: the rest queue in the kernel
	const n = 3 * batchSize
	for i := 1; i < n; i++ {
		c.send(t, uint16(i))
	}
	cancel()
	// The TCP listener closes as the UDP read deadline is set; once the
	// quiet window has passed too, the loop is let go.
	for {
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(3 * drainQuiet) // provokes the case only: any wait passes
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	answered := c.end(t)
	for i := range n {
		if !answered[uint16(i)] {
			t.Errorf("query %d, sent before the stop, not answered (%d of %d answered)", i, len(answered), n)
			break
		}
	}
}

// udpClient sends queries to a server from an unconnected socket and
// collects the ids of the replies. Unconnected: a send after the server
// closed its port finds no error (the kernel reports port unreachable to
// connected sockets only), and end's marker can come from another socket.
type udpClient struct {
	conn     *net.UDPConn
	server   *net.UDPAddr
	answered map[uint16]bool
	done     chan struct{}
}

func newUDPClient(t *testing.T, server string) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &udpClient{conn: conn, server: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(server)),
		answered: map[uint16]bool{}, done: make(chan struct{})}
	// Replies come back in batches: the client reads as they come, with a
	// buffer large enough for a burst.
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { setSocketBuffers(int(fd), 4<<20) })
	}
	// A failure timeout only: the reader stops at end's marker.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	go func() {
		defer close(c.done)
		buf := make([]byte, 4096)
		for {
			k, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Errorf("read replies: %v", err)
				return
			}
			if from != c.server.AddrPort() {
				return // end's marker
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) == nil {
				c.answered[m.Id] = true
			}
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-c.done })
	return c
}

// send sends an A query with id.
func (c *udpClient) send(t *testing.T, id uint16) {
	t.Helper()
	q := newQuery("books-ms.service.local.", dns.TypeA, 0)
	q.Id = id
	if _, err := c.conn.WriteToUDP(pack(t, q), c.server); err != nil {
		t.Fatal(err)
	}
}

// end returns the ids of the replies, once the server's Serve returned:
// every reply it sent is then in the client's queue (loopback delivers as
// it sends), and a marker sent now queues behind them.
func (c *udpClient) end(t *testing.T) map[uint16]bool {
	t.Helper()
	marker, err := net.DialUDP("udp", nil, c.conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	if _, err := marker.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	<-c.done
	return c.answered
}
