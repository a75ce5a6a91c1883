//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Forwarding: names outside the zone go to the upstream resolvers, here
// always a fake upstream on loopback (testapps/fakeupstream), never a real
// resolver.

// forwardBudget is how long a client may wait for SERVFAIL when no
// upstream answers (issue 4: within 2.5 s).
const forwardBudget = 2500 * time.Millisecond

// A, AAAA and MX outside the zone come back from the upstream with the
// client's ID, the question exactly as the client wrote it (0x20 case), RA
// set and AA clear, over UDP and TCP, with and without EDNS0; NXDOMAIN is
// passed on and an upstream SERVFAIL becomes SERVFAIL.
func TestForwardAnswers(t *testing.T) {
	up := startFakeUpstream(t, "")
	s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr)

	const name = "WwW.ExAmPlE-FwD.CoM."
	cases := []struct {
		qtype uint16
		want  []string
	}{
		{dns.TypeA, []string{upstreamA}},
		{dns.TypeAAAA, []string{upstreamAAAA}},
		{dns.TypeMX, []string{"10 mail." + name}},
	}
	sent := 0
	for _, tc := range cases {
		for _, network := range []string{"udp", "tcp"} {
			for _, edns := range []uint16{0, 1232} {
				t.Run(fmt.Sprintf("%s/%s/edns%d", dns.TypeToString[tc.qtype], network, edns), func(t *testing.T) {
					q := newQuery(name, tc.qtype, edns)
					q.Id = uint16(0x5a00 + sent)
					sent++
					r, rtt, err := exchange(network, s.DNS, q, 5*time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if r.Id != q.Id {
						t.Errorf("reply ID %d, want the client's %d", r.Id, q.Id)
					}
					if len(r.Question) != 1 || r.Question[0].Name != name || r.Question[0].Qtype != tc.qtype {
						t.Errorf("question %v, want %s %s exactly (case echoed)", r.Question, name, dns.TypeToString[tc.qtype])
					}
					if r.Rcode != dns.RcodeSuccess || !r.RecursionAvailable || r.Authoritative || r.Truncated {
						t.Errorf("rcode %s ra=%v aa=%v tc=%v, want NOERROR, ra, no aa, no tc", rcodeName(r.Rcode), r.RecursionAvailable, r.Authoritative, r.Truncated)
					}
					if got := answerStrings(r); !slices.Equal(got, tc.want) {
						t.Errorf("answer %q, want %q", got, tc.want)
					}
					for _, rr := range r.Answer {
						if rr.Header().Name != name {
							t.Errorf("answer owner %q, want %q", rr.Header().Name, name)
						}
					}
					if (r.IsEdns0() != nil) != (edns > 0) {
						t.Errorf("reply OPT %v for a query with EDNS0 %d: an OPT comes back only when the client sent one", r.IsEdns0(), edns)
					}
					t.Logf("%s %s over %s: %v in %v", name, dns.TypeToString[tc.qtype], network, answerStrings(r), rtt.Round(time.Microsecond))
				})
			}
		}
	}
	if c := up.Count(t); c.Queries != sent {
		t.Errorf("upstream received %+v, want %d queries (one per client query)", c, sent)
	}
	for _, tc := range []struct{ name, rcode string }{{"nx.example.com", "NXDOMAIN"}, {"servfail.example.com", "SERVFAIL"}} {
		r, _, err := exchange("udp", s.DNS, newQuery(tc.name, dns.TypeA, 1232), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if rcodeName(r.Rcode) != tc.rcode || len(r.Answer) != 0 {
			t.Errorf("%s: %s with %d answers, want %s and none", tc.name, rcodeName(r.Rcode), len(r.Answer), tc.rcode)
		}
	}
}

// An upstream reply with TC set is asked again over TCP, and the client
// gets the whole answer (40 records), or, without EDNS0, a UDP reply cut
// to 512 bytes with TC set and the whole answer over TCP.
func TestForwardTruncatedRetriesTCP(t *testing.T) {
	up := startFakeUpstream(t, "")
	s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr)

	r, _, err := exchange("udp", s.DNS, newQuery("tc.example.com", dns.TypeA, 1232), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || r.Truncated || len(r.Answer) != upstreamTCN {
		t.Errorf("EDNS0 1232 over UDP: %s tc=%v with %d answers, want NOERROR, no tc, all %d", rcodeName(r.Rcode), r.Truncated, len(r.Answer), upstreamTCN)
	}
	if c := up.Count(t); c.UDP != 1 || c.TCP != 1 {
		t.Errorf("upstream received %+v, want 1 UDP query (answered TC) and its TCP retry", c)
	}

	// Raw, to measure the datagram as sent.
	qb, err := newQuery("tc.example.com", dns.TypeA, 0).Pack()
	if err != nil {
		t.Fatal(err)
	}
	wire, err := rawUDP(s.DNS, qb, 5*time.Second)
	if err != nil || wire == nil {
		t.Fatalf("no EDNS0 over UDP: no reply: %v", err)
	}
	r = new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		t.Fatalf("no EDNS0 over UDP: %v", err)
	}
	if !r.Truncated || len(r.Answer) >= upstreamTCN || len(wire) > 512 {
		t.Errorf("no EDNS0 over UDP: tc=%v, %d answers, %d bytes; want tc, fewer than %d answers, at most 512 bytes", r.Truncated, len(r.Answer), len(wire), upstreamTCN)
	}
	t.Logf("no EDNS0 over UDP: tc, %d of %d answers in %d bytes", len(r.Answer), upstreamTCN, len(wire))
	r, _, err = exchange("tcp", s.DNS, newQuery("tc.example.com", dns.TypeA, 0), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != upstreamTCN {
		t.Errorf("over TCP: tc=%v with %d answers, want all %d", r.Truncated, len(r.Answer), upstreamTCN)
	}
	t.Logf("upstream saw %+v", up.Count(t))
}

// A dead upstream — nothing listening, or one that never answers — gives
// SERVFAIL within 2.5 s, while names of the zone keep answering at once;
// with a second upstream that works, the answer comes from it.
func TestForwardDeadUpstream(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		s := startSvcdns(t, "", "--docker-host", "none", "--upstream", dead)
		r, took, err := exchange("udp", s.DNS, newQuery("dead.example.com", dns.TypeA, 1232), 5*time.Second)
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		t.Logf("SERVFAIL from an upstream with nothing listening in %v", took.Round(time.Millisecond))
		if r.Rcode != dns.RcodeServerFailure || took > forwardBudget {
			t.Errorf("%s after %v, want SERVFAIL within %v", rcodeName(r.Rcode), took, forwardBudget)
		}
	})

	t.Run("stalls", func(t *testing.T) {
		up := startFakeUpstream(t, "", "-stall")
		s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr)
		s.register(t, "fast-1", apiInstance{Service: "fast", Address: "10.5.0.1", Port: 80})

		const forwards = 20
		type result struct {
			rcode int
			took  time.Duration
			err   error
		}
		results := make(chan result, forwards)
		for i := range forwards {
			go func() {
				r, took, err := exchange("udp", s.DNS, newQuery(fmt.Sprintf("q%d.stalled.example.com", i), dns.TypeA, 1232), 5*time.Second)
				res := result{took: took, err: err}
				if err == nil {
					res.rcode = r.Rcode
				}
				results <- res
			}()
		}
		// While the forwards hang, zone names answer at normal speed.
		eventually(t, 2*time.Second, "forwards reach the upstream", func() error {
			if c := up.Count(t); c.Queries < forwards {
				return fmt.Errorf("upstream has %d of %d", c.Queries, forwards)
			}
			return nil
		})
		var lat []time.Duration
		for i := range 50 {
			network := []string{"udp", "tcp"}[i%2]
			r, took, err := exchange(network, s.DNS, newQuery("fast.service.local", dns.TypeA, 1232), 2*time.Second)
			if err != nil {
				t.Fatalf("zone query %d while forwards stall: %v", i, err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("zone query %d: %s with %d answers", i, rcodeName(r.Rcode), len(r.Answer))
			}
			lat = append(lat, took)
		}
		slices.Sort(lat)
		t.Logf("zone queries during %d stalled forwards: p50 %v, max %v", forwards, lat[len(lat)/2], lat[len(lat)-1])
		// A zone query held behind the stalled forwards would wait for
		// their budget (2.4s) and fail its 2s exchange above: no bound on
		// the latencies, which a loaded machine could pass.
		var worst time.Duration
		for range forwards {
			res := <-results
			if res.err != nil {
				t.Errorf("forward to a stalling upstream: no reply: %v", res.err)
				continue
			}
			worst = max(worst, res.took)
			if res.rcode != dns.RcodeServerFailure || res.took > forwardBudget {
				t.Errorf("forward to a stalling upstream: %s after %v, want SERVFAIL within %v", rcodeName(res.rcode), res.took, forwardBudget)
			}
		}
		t.Logf("%d forwards to a stalling upstream: SERVFAIL, the slowest after %v", forwards, worst.Round(time.Millisecond))
	})

	t.Run("failover", func(t *testing.T) {
		good := startFakeUpstream(t, "")
		stall := startFakeUpstream(t, "", "-stall")
		dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		for _, tc := range []struct {
			first string
			limit time.Duration
		}{{dead, 500 * time.Millisecond}, {stall.Addr, forwardBudget}} {
			s := startSvcdns(t, "", "--docker-host", "none", "--upstream", tc.first+","+good.Addr)
			r, took, err := exchange("udp", s.DNS, newQuery("failover.example.com", dns.TypeA, 1232), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first upstream %s: answer %v from the second after %v", tc.first, answerStrings(r), took.Round(time.Millisecond))
			if r.Rcode != dns.RcodeSuccess || !slices.Equal(answerStrings(r), []string{upstreamA}) || took > tc.limit {
				t.Errorf("first upstream %s: %s %v after %v, want %s from the second within %v", tc.first, rcodeName(r.Rcode), answerStrings(r), took, upstreamA, tc.limit)
			}
		}
	})
}

