package dnsserver

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// serve runs a Server for h on a free loopback port until the test ends.
func serve(t *testing.T, h dns.Handler) string {
	t.Helper()
	return serveWith(t, ServerConfig{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 2, TCPIdleTimeout: 300 * time.Millisecond})
}

// serveWith runs a Server of cfg until the test ends and returns its
// address.
func serveWith(t *testing.T, cfg ServerConfig) string {
	t.Helper()
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, 5*time.Second, func() { close(started) }) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown, want nil", err)
		}
	})
	return srv.Addr()
}

func TestServerUDPAndTCP(t *testing.T) {
	cat := seed(t)
	bigService(t, cat, 60)
	addr := serve(t, newHandler(t, testConfig(cat)))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := &dns.Client{Net: network, Timeout: replyTimeout}
			r, _, err := c.Exchange(newQuery("books-ms.service.local.", dns.TypeA, 0), addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 2 {
				t.Fatalf("rcode %s AA=%v %d answers, want NOERROR, AA, 2", dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
			}
			r, _, err = c.Exchange(newQuery("big.service.local.", dns.TypeSRV, 0), addr)
			if err != nil {
				t.Fatal(err)
			}
			if network == "udp" && (!r.Truncated || len(r.Answer) == 60) {
				t.Errorf("UDP: TC=%v with %d answers, want truncated", r.Truncated, len(r.Answer))
			}
			if network == "tcp" && (r.Truncated || len(r.Answer) != 60 || len(r.Extra) != 60) {
				t.Errorf("TCP: TC=%v with %d answers and %d additional, want all 60 of each", r.Truncated, len(r.Answer), len(r.Extra))
			}
		})
	}
}

// Garbage, responses and odd opcodes never stop the server: a normal query
// right after still answers.
func TestServerSurvivesMalformedPackets(t *testing.T) {
	addr := serve(t, newHandler(t, testConfig(seed(t))))
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp := newQuery("books-ms.service.local.", dns.TypeA, 0)
	resp.Response = true
	respWire, _ := resp.Pack()
	notify := newQuery("local.", dns.TypeSOA, 0)
	notify.Opcode = dns.OpcodeNotify
	notifyWire, _ := notify.Pack()
	packets := [][]byte{
		{},               // empty
		{0x12},           // short header
		make([]byte, 12), // header only, QDCOUNT 0
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a'},              // label runs past the end
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, // compression pointer to itself
		respWire,   // a response: dropped
		notifyWire, // NOTIFY: NOTIMP
	}
	for _, p := range packets {
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// Over TCP: a length prefix promising more than is sent, then close.
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte{0x10, 0x00, 1, 2, 3})
	tc.Close()

	c := &dns.Client{Net: "udp", Timeout: replyTimeout}
	r, _, err := c.Exchange(newQuery("books-ms.service.local.", dns.TypeA, 0), addr)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("query after malformed packets: %v %v", r, err)
	}
}

func TestListenPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = Listen(ServerConfig{Addr: pc.LocalAddr().String(), Handler: dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})})
	if err == nil {
		t.Fatal("Listen on a taken port succeeded")
	}
	t.Logf("error: %v", err)
}

// A panic while answering, wherever it happens (the UDP read loop, the
// goroutine it hands a miss to, ServeDNS over TCP), is answered with
// SERVFAIL and counted, and the server goes on answering.
func TestServerSurvivesPanics(t *testing.T) {
	var armed atomic.Bool // the query after the panics is answered
	boom := func() bool {
		if armed.Load() {
			panic("boom")
		}
		return true
	}
	cases := []struct {
		name  string
		cfg   func(*Config)
		query func() *dns.Msg
	}{
		{"in the read loop's cache check", func(c *Config) { c.Ready = boom },
			func() *dns.Msg { return newQuery("nope.service.local.", dns.TypeA, 0) }},
		{"in the cache fill's lookup", func(c *Config) { c.Ready = boomIn("(*Handler).lookup", boom) },
			func() *dns.Msg { return newQuery("nope.service.local.", dns.TypeA, 0) }},
		{"in the slow path's forwarder", func(c *Config) {
			c.Forwarder = &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { panic("boom") }}
		}, func() *dns.Msg { return newQuery("example.com.", dns.TypeA, 0) }},
		{"in ServeDNS, for a query the loop does not read", func(c *Config) { c.Ready = boom },
			func() *dns.Msg {
				m := newQuery("nope.service.local.", dns.TypeA, 0)
				m.Question[0].Qclass = dns.ClassANY
				return m
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(seed(t))
			tc.cfg(&cfg)
			h := newHandler(t, cfg)
			addr := serve(t, h)
			armed.Store(true)
			for i, network := range []string{"udp", "tcp"} {
				c := &dns.Client{Net: network, Timeout: replyTimeout}
				r, _, err := c.Exchange(tc.query(), addr)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if r.Rcode != dns.RcodeServerFailure {
					t.Errorf("%s: rcode %s, want SERVFAIL", network, dns.RcodeToString[r.Rcode])
				}
				if n := testutil.ToFloat64(h.met.panics); n != float64(i+1) {
					t.Errorf("%s: svcdns_dns_panics_total %v, want %d", network, n, i+1)
				}
			}
			armed.Store(false)
			c := &dns.Client{Net: "udp", Timeout: replyTimeout}
			if r, _, err := c.Exchange(newQuery("books-ms.service.local.", dns.TypeSRV, 0), addr); err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("query after the panics: %v %v", r, err)
			}
		})
	}
}

// boomIn returns a Ready that calls boom when its caller is the function
// named fn (a suffix of its full name), and reports ready otherwise: a
// panic in one place of the answer path, past the checks before it.
func boomIn(fn string, boom func() bool) func() bool {
	return func() bool {
		var pc [1]uintptr
		runtime.Callers(2, pc[:])
		f, _ := runtime.CallersFrames(pc[:]).Next()
		if strings.HasSuffix(f.Function, fn) {
			return boom()
		}
		return true
	}
}
