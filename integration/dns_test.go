//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The foundation tests: svcdns with no Docker at all, instances registered
// over the HTTP API, answers checked with dig and kdig. They never skip.

var tools = []string{"dig", "kdig"}

// seedBooks registers the instances the naming-table cases expect.
func seedBooks(t *testing.T, s *svcdns) {
	s.register(t, "b1", apiInstance{Service: "books-ms", Address: "10.0.0.1", Port: 8080, Tags: []string{"v1"}})
	s.register(t, "b2", apiInstance{Service: "books-ms", Address: "10.0.0.2", Port: 8081, Tags: []string{"v2"}})
	s.register(t, "b3", apiInstance{Service: "Books-MS", Address: "10.0.0.3", Port: 8082, Tags: []string{"v1"}})
	s.register(t, "v6", apiInstance{Service: "ipv6-svc", Address: "fd00::5", Port: 80})
	s.register(t, "dns1", apiInstance{Service: "dns-svc", Address: "10.0.0.9", Port: 53, Protocol: "udp"})
}

// rrKeys turns records into comparable strings: owner (case kept), type,
// and the data a user relies on (addresses, SRV port and target, PTR
// target); SRV priority and weight, SOA data and TTLs are left out.
func rrKeys(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		k := h.Name + " " + dns.TypeToString[h.Rrtype]
		switch r := rr.(type) {
		case *dns.A:
			k += " " + r.A.String()
		case *dns.AAAA:
			k += " " + r.AAAA.String()
		case *dns.SRV:
			k += " " + strconv.Itoa(int(r.Port)) + " " + strings.ToLower(r.Target)
		case *dns.PTR:
			k += " " + strings.ToLower(r.Ptr)
		case *dns.OPT:
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// keys is the expectation side of rrKeys, one "owner TYPE data" per string.
func keys(lines ...string) []string {
	out := slices.Clone(lines)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestNamingTableDigKdig(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none", "--ttl", "5")
	seedBooks(t, s)

	booksA := keys("books-ms.service.local. A 10.0.0.1", "books-ms.service.local. A 10.0.0.2", "books-ms.service.local. A 10.0.0.3")
	booksGlue := keys("b1.container.local. A 10.0.0.1", "b2.container.local. A 10.0.0.2", "b3.container.local. A 10.0.0.3")
	soa := keys("local. SOA")

	cases := []struct {
		name         string
		qname, qtype string
		status       string
		aa           bool     // the AA flag must be set
		answer       []string // rrKeys of the answer section
		ns           []string // rrKeys of the authority section; nil = not checked
		extra        []string // rrKeys of the additional A/AAAA records; nil = not checked
		ttl          uint32   // every answer's TTL, when not 0
	}{
		{name: "A", qname: "books-ms.service.local", qtype: "A", status: "NOERROR", aa: true, answer: booksA, ns: keys(), ttl: 5},
		{name: "SRV with additional", qname: "books-ms.service.local", qtype: "SRV", status: "NOERROR", aa: true,
			answer: keys("books-ms.service.local. SRV 8080 b1.container.local.", "books-ms.service.local. SRV 8081 b2.container.local.",
				"books-ms.service.local. SRV 8082 b3.container.local."), extra: booksGlue, ttl: 5},
		{name: "tag", qname: "v1.books-ms.service.local", qtype: "A", status: "NOERROR", aa: true,
			answer: keys("v1.books-ms.service.local. A 10.0.0.1", "v1.books-ms.service.local. A 10.0.0.3")},
		{name: "unknown tag", qname: "v9.books-ms.service.local", qtype: "A", status: "NXDOMAIN", aa: true, answer: keys(), ns: soa},
		{name: "RFC 2782 proto", qname: "_books-ms._tcp.service.local", qtype: "SRV", status: "NOERROR", aa: true,
			answer: keys("_books-ms._tcp.service.local. SRV 8080 b1.container.local.", "_books-ms._tcp.service.local. SRV 8081 b2.container.local.",
				"_books-ms._tcp.service.local. SRV 8082 b3.container.local."), extra: booksGlue},
		{name: "RFC 2782 tag", qname: "_books-ms._v1.service.local", qtype: "SRV", status: "NOERROR", aa: true,
			answer: keys("_books-ms._v1.service.local. SRV 8080 b1.container.local.", "_books-ms._v1.service.local. SRV 8082 b3.container.local."),
			extra:  keys("b1.container.local. A 10.0.0.1", "b3.container.local. A 10.0.0.3")},
		{name: "RFC 2782 udp", qname: "_dns-svc._udp.service.local", qtype: "SRV", status: "NOERROR", aa: true,
			answer: keys("_dns-svc._udp.service.local. SRV 53 dns1.container.local."), extra: keys("dns1.container.local. A 10.0.0.9")},
		{name: "one port", qname: "_8081._tcp.books-ms.service.local", qtype: "SRV", status: "NOERROR", aa: true,
			answer: keys("_8081._tcp.books-ms.service.local. SRV 8081 b2.container.local."), extra: keys("b2.container.local. A 10.0.0.2")},
		{name: "NODATA AAAA on v4-only", qname: "books-ms.service.local", qtype: "AAAA", status: "NOERROR", aa: true, answer: keys(), ns: soa},
		{name: "AAAA", qname: "ipv6-svc.service.local", qtype: "AAAA", status: "NOERROR", aa: true, answer: keys("ipv6-svc.service.local. AAAA fd00::5")},
		{name: "NODATA A on v6-only", qname: "ipv6-svc.service.local", qtype: "A", status: "NOERROR", aa: true, answer: keys(), ns: soa},
		{name: "NXDOMAIN", qname: "nope.service.local", qtype: "A", status: "NXDOMAIN", aa: true, answer: keys(), ns: soa},
		{name: "NXDOMAIN outside branches", qname: "nope.local", qtype: "A", status: "NXDOMAIN", aa: true, answer: keys(), ns: soa},
		{name: "empty non-terminal service.", qname: "service.local", qtype: "A", status: "NOERROR", aa: true, answer: keys(), ns: soa},
		{name: "empty non-terminal _tcp", qname: "_tcp.service.local", qtype: "SRV", status: "NOERROR", aa: true, answer: keys(), ns: soa},
		{name: "case echoed", qname: "BoOkS-Ms.SeRvIcE.LoCaL", qtype: "A", status: "NOERROR", aa: true,
			answer: keys("BoOkS-Ms.SeRvIcE.LoCaL. A 10.0.0.1", "BoOkS-Ms.SeRvIcE.LoCaL. A 10.0.0.2", "BoOkS-Ms.SeRvIcE.LoCaL. A 10.0.0.3")},
		{name: "container", qname: "b1.container.local", qtype: "A", status: "NOERROR", aa: true, answer: keys("b1.container.local. A 10.0.0.1")},
		{name: "unknown container", qname: "b9.container.local", qtype: "A", status: "NXDOMAIN", aa: true, answer: keys(), ns: soa},
		{name: "PTR", qname: "1.0.0.10.in-addr.arpa", qtype: "PTR", status: "NOERROR", answer: keys("1.0.0.10.in-addr.arpa. PTR b1.container.local.")},
		{name: "apex SOA", qname: "local", qtype: "SOA", status: "NOERROR", aa: true, answer: soa},
		{name: "apex NS", qname: "local", qtype: "NS", status: "NOERROR", aa: true, answer: keys("local. NS")},
		{name: "out of zone, no upstream", qname: "example.com", qtype: "A", status: "REFUSED", answer: keys()},
	}
	for _, tc := range cases {
		for _, tool := range tools {
			if tc.name == "case echoed" && tool == "kdig" {
				continue // kdig lower-cases the name before sending it: there is no case to echo
			}
			t.Run(tc.name+"/"+tool, func(t *testing.T) {
				r := runDig(t, tool, s.DNS, tc.qname, tc.qtype)
				if r.Status != tc.status {
					t.Errorf("status %s, want %s", r.Status, tc.status)
				}
				if tc.aa && !r.Has("aa") {
					t.Errorf("flags %v: no aa", r.Flags)
				}
				if r.Has("tc") {
					t.Errorf("flags %v: tc on a small answer", r.Flags)
				}
				if got := nonNil(rrKeys(r.Answer)); !slices.Equal(got, tc.answer) {
					t.Errorf("answer:\n got  %q\n want %q", got, tc.answer)
				}
				if tc.ns != nil {
					if got := nonNil(rrKeys(r.Authority)); !slices.Equal(got, tc.ns) {
						t.Errorf("authority:\n got  %q\n want %q", got, tc.ns)
					}
				}
				if tc.extra != nil {
					if got := nonNil(rrKeys(r.Additional)); !slices.Equal(got, tc.extra) {
						t.Errorf("additional:\n got  %q\n want %q", got, tc.extra)
					}
				}
				for _, rr := range r.Answer {
					if tc.ttl != 0 && rr.Header().Ttl != tc.ttl {
						t.Errorf("TTL %d, want %d: %s", rr.Header().Ttl, tc.ttl, rr)
					}
				}
				if t.Failed() {
					t.Logf("%s output:\n%s", tool, r.Out)
				}
			})
		}
	}
}

// ANY over UDP gets one RRset (RFC 8482), never everything the name has.
func TestANYOneRRset(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none")
	seedBooks(t, s)
	for _, tool := range tools {
		r := runDig(t, tool, s.DNS, "books-ms.service.local", "ANY")
		if r.Status != "NOERROR" || !r.Has("aa") {
			t.Errorf("%s: status %s flags %v, want NOERROR with aa", tool, r.Status, r.Flags)
		}
		types := map[uint16]bool{}
		for _, rr := range r.Answer {
			types[rr.Header().Rrtype] = true
		}
		if len(types) != 1 {
			t.Errorf("%s ANY: answer has %d RR types, want exactly one RRset:\n%s", tool, len(types), r.Out)
		}
	}
}

// AXFR and IXFR of the zone are refused.
func TestZoneTransferRefused(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none")
	seedBooks(t, s)
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		m := new(dns.Msg)
		m.SetQuestion("local.", qt)
		if qt == dns.TypeIXFR {
			m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "local.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "ns.local.", Mbox: "h.local.", Serial: 1}}
		}
		r, _, err := (&dns.Client{Net: "tcp", Timeout: 3 * time.Second}).Exchange(m, s.DNS)
		if err != nil {
			t.Fatalf("%s over TCP: %v", dns.TypeToString[qt], err)
		}
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s with %d answers, want REFUSED and none", dns.TypeToString[qt], dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
	host, port, _ := net.SplitHostPort(s.DNS)
	out, _ := exec.Command("dig", "@"+host, "-p", port, "+time=2", "+tries=1", "AXFR", "local").CombinedOutput()
	if !strings.Contains(string(out), "Transfer failed") || strings.Contains(string(out), "IN\tSOA") {
		t.Errorf("dig AXFR local: want \"Transfer failed\" and no records:\n%s", out)
	}
}

// With 60 instances an SRV answer does not fit 512 bytes: without EDNS0 the
// UDP answer is truncated with TC set, whole records only; over TCP the
// whole answer comes back, with every target's address.
func TestTruncationAndTCP(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none", "--max-udp-size", "1232")
	const n = 60
	wantSRV := make([]string, 0, n)
	wantGlue := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("big-%02d", i)
		addr := fmt.Sprintf("10.1.0.%d", i)
		s.register(t, id, apiInstance{Service: "big", Address: addr, Port: 9000 + i})
		wantSRV = append(wantSRV, fmt.Sprintf("big.service.local. SRV %d %s.container.local.", 9000+i, id))
		wantGlue = append(wantGlue, fmt.Sprintf("%s.container.local. A %s", id, addr))
	}
	wantSRV, wantGlue = keys(wantSRV...), keys(wantGlue...)

	reCount := regexp.MustCompile(`(?i)ANSWER: (\d+)`)
	truncated := []struct {
		name  string
		tool  string
		args  []string
		limit int
	}{
		{"dig SRV no EDNS", "dig", []string{"+noedns", "+ignore", "big.service.local", "SRV"}, 512},
		{"dig A no EDNS", "dig", []string{"+noedns", "+ignore", "big.service.local", "A"}, 512},
		{"dig SRV EDNS 1232", "dig", []string{"+bufsize=1232", "+ignore", "big.service.local", "SRV"}, 1232},
		{"dig SRV EDNS 4096 capped", "dig", []string{"+bufsize=4096", "+ignore", "big.service.local", "SRV"}, 1232},
		{"kdig SRV no EDNS", "kdig", []string{"+noedns", "+notcp", "big.service.local", "SRV"}, 512},
	}
	for _, tc := range truncated {
		t.Run(tc.name, func(t *testing.T) {
			r := runDig(t, tc.tool, s.DNS, tc.args...)
			if r.Status != "NOERROR" || !r.Has("tc") || !r.Has("aa") {
				t.Errorf("status %s flags %v, want NOERROR with tc and aa", r.Status, r.Flags)
			}
			if r.Size == 0 || r.Size > tc.limit {
				t.Errorf("reply of %d bytes, want 1..%d", r.Size, tc.limit)
			}
			if len(r.Answer) == 0 || len(r.Answer) >= n {
				t.Errorf("%d answers in a truncated reply, want some but fewer than %d", len(r.Answer), n)
			}
			if m := reCount.FindStringSubmatch(r.Out); m == nil || m[1] != strconv.Itoa(len(r.Answer)) {
				t.Errorf("header counts %v answers, %d parsed: half a record?", m, len(r.Answer))
			}
			t.Logf("%s: %d of %d answers, %d additional, %d bytes", tc.name, len(r.Answer), n, len(r.Additional), r.Size)
			if t.Failed() {
				t.Logf("output:\n%s", r.Out)
			}
		})
	}
	for _, tool := range tools {
		t.Run(tool+" TCP full answer", func(t *testing.T) {
			r := runDig(t, tool, s.DNS, "+tcp", "big.service.local", "SRV")
			if r.Status != "NOERROR" || r.Has("tc") || !r.Has("aa") {
				t.Errorf("status %s flags %v, want NOERROR with aa and no tc", r.Status, r.Flags)
			}
			if got := rrKeys(r.Answer); !slices.Equal(got, wantSRV) {
				t.Errorf("answer: %d records, want all %d:\n got  %q\n want %q", len(got), n, got, wantSRV)
			}
			if got := rrKeys(r.Additional); !slices.Equal(got, wantGlue) {
				t.Errorf("additional: %d records, want all %d:\n got  %q\n want %q", len(got), n, got, wantGlue)
			}
		})
	}
	// dig's default: a truncated UDP answer is retried over TCP.
	r := runDig(t, "dig", s.DNS, "+noedns", "big.service.local", "SRV")
	if len(r.Answer) != n {
		t.Errorf("dig retrying over TCP after TC: %d answers, want %d", len(r.Answer), n)
	}
}

// An instance registered with a TTL answers until it expires, and is gone
// from answers within a second of expiring; putting it again in time keeps
// it.
func TestAPITTLExpiry(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none")
	const ttl = 2 * time.Second
	put := func(id string) time.Time {
		s.register(t, id, apiInstance{Service: id, Address: "10.2.0.1", Port: 80, TTL: ttl.String()})
		return time.Now()
	}
	answered := func(name string) (bool, error) {
		m, err := ask(s.DNS, name+".service.local", dns.TypeA)
		if err != nil {
			return false, err
		}
		switch m.Rcode {
		case dns.RcodeSuccess:
			return len(m.Answer) > 0, nil
		case dns.RcodeNameError:
			return false, nil
		}
		return false, fmt.Errorf("rcode %s", dns.RcodeToString[m.Rcode])
	}

	putAt := put("ephemeral")
	kept := put("renewed")
	if ok, err := answered("ephemeral"); err != nil || !ok {
		t.Fatalf("ephemeral right after PUT: answered=%v err=%v", ok, err)
	}
	// Renew one every ttl/2 while the other expires.
	var goneAfter time.Duration
	deadline := putAt.Add(ttl + time.Second + 2*time.Second) // spec: ttl + 1s; 2s slack for a busy machine
	for {
		if time.Since(kept) > ttl/2 {
			kept = put("renewed")
		}
		ok, err := answered("ephemeral")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			goneAfter = time.Since(putAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ephemeral (ttl %v) still answered %v after its PUT", ttl, time.Since(putAt))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("instance with ttl %v gone from answers %v after its PUT (%v after expiry)", ttl, goneAfter.Round(time.Millisecond), (goneAfter - ttl).Round(time.Millisecond))
	if goneAfter < ttl-200*time.Millisecond {
		t.Errorf("ephemeral gone %v after its PUT, before its ttl %v", goneAfter, ttl)
	}
	r := runDig(t, "dig", s.DNS, "ephemeral.service.local", "A")
	if r.Status != "NXDOMAIN" || len(r.Authority) != 1 {
		t.Errorf("expired instance: status %s with %d authority records, want NXDOMAIN with the SOA", r.Status, len(r.Authority))
	}
	if ok, err := answered("renewed"); err != nil || !ok {
		t.Errorf("renewed every ttl/2: answered=%v err=%v, want still answered", ok, err)
	}
}

// A DNS port that is taken makes svcdns exit non-zero with a message that
// names the problem, not hang or serve half.
func TestDNSPortInUse(t *testing.T) {
	requireBinary(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, svcdnsBin, "--docker-host", "none", "--upstream", "none",
		"--dns-addr", pc.LocalAddr().String(), "--http-addr", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("svcdns kept running with its DNS port taken:\n%s", out)
	}
	if err == nil {
		t.Fatalf("svcdns exited 0 with its DNS port taken:\n%s", out)
	}
	if !strings.Contains(string(out), pc.LocalAddr().String()) && !strings.Contains(strings.ToLower(string(out)), "in use") {
		t.Errorf("exit message does not say which address or why:\n%s", out)
	}
	t.Logf("svcdns with a taken DNS port: %v: %s", err, strings.TrimSpace(lastLine(string(out))))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