// Replies that are not the upstream's answer to our query — another
// question, a wrong ID, the right ID from another source port — are
// ignored, and the real reply that follows is the answer.
func TestForwardForgedReplyIgnored(t *testing.T) {
	up := startFakeUpstream(t, "")
	s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr)
	for _, network := range []string{"udp", "tcp"} {
		r, took, err := exchange(network, s.DNS, newQuery("forge.example.com", dns.TypeA, 1232), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := answerStrings(r); r.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{upstreamA}) {
			t.Errorf("client over %s: %s %v, want NOERROR %s (not the forged %s)", network, rcodeName(r.Rcode), got, upstreamA, forgedA)
		}
		t.Logf("client over %s: %v in %v", network, answerStrings(r), took.Round(time.Millisecond))
	}
	mismatch := metricValue(t, s.HTTP, "svcdns_forward_errors_total", `kind="mismatch"`)
	t.Logf("svcdns_forward_errors_total{kind=\"mismatch\"} = %v", mismatch)
	if mismatch < 4 {
		t.Errorf("mismatch count %v, want at least 4 (wrong ID and wrong question, for each of 2 queries)", mismatch)
	}
}

// With --max-forwards 5 and an upstream that never answers, the 6th
// concurrent forward gets SERVFAIL at once and never reaches the upstream;
// once the 5 fail, forwarding works again.
func TestForwardInFlightCap(t *testing.T) {
	up := startFakeUpstream(t, "") // stall.… names are never answered
	s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr, "--max-forwards", "5")

	done := make(chan time.Duration, 5)
	for i := range 5 {
		go func() {
			r, took, err := exchange("udp", s.DNS, newQuery(fmt.Sprintf("stall.n%d.example.com", i), dns.TypeA, 1232), 5*time.Second)
			if err != nil || r.Rcode != dns.RcodeServerFailure {
				t.Errorf("stalled forward %d: %v %v, want SERVFAIL", i, r, err)
			}
			done <- took
		}()
	}
	eventually(t, 2*time.Second, "5 forwards in flight", func() error {
		if c := up.Count(t); c.Queries != 5 {
			return fmt.Errorf("upstream has %d", c.Queries)
		}
		return nil
	})
	r, took, err := exchange("udp", s.DNS, newQuery("sixth.example.com", dns.TypeA, 1232), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("6th concurrent forward: %s in %v", rcodeName(r.Rcode), took)
	// At once: before any of the 5 stalled forwards has ended (at their
	// budget of 2.4s), not within a bound on the clock.
	select {
	case <-done:
		t.Errorf("6th concurrent forward: answered after a stalled forward ended, want at once")
	default:
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("6th concurrent forward: %s, want SERVFAIL", rcodeName(r.Rcode))
	}
	if c := up.Count(t); c.Queries != 5 {
		t.Errorf("upstream received %d queries, want 5: the 6th must not be sent", c.Queries)
	}
	if v := metricValue(t, s.HTTP, "svcdns_forward_overloaded_total"); v != 1 {
		t.Errorf("svcdns_forward_overloaded_total %v, want 1", v)
	}
	for range 5 {
		if took := <-done; took > forwardBudget {
			t.Errorf("stalled forward answered after %v, want within %v", took, forwardBudget)
		}
	}
	r, _, err = exchange("udp", s.DNS, newQuery("after.example.com", dns.TypeA, 1232), 5*time.Second)
	if err != nil || r.Rcode != dns.RcodeSuccess || !slices.Equal(answerStrings(r), []string{upstreamA}) {
		t.Errorf("forward after the stalled ones ended: %v %v, want %s", r, err, upstreamA)
	}
	if !strings.Contains(s.Log(), "forwarding overloaded") {
		t.Errorf("no \"forwarding overloaded\" log line")
	}
}

