package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
)

// A cached answer is never older than the catalog: the query right after
// a write sees it, whether the write adds, changes or removes.
func TestCacheFollowsEveryWrite(t *testing.T) {
	cat := catalog.New()
	h := newHandler(t, testConfig(cat))
	ask := func() []string {
		var out []string
		for _, rr := range serveDNS(t, h, newQuery("books-ms.service.local.", dns.TypeA, 0), loopback, false).Answer {
			out = append(out, rr.(*dns.A).A.String())
		}
		slices.Sort(out)
		return out
	}
	steps := []struct {
		name  string
		write func()
		want  []string
	}{
		{"nothing yet", func() {}, nil},
		{"first instance", func() { apiInstance(t, cat, "b1", "books-ms", "10.0.0.1", 80, catalog.ProtoTCP) }, []string{"10.0.0.1"}},
		{"second instance", func() { apiInstance(t, cat, "b2", "books-ms", "10.0.0.2", 80, catalog.ProtoTCP) }, []string{"10.0.0.1", "10.0.0.2"}},
		{"address changed", func() { apiInstance(t, cat, "b2", "books-ms", "10.0.0.3", 80, catalog.ProtoTCP) }, []string{"10.0.0.1", "10.0.0.3"}},
		{"deregistered", func() {
			if _, err := cat.DeregisterInstance("b1"); err != nil {
				t.Fatal(err)
			}
		}, []string{"10.0.0.3"}},
	}
	for _, s := range steps {
		s.write()
		for range 3 { // a miss, then hits
			if got := ask(); !slices.Equal(got, s.want) {
				t.Fatalf("%s: answer %v, want %v", s.name, got, s.want)
			}
		}
	}
}

// Truncation, EDNS flags, readiness and order through the server's path.
func TestCachedPathEdges(t *testing.T) {
	cat := seed(t)
	bigService(t, cat, 60)
	cfg := testConfig(cat)
	ready := true
	cfg.Ready = func() bool { return ready }
	h := newHandler(t, cfg)

	t.Run("a reply too large for UDP is truncated, whole records", func(t *testing.T) {
		for range 2 {
			w := newRecorder(loopback, false)
			h.ServeDNS(w, newQuery("big.service.local.", dns.TypeSRV, 0))
			if !w.msg.Truncated || len(w.wire) > 512 || len(w.msg.Answer) == 0 {
				t.Fatalf("TC=%v, %d bytes, %d answers: want TC within 512 bytes", w.msg.Truncated, len(w.wire), len(w.msg.Answer))
			}
		}
		resp := serveDNS(t, h, newQuery("big.service.local.", dns.TypeSRV, 0), loopback, true)
		if resp.Truncated || len(resp.Answer) != 60 || len(resp.Extra) != 60 {
			t.Fatalf("TCP: TC=%v, %d answers, %d additional; want all 60", resp.Truncated, len(resp.Answer), len(resp.Extra))
		}
	})
	t.Run("OPT only for EDNS clients, DO echoed", func(t *testing.T) {
		for _, tc := range []struct {
			edns, do bool
		}{{false, false}, {true, false}, {true, true}, {false, false}} {
			q := newQuery("books-ms.service.local.", dns.TypeA, 0)
			if tc.edns {
				q.SetEdns0(1232, tc.do)
			}
			opt := serveDNS(t, h, q, loopback, false).IsEdns0()
			if (opt != nil) != tc.edns || opt != nil && opt.Do() != tc.do {
				t.Errorf("EDNS=%v DO=%v: reply OPT %v", tc.edns, tc.do, opt)
			}
		}
	})
	t.Run("before the first sync an unknown name is SERVFAIL, never a cached NXDOMAIN", func(t *testing.T) {
		serveDNS(t, h, newQuery("later.service.local.", dns.TypeA, 0), loopback, false) // cached NXDOMAIN while ready
		ready = false
		defer func() { ready = true }()
		if rc := serveDNS(t, h, newQuery("later.service.local.", dns.TypeA, 0), loopback, false).Rcode; rc != dns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[rc])
		}
	})
	t.Run("every instance comes first", func(t *testing.T) {
		first := map[string]int{}
		for range 400 {
			resp := serveDNS(t, h, newQuery("books-ms.service.local.", dns.TypeSRV, 0), onBridge, false)
			first[resp.Answer[0].(*dns.SRV).Target]++
		}
		if len(first) != 2 {
			t.Fatalf("first records over 400 answers: %v, want both instances", first)
		}
		for tgt, n := range first {
			if n < 100 {
				t.Errorf("%s first %d times of 400: order is not random enough", tgt, n)
			}
		}
	})
	t.Run("RA only for clients allowed to recurse", func(t *testing.T) {
		cfg := testConfig(cat)
		cfg.Forwarder = &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { return nil, errUpstream }}
		h := newHandler(t, cfg)
		for _, tc := range []struct {
			name   string
			client netip.Addr
			ra     bool
		}{{"loopback", loopback, true}, {"outsider", outsider, false}, {"loopback again", loopback, true}} {
			if ra := serveDNS(t, h, newQuery("api-svc.service.local.", dns.TypeA, 0), tc.client, false).RecursionAvailable; ra != tc.ra {
				t.Errorf("%s: RA=%v, want %v", tc.name, ra, tc.ra)
			}
		}
	})
}

