package dnsserver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
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
		{"plain query", plain, true, 0, 0},
		{"EDNS", withOPT(false, 0), true, 1, 1400},
		{"EDNS with DO", withOPT(true, 0), true, 2, 1400},
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
			cq, _, ok := parsePlainQuery(tc.pkt)
			if ok != tc.ok {
				t.Fatalf("ok=%v, want %v", ok, tc.ok)
			}
			if ok && (cq.edns != tc.edns || cq.size != tc.size) {
				t.Errorf("edns=%d size=%d, want %d %d", cq.edns, cq.size, tc.edns, tc.size)
			}
		})
	}
	cq, _, _ := parsePlainQuery(plain)
	if name, _, err := dns.UnpackDomainName(cq.wireName, 0); err != nil || name != "Books-MS.service.local." || cq.qtype != dns.TypeSRV {
		t.Errorf("name %q type %d, want Books-MS.service.local. SRV", name, cq.qtype)
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
			if _, ok := h.packetReply(nil, wire, onBridge); ok {
				t.Fatal("answered before anything was cached")
			}
			slow := serveDNS(t, h, q.Copy(), onBridge, false) // fills the cache
			fast, ok := h.packetReply(nil, wire, onBridge)
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
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
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
				c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
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
	go func() { done <- srv.Serve(ctx, 2*time.Second, func() { close(started) }) }()
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

func TestPacketRateLimitSlip(t *testing.T) {
	cfg := testConfig(seed(t))
	cfg.RateLimiter = denyAll{}
	h := newHandler(t, cfg)
	q := newQuery("books-ms.service.local.", dns.TypeA, 1232)
	reply, ok := h.packetReply(nil, pack(t, q), loopback)
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
	conn, err := net.Dial("udp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Replies come back in batches: the client reads as they come, with a
	// buffer large enough for a burst.
	if rc, err := conn.(*net.UDPConn).SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) })
	}
	const n = 500
	answered := map[uint16]bool{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		for len(answered) < n {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) == nil {
				answered[m.Id] = true
			}
		}
	}()
	for i := range n {
		q := newQuery("books-ms.service.local.", dns.TypeA, 0)
		q.Id = uint16(i)
		if _, err := conn.Write(pack(t, q)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			cancel() // mid-burst: the rest are queued or on their way
		}
	}
	<-readDone
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Everything sent before the stop must be answered; what came after may
	// be, the drain goes on while the socket is busy.
	for i := range n/2 + 1 {
		if !answered[uint16(i)] {
			t.Errorf("query %d, sent before the stop, not answered (%d of %d answered)", i, len(answered), n)
			break
		}
	}
}