// A client outside --recursion-allow gets REFUSED for names outside the
// zone — just the question, no bigger than the query — and nothing reaches
// the upstream; names of the zone still answer. The client is a second
// loopback address (127.0.0.2), then a network namespace.
func TestForwardRecursionRefused(t *testing.T) {
	t.Run("127.0.0.2", func(t *testing.T) {
		up := startFakeUpstream(t, "")
		s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr, "--recursion-allow", "127.0.0.1/32")
		s.register(t, "z1", apiInstance{Service: "zoned", Address: "10.6.0.1", Port: 80})
		for _, network := range []string{"udp", "tcp"} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeMX, dns.TypeDS} {
				q := newQuery("outside.example.com", qt, 0)
				r, _, err := exchangeFrom(network, "127.0.0.2", s.DNS, q, 3*time.Second)
				if err != nil {
					t.Fatalf("from 127.0.0.2 over %s: %v", network, err)
				}
				qb, _ := q.Pack()
				rb, _ := r.Pack()
				if r.Rcode != dns.RcodeRefused || len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 || len(r.Question) != 1 {
					t.Errorf("from 127.0.0.2 over %s, %s: %s with %d/%d/%d records, want REFUSED with just the question",
						network, dns.TypeToString[qt], rcodeName(r.Rcode), len(r.Answer), len(r.Ns), len(r.Extra))
				}
				if float64(len(rb)) > 1.1*float64(len(qb)) {
					t.Errorf("REFUSED reply of %d bytes for a %d-byte query: amplification", len(rb), len(qb))
				}
			}
			r, _, err := exchangeFrom(network, "127.0.0.2", s.DNS, newQuery("zoned.service.local", dns.TypeA, 0), 3*time.Second)
			if err != nil || r.Rcode != dns.RcodeSuccess || !slices.Equal(answerStrings(r), []string{"10.6.0.1"}) {
				t.Errorf("zone name from 127.0.0.2 over %s: %v %v, want 10.6.0.1", network, r, err)
			}
		}
		if c := up.Count(t); c.Queries != 0 {
			t.Errorf("upstream received %d queries from refused clients: %v", c.Queries, up.Questions(t))
		}
		// The same query from 127.0.0.1 is forwarded: the setup works.
		r, _, err := exchangeFrom("udp", "127.0.0.1", s.DNS, newQuery("outside.example.com", dns.TypeA, 0), 3*time.Second)
		if err != nil || !slices.Equal(answerStrings(r), []string{upstreamA}) {
			t.Errorf("from 127.0.0.1 (allowed): %v %v, want %s", r, err, upstreamA)
		}
		if c := up.Count(t); c.Queries != 1 {
			t.Errorf("upstream received %d queries, want 1 (the allowed client's)", c.Queries)
		}
	})

	t.Run("netns", func(t *testing.T) {
		ns := newTestNetns(t)
		up := startFakeUpstream(t, "")
		// Default --allow (loopback, private, docker) and --recursion-allow
		// (loopback, docker): a client on 10.253.77.2 may ask the zone,
		// not the world.
		s := startSvcdns(t, net.JoinHostPort(ns.HostIP, "0"), "--docker-host", "none", "--upstream", up.Addr)
		s.register(t, "z1", apiInstance{Service: "zoned", Address: "10.6.0.1", Port: 80})
		host, port, _ := net.SplitHostPort(s.DNS)
		dig := func(args ...string) digResult {
			out, err := ns.Exec(append([]string{"dig", "@" + host, "-p", port, "+time=2", "+tries=1"}, args...)...)
			res := parseDig("dig", out)
			if res.Status == "" {
				t.Fatalf("dig %v in the netns: no reply: %v\n%s", args, err, out)
			}
			return res
		}
		for _, args := range [][]string{{"outside.example.com", "A"}, {"+tcp", "outside.example.com", "A"}, {"example.org", "DS"}} {
			if r := dig(args...); r.Status != "REFUSED" || len(r.Answer) != 0 {
				t.Errorf("dig %v from the netns: %s with %d answers, want REFUSED", args, r.Status, len(r.Answer))
			}
		}
		if r := dig("zoned.service.local", "A"); r.Status != "NOERROR" || len(r.Answer) != 1 {
			t.Errorf("zone name from the netns: %s with %d answers, want NOERROR with 1:\n%s", r.Status, len(r.Answer), r.Out)
		}
		if c := up.Count(t); c.Queries != 0 {
			t.Errorf("upstream received %d queries from the netns client: %v", c.Queries, up.Questions(t))
		}
	})
}