// A flood of distinct names cannot grow one generation past its bound.
func TestCacheBounded(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	for i := range maxCacheEntries + 500 {
		serveDNS(t, h, newQuery(fmt.Sprintf("n%d.service.local.", i), dns.TypeA, 0), loopback, false)
	}
	if n := h.gen.Load().len(); n > maxCacheEntries {
		t.Fatalf("%d entries, bound %d", n, maxCacheEntries)
	}
}

// The cache keeps only names of the zone and of the reverse zones: whole
// labels from the end, any case (the key's name is lower case).
func TestInZoneOrReverse(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	for name, want := range map[string]bool{
		"books-ms.service.local.":           true,
		"BOOKS-MS.Service.LOCAL.":           true,
		"local.":                            true,
		"5.0.17.172.in-addr.arpa.":          true,
		"5.0.17.172.IN-ADDR.Arpa.":          true,
		"b.a.9.8.ip6.ARPA.":                 true,
		"books-ms.service.xlocal.":          false,
		"local.example.":                    false,
		"service.local.example.":            false,
		"in-addr.arpa.example.":             false,
		"example.com.":                      false,
		".":                                 false,
		"localx.":                           false,
		"4.3.2.1.in-addr.arpa.service.net.": false,
	} {
		wire := make([]byte, maxWireName)
		n, err := dns.PackDomainName(name, wire, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.inZoneOrReverse(appendKey(nil, 0, 0, 0, wire[:n])[keyHeader:]); got != want {
			t.Errorf("inZoneOrReverse(%q) = %v, want %v", name, got, want)
		}
	}
}

// An answer too large for a client is looked up once and kept, and a
// client with less room than the packed reply gets the kept records fitted
// to its size: the entry's own records, not a second lookup. Checked by
// cutting the kept records to three after the entry is made: a reply from
// them has three answers and no TC; one from a new lookup would have all
// that fit of the 60, with TC.
func TestCacheFitsOversizedAnswer(t *testing.T) {
	query := func() *dns.Msg { return newQuery("big.service.local.", dns.TypeSRV, 0) }
	newBig := func(t *testing.T) *Handler {
		cat := catalog.New()
		bigService(t, cat, 60)
		return newHandler(t, testConfig(cat))
	}
	// keepThree cuts the records of every kept answer to their first
	// three, leaving the packed replies (too large for 512 bytes) as they
	// are.
	keepThree := func(t *testing.T, h *Handler) {
		g := h.gen.Load()
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.entries) != 1 {
			t.Fatalf("%d cache entries after one question, want 1", len(g.entries))
		}
		for k, e := range g.entries {
			c := *e
			c.res = result{answer: e.res.answer[:3], glue: e.res.glue[:3]}
			g.entries[k] = &c
		}
	}
	check := func(t *testing.T, resp *dns.Msg) {
		t.Helper()
		if resp.Rcode != dns.RcodeSuccess || resp.Truncated || len(resp.Answer) != 3 || len(resp.Extra) != 3 {
			t.Fatalf("rcode %s, TC=%v, %d answers, %d additional: want the 3 kept records, no TC (a second lookup gives more, with TC)",
				dns.RcodeToString[resp.Rcode], resp.Truncated, len(resp.Answer), len(resp.Extra))
		}
		if q := resp.Question[0].Name; q != "big.service.local." {
			t.Fatalf("question %q", q)
		}
	}

	t.Run("the oversized miss is kept", func(t *testing.T) {
		h := newBig(t)
		resp := serveDNS(t, h, query(), loopback, false)
		if !resp.Truncated || len(resp.Answer) == 0 {
			t.Fatalf("TC=%v, %d answers: want TC with what fits", resp.Truncated, len(resp.Answer))
		}
		keepThree(t, h) // fails unless the miss made the entry
		check(t, serveDNS(t, h, query(), loopback, false))
	})
	t.Run("filled over TCP, fitted for UDP", func(t *testing.T) {
		h := newBig(t)
		if resp := serveDNS(t, h, query(), loopback, true); resp.Truncated || len(resp.Answer) != 60 {
			t.Fatalf("TCP: TC=%v, %d answers, want all 60", resp.Truncated, len(resp.Answer))
		}
		keepThree(t, h)
		check(t, serveDNS(t, h, query(), loopback, false))
	})
	t.Run("through the server's UDP read loop", func(t *testing.T) {
		h := newBig(t)
		addr := serve(t, h)
		c := &dns.Client{Net: "tcp", Timeout: replyTimeout}
		if _, _, err := c.Exchange(query(), addr); err != nil {
			t.Fatal(err)
		}
		keepThree(t, h)
		c.Net = "udp"
		resp, _, err := c.Exchange(query(), addr)
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
	})
}