// Names of the zone are never forwarded, whatever the type (DS, MX, TXT,
// ...) and whether they exist or not; names that merely end in the zone's
// text (xlocal., local.example.) are outside and are forwarded.
func TestForwardZoneNeverForwarded(t *testing.T) {
	up := startFakeUpstream(t, "")
	s := startSvcdns(t, "", "--docker-host", "none", "--upstream", up.Addr)
	s.register(t, "b1", apiInstance{Service: "books-ms", Address: "10.0.0.1", Port: 8080})

	names := []string{"local.", "LoCaL.", "books-ms.service.local.", "nope.service.local.", "service.local.",
		"b1.container.local.", "x.container.local.", "a.b.c.d.local.", "_books-ms._tcp.service.local.", "ns.local."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeDS, dns.TypeDNSKEY, dns.TypeMX, dns.TypeTXT,
		dns.TypeNS, dns.TypeSOA, dns.TypeCAA, dns.TypeHTTPS, dns.TypeCNAME, dns.TypePTR, dns.TypeNSEC, dns.TypeANY}
	n := 0
	for _, name := range names {
		for _, qt := range types {
			r, _, err := exchange("udp", s.DNS, newQuery(name, qt, 1232), 3*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", name, dns.TypeToString[qt], err)
			}
			n++
			if !r.Authoritative || (r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) {
				t.Errorf("%s %s: %s aa=%v, want an authoritative NOERROR or NXDOMAIN", name, dns.TypeToString[qt], rcodeName(r.Rcode), r.Authoritative)
			}
		}
	}
	if c := up.Count(t); c.Queries != 0 {
		t.Errorf("upstream received %d queries for zone names: %v", c.Queries, up.Questions(t))
	}
	t.Logf("%d zone queries (%d names x %d types), none forwarded", n, len(names), len(types))

	outside := []string{"xlocal.", "local.example.", "service.local.example.com."}
	for _, name := range outside {
		r, _, err := exchange("udp", s.DNS, newQuery(name, dns.TypeA, 1232), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Authoritative || !slices.Equal(answerStrings(r), []string{upstreamA}) {
			t.Errorf("%s: aa=%v %v, want the upstream's %s (outside the zone)", name, r.Authoritative, answerStrings(r), upstreamA)
		}
	}
	if c := up.Count(t); c.Queries != len(outside) {
		t.Errorf("upstream received %d queries, want %d (the names outside the zone): %v", c.Queries, len(outside), up.Questions(t))
	}
}

// An --upstream that is svcdns's own address is refused at start: non-zero
// exit, and the message says it would forward to itself.
func TestForwardUpstreamIsSelf(t *testing.T) {
	p := strconv.Itoa(freePort(t))
	httpAddr := "127.0.0.1:0"
	for _, tc := range []struct{ dnsAddr, upstream string }{
		{"127.0.0.1:" + p, "127.0.0.1:" + p},
		{"127.0.0.1:53", "127.0.0.1"},
		{"0.0.0.0:" + p, "127.0.0.1:" + p},
		{":" + p, "127.0.0.1:" + p},
		{"127.0.0.1:" + p, "192.0.2.53:53,127.0.0.1:" + p},
	} {
		out, err := runSvcdnsOnce(t, "--docker-host", "none", "--dns-addr", tc.dnsAddr, "--http-addr", httpAddr, "--upstream", tc.upstream)
		t.Logf("--dns-addr %s --upstream %s: %v: %s", tc.dnsAddr, tc.upstream, err, strings.TrimSpace(lastLine(out)))
		if err == nil || !strings.Contains(out, "forward to itself") {
			t.Errorf("--dns-addr %s --upstream %s: exit %v, want non-zero with \"forward to itself\":\n%s", tc.dnsAddr, tc.upstream, err, out)
		}
	}
}

// With no --upstream, the nameservers of --resolv-conf are the upstreams,
// without svcdns's own address: svcdns on 127.0.0.77:53 with a resolv.conf
// listing 127.0.0.77 and a fake upstream on 127.0.0.78:53 forwards to the
// fake only; a resolv.conf listing only itself means no forwarding.
func TestForwardResolvConfSkipsSelf(t *testing.T) {
	requireBinary(t)
	const self, other = "127.0.0.77", "127.0.0.78"
	waitBindable(t, self+":53", 5*time.Second)
	waitBindable(t, other+":53", 5*time.Second)
	up := startFakeUpstream(t, other+":53")
	dir := t.TempDir()

	t.Run("skips itself", func(t *testing.T) {
		rc := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(rc, []byte("# test\nsearch example.test\nnameserver "+self+"\nnameserver "+other+"\noptions ndots:1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := startSvcdns(t, self+":53", "--docker-host", "none", "--upstream", "", "--resolv-conf", rc)
		if !strings.Contains(s.Log(), "upstreams="+other+":53 ") {
			t.Errorf("start line does not name %s:53 as the only upstream:\n%s", other, s.Log())
		}
		before := up.Count(t).Queries
		r, took, err := exchange("udp", s.DNS, newQuery("via-resolv-conf.example.com", dns.TypeA, 1232), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(answerStrings(r), []string{upstreamA}) {
			t.Errorf("answer %s %v, want %s from the fake upstream", rcodeName(r.Rcode), answerStrings(r), upstreamA)
		}
		if got := up.Count(t).Queries - before; got != 1 {
			t.Errorf("fake upstream received %d queries, want 1", got)
		}
		if v := metricValue(t, s.HTTP, "svcdns_forward_requests_total", `upstream="`+self+`:53"`); v != 0 {
			t.Errorf("svcdns sent %v queries to itself", v)
		}
		t.Logf("forwarded via resolv.conf in %v", took.Round(time.Millisecond))
	})

	t.Run("only itself", func(t *testing.T) {
		rc := filepath.Join(dir, "resolv-self.conf")
		if err := os.WriteFile(rc, []byte("nameserver "+self+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := startSvcdns(t, self+":53", "--docker-host", "none", "--upstream", "", "--resolv-conf", rc)
		if !strings.Contains(s.Log(), "no nameserver other than svcdns itself") {
			t.Errorf("start line does not say resolv.conf lists only svcdns:\n%s", s.Log())
		}
		before := up.Count(t).Queries
		// REFUSED, and no query at the fake upstream: not forwarded, to
		// itself or anywhere (a loop would end in SERVFAIL).
		r, _, err := exchange("udp", s.DNS, newQuery("loop.example.com", dns.TypeA, 1232), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused {
			t.Errorf("outside name with no upstream: %s, want REFUSED", rcodeName(r.Rcode))
		}
		if got := up.Count(t).Queries - before; got != 0 {
			t.Errorf("fake upstream received %d queries, want 0", got)
		}
	})
}

// A container on the default bridge started with --dns <bridge gateway>
// resolves, through svcdns with its default ACLs (the bridge is a Docker
// network svcdns sees, so its clients may recurse), a forwarded name from
// the fake upstream and names of the zone, with Go's resolver and busybox
// nslookup; no zone name ever reaches the upstream.
func TestForwardDockerBridgeClient(t *testing.T) {
	requireDocker(t)
	gw := bridgeGateway(t)
	waitBindable(t, net.JoinHostPort(gw.String(), "53"), 60*time.Second) // another test's svcdns may hold it
	_, addr := dockerDNSAddr(t)
	up := startFakeUpstream(t, "")
	s := startSvcdns(t, addr, "--upstream", up.Addr, "--docker-filter", testFilter)
	s.register(t, "fwd-api-1", apiInstance{Service: "fwd-api", Address: "10.99.0.1", Port: 80})
	id := runContainer(t, "fwd-web", "--label", "SERVICE_NAME=fwd-web", imgFakesvc)
	webIP := containerIP(t, id, "bridge")
	// From 127.0.0.1: Docker's MASQUERADE rule (-s 172.17.0.0/16 ! -o
	// docker0) rewrites the host's own packets from the gateway address
	// to the gateway address, so they may arrive from the host's public
	// address, outside the default --allow.
	took := eventually(t, 15*time.Second, "fwd-web in DNS", func() error {
		r, _, err := exchangeFrom("udp", "127.0.0.1", s.DNS, newQuery("fwd-web.service.local", dns.TypeA, 1232), 2*time.Second)
		if err != nil {
			return err
		}
		return sameSet("fwd-web A", answerStrings(r), []string{webIP})
	})
	t.Logf("container fwd-web (%s) answered %v after docker run returned", webIP, took.Round(time.Millisecond))

	const outside = "fwd-outside.example.com"
	t.Run("Go resolver", func(t *testing.T) {
		out, err := runClient(t, "fwd-resolve", "--dns", gw.String(), imgResolve, "-retry", "5s",
			"A="+outside, "AAAA="+outside, "A=fwd-api.service.local", "A=fwd-web.service.local")
		got := map[string][]string{}
		for line := range strings.SplitSeq(out, "\n") {
			var r struct {
				Query string   `json:"query"`
				Addrs []string `json:"addrs"`
				Error string   `json:"error"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Query != "" {
				got[r.Query] = r.Addrs
				if r.Error != "" {
					t.Errorf("%s: %s", r.Query, r.Error)
				}
			}
		}
		want := map[string][]string{
			"A=" + outside: {upstreamA}, "AAAA=" + outside: {upstreamAAAA},
			"A=fwd-api.service.local": {"10.99.0.1"}, "A=fwd-web.service.local": {webIP},
		}
		for q, w := range want {
			if !slices.Equal(got[q], w) {
				t.Errorf("%s: %v, want %v", q, got[q], w)
			}
		}
		if err != nil || t.Failed() {
			t.Errorf("resolve in a container with --dns %s: %v\n%s", gw, err, out)
		}
	})

	t.Run("busybox nslookup", func(t *testing.T) {
		if _, err := dockerCmd("image", "inspect", imgBusybox); err != nil {
			t.Skipf("no busybox image (busybox-static not installed): %v", err)
		}
		for _, tc := range []struct{ name, want string }{{outside, upstreamA}, {"fwd-api.service.local", "10.99.0.1"}} {
			var out string
			var err error
			for try := range 3 { // busybox nslookup does not retry
				out, err = runClient(t, "fwd-busybox-"+strconv.Itoa(try), "--dns", gw.String(), imgBusybox, "nslookup", tc.name)
				if err == nil {
					break
				}
			}
			if err != nil || !busyboxHasAddress(out, tc.want) {
				t.Errorf("busybox nslookup %s: want Address %s: %v\n%s", tc.name, tc.want, err, out)
			}
		}
	})

	var zoneAsked []string
	sawOutside := false
	for _, q := range up.Questions(t) {
		name := strings.ToLower(strings.Fields(q)[1])
		if dns.IsSubDomain("local.", name) {
			zoneAsked = append(zoneAsked, q)
		}
		if strings.HasPrefix(name, outside) {
			sawOutside = true
		}
	}
	if len(zoneAsked) > 0 || !sawOutside {
		t.Errorf("upstream questions: zone names %v (want none), %s seen: %v", zoneAsked, outside, sawOutside)
	}
}

// busyboxHasAddress reports whether busybox nslookup printed addr as an
// answer (after the server's own lines).
func busyboxHasAddress(out, addr string) bool {
	lines := strings.Split(out, "\n")
	answers := false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Name:") {
			answers = true
		}
		if answers && strings.HasPrefix(l, "Address") && strings.HasSuffix(l, addr) {
			return true
		}
	}
	return false
}
