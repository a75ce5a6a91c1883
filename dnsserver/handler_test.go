package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/svcdns/svcdns/catalog"
)

// Clients, each a different view of the seeded catalog.
var (
	loopback   = netip.MustParseAddr("127.0.0.1")    // shares no network: published or first-network addresses
	onBridge   = netip.MustParseAddr("172.17.0.50")  // on the default bridge
	onBack     = netip.MustParseAddr("10.20.0.9")    // on multi's "back" network
	onFront    = netip.MustParseAddr("10.10.0.9")    // on multi's "front" network
	onFront6   = netip.MustParseAddr("fd00:10::99")  // on "front", over IPv6
	outsider   = netip.MustParseAddr("203.0.113.1")  // allowed to query, not to recurse
	upstreamIP = netip.MustParseAddr("198.51.100.7") // what the fake upstream answers
)

const soa = "local. 3 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"

type dnsCase struct {
	name   string
	client netip.Addr
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	ns     []string
	extra  []string // nil: not checked
	noAA   bool     // the answer is not authoritative (forwarded, refused)
}

func TestNamingTable(t *testing.T) {
	cat := seed(t)
	fwd := &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{addrRR(r.Question[0].Name, upstreamIP, 60)}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		return m, nil
	}}
	cfg := testConfig(cat)
	cfg.Forwarder = fwd
	h := newHandler(t, cfg)

	cases := []dnsCase{
		// Services, in the view of a client that shares no network.
		{name: "A: published and container addresses", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeA,
			answer: []string{"books-ms.service.local. 5 IN A 192.168.1.10", "books-ms.service.local. 5 IN A 172.17.0.3"}},
		{name: "SRV: host port, targets with glue", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeSRV,
			answer: []string{"books-ms.service.local. 5 IN SRV 1 1 32768 books-1.container.local.", "books-ms.service.local. 5 IN SRV 1 1 8080 books-2.container.local."},
			extra:  []string{"books-1.container.local. 5 IN A 192.168.1.10", "books-2.container.local. 5 IN A 172.17.0.3"}},
		{name: "A: client on the bridge gets bridge addresses", client: onBridge, qname: "books-ms.service.local.", qtype: dns.TypeA,
			answer: []string{"books-ms.service.local. 5 IN A 172.17.0.2", "books-ms.service.local. 5 IN A 172.17.0.3"}},
		{name: "SRV: client on the bridge gets container ports", client: onBridge, qname: "books-ms.service.local.", qtype: dns.TypeSRV,
			answer: []string{"books-ms.service.local. 5 IN SRV 1 1 8080 books-1.container.local.", "books-ms.service.local. 5 IN SRV 1 1 8080 books-2.container.local."},
			extra:  []string{"books-1.container.local. 5 IN A 172.17.0.2", "books-2.container.local. 5 IN A 172.17.0.3"}},
		{name: "case of the question kept", client: loopback, qname: "BoOkS-mS.SeRvIcE.LoCaL.", qtype: dns.TypeA,
			answer: []string{"BoOkS-mS.SeRvIcE.LoCaL. 5 IN A 192.168.1.10", "BoOkS-mS.SeRvIcE.LoCaL. 5 IN A 172.17.0.3"}},
		{name: "tag", client: loopback, qname: "v2.books-ms.service.local.", qtype: dns.TypeA,
			answer: []string{"v2.books-ms.service.local. 5 IN A 172.17.0.3"}},
		{name: "unknown tag", client: loopback, qname: "v3.books-ms.service.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "RFC 2782 protocol", client: onBridge, qname: "_books-ms._tcp.service.local.", qtype: dns.TypeSRV,
			answer: []string{"_books-ms._tcp.service.local. 5 IN SRV 1 1 8080 books-1.container.local.", "_books-ms._tcp.service.local. 5 IN SRV 1 1 8080 books-2.container.local."}},
		{name: "RFC 2782 protocol, A: the addresses", client: loopback, qname: "_books-ms._tcp.service.local.", qtype: dns.TypeA,
			answer: []string{"_books-ms._tcp.service.local. 5 IN A 192.168.1.10", "_books-ms._tcp.service.local. 5 IN A 172.17.0.3"}},
		{name: "RFC 2782 tag", client: loopback, qname: "_books-ms._v1.service.local.", qtype: dns.TypeSRV,
			answer: []string{"_books-ms._v1.service.local. 5 IN SRV 1 1 32768 books-1.container.local."},
			extra:  []string{"books-1.container.local. 5 IN A 192.168.1.10"}},
		{name: "RFC 2782 udp filters the protocol", client: onBridge, qname: "_resolver._udp.service.local.", qtype: dns.TypeSRV,
			answer: []string{"_resolver._udp.service.local. 5 IN SRV 1 1 53 dnsd.container.local."},
			extra:  []string{"dnsd.container.local. 5 IN A 172.17.0.9"}},
		{name: "two instances on one address: A once", client: onBridge, qname: "resolver.service.local.", qtype: dns.TypeA,
			answer: []string{"resolver.service.local. 5 IN A 172.17.0.9"}},
		{name: "service with no passing instance", client: loopback, qname: "nope.service.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "NODATA: AAAA of a v4-only service", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeAAAA, ns: []string{soa}},
		{name: "NODATA: TXT", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeTXT, ns: []string{soa}},
		{name: "NODATA: SRV of a service without ports", client: loopback, qname: "worker.service.local.", qtype: dns.TypeSRV, ns: []string{soa}},
		{name: "A of a service without ports", client: loopback, qname: "worker.service.local.", qtype: dns.TypeA,
			answer: []string{"worker.service.local. 5 IN A 172.17.0.10"}},
		{name: "ANY: one RRset", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeANY,
			answer: []string{"books-ms.service.local. 5 IN A 192.168.1.10", "books-ms.service.local. 5 IN A 172.17.0.3"}},

		// Multi-network, multi-port.
		{name: "auto: the address on the client's network (back)", client: onBack, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 10.20.0.5"}},
		{name: "auto: the address on the client's network (front)", client: onFront, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 10.10.0.5"}},
		{name: "auto: AAAA on a dual-stack network", client: onFront, qname: "web.service.local.", qtype: dns.TypeAAAA,
			answer: []string{"web.service.local. 5 IN AAAA fd00:10::5"}},
		{name: "auto: IPv6 client gets both families of its network", client: onFront6, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 10.10.0.5"}},
		{name: "SRV: one record per port, glue once", client: onBack, qname: "web.service.local.", qtype: dns.TypeSRV,
			answer: []string{"web.service.local. 5 IN SRV 1 1 80 multi.container.local.", "web.service.local. 5 IN SRV 1 1 443 multi.container.local."},
			extra:  []string{"multi.container.local. 5 IN A 10.20.0.5"}},
		{name: "one port by number", client: onBack, qname: "_443._tcp.web.service.local.", qtype: dns.TypeSRV,
			answer: []string{"_443._tcp.web.service.local. 5 IN SRV 1 1 443 multi.container.local."}},
		{name: "one port by name", client: onBack, qname: "_http._tcp.web.service.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.service.local. 5 IN SRV 1 1 80 multi.container.local."}},
		{name: "a port of the other protocol", client: onBack, qname: "_443._udp.web.service.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soa}},

		// Host network, API instances, names that are not labels.
		{name: "host network: the host's address", client: onBridge, qname: "node-exporter.service.local.", qtype: dns.TypeSRV,
			answer: []string{"node-exporter.service.local. 5 IN SRV 1 1 9100 hostnet.container.local."},
			extra:  []string{"hostnet.container.local. 5 IN A 192.168.1.10"}},
		{name: "SRV target of a container without a DNS name: its short id", client: loopback, qname: "legacy.service.local.", qtype: dns.TypeSRV,
			answer: []string{"legacy.service.local. 5 IN SRV 1 1 7000 0123456789ab.container.local."},
			extra:  []string{"0123456789ab.container.local. 5 IN A 172.17.0.11"}},
		{name: "short id name answers", client: loopback, qname: "0123456789ab.container.local.", qtype: dns.TypeA,
			answer: []string{"0123456789ab.container.local. 5 IN A 172.17.0.11"}},
		{name: "API instance SRV", client: onBridge, qname: "api-svc.service.local.", qtype: dns.TypeSRV,
			answer: []string{"api-svc.service.local. 5 IN SRV 1 1 9000 b1.container.local."},
			extra:  []string{"b1.container.local. 5 IN A 10.0.0.1"}},
		{name: "API instance tag", client: loopback, qname: "blue.api-svc.service.local.", qtype: dns.TypeA,
			answer: []string{"blue.api-svc.service.local. 5 IN A 10.0.0.1"}},
		{name: "AAAA", client: loopback, qname: "ipv6-svc.service.local.", qtype: dns.TypeAAAA,
			answer: []string{"ipv6-svc.service.local. 5 IN AAAA fd00::5"}},
		{name: "NODATA: A of a v6-only service", client: loopback, qname: "ipv6-svc.service.local.", qtype: dns.TypeA, ns: []string{soa}},

		// Containers.
		{name: "container, published: host address", client: loopback, qname: "books-1.container.local.", qtype: dns.TypeA,
			answer: []string{"books-1.container.local. 5 IN A 192.168.1.10"}},
		{name: "container, shared network: its address there", client: onBridge, qname: "books-1.container.local.", qtype: dns.TypeA,
			answer: []string{"books-1.container.local. 5 IN A 172.17.0.2"}},
		{name: "unhealthy container", client: loopback, qname: "books-3.container.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "unknown container", client: loopback, qname: "nope.container.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "API instance's target", client: loopback, qname: "b1.container.local.", qtype: dns.TypeA,
			answer: []string{"b1.container.local. 5 IN A 10.0.0.1"}},

		// Reverse.
		{name: "PTR of a container address", client: loopback, qname: "2.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.17.172.in-addr.arpa. 5 IN PTR books-1.container.local."}},
		{name: "PTR of an IPv6 container address", client: loopback, qname: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 IN PTR multi.container.local."}},
		{name: "PTR of an unhealthy container: NXDOMAIN in its network's reverse zone", client: loopback, qname: "4.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{"17.172.in-addr.arpa. 3 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},

		// The zone's own names and branches.
		{name: "apex SOA", client: loopback, qname: "local.", qtype: dns.TypeSOA,
			answer: []string{"local. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "apex NS with glue", client: loopback, qname: "local.", qtype: dns.TypeNS,
			answer: []string{"local. 5 IN NS ns.local."}, extra: []string{"ns.local. 5 IN A 127.0.0.1"}},
		{name: "apex A: NODATA", client: loopback, qname: "local.", qtype: dns.TypeA, ns: []string{soa}},
		{name: "apex DS: NODATA, never forwarded", client: loopback, qname: "local.", qtype: dns.TypeDS, ns: []string{soa}},
		{name: "ns.<zone>", client: loopback, qname: "ns.local.", qtype: dns.TypeA, answer: []string{"ns.local. 5 IN A 127.0.0.1"}},
		{name: "branch service.: NODATA", client: loopback, qname: "service.local.", qtype: dns.TypeA, ns: []string{soa}},
		{name: "branch container.: NODATA", client: loopback, qname: "container.local.", qtype: dns.TypeA, ns: []string{soa}},
		{name: "branch _tcp: NODATA", client: loopback, qname: "_tcp.service.local.", qtype: dns.TypeSRV, ns: []string{soa}},
		{name: "branch _udp: NODATA", client: loopback, qname: "_udp.service.local.", qtype: dns.TypeSRV, ns: []string{soa}},
		{name: "branch _<tag> of a tag in use: NODATA", client: loopback, qname: "_v1.service.local.", qtype: dns.TypeSRV, ns: []string{soa}},
		{name: "branch _<tag> of no tag: NXDOMAIN", client: loopback, qname: "_v9.service.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "branch _tcp.<service>: NODATA", client: loopback, qname: "_tcp.web.service.local.", qtype: dns.TypeSRV, ns: []string{soa}},
		{name: "branch _tcp.<unknown>: NXDOMAIN", client: loopback, qname: "_tcp.nope.service.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "any other zone name: NXDOMAIN", client: loopback, qname: "foo.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "too deep: NXDOMAIN", client: loopback, qname: "a.b.books-ms.service.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "dotted name cannot shadow a tag", client: loopback, qname: "v1.books-ms.service.local.", qtype: dns.TypeA,
			answer: []string{"v1.books-ms.service.local. 5 IN A 192.168.1.10"}},

		// Outside the zone.
		{name: "forwarded for a loopback client", client: loopback, qname: "example.com.", qtype: dns.TypeA, noAA: true,
			answer: []string{"example.com. 60 IN A 198.51.100.7"}},
		{name: "forwarded for a client on a docker network", client: onBridge, qname: "example.com.", qtype: dns.TypeA, noAA: true,
			answer: []string{"example.com. 60 IN A 198.51.100.7"}},
		{name: "a name that ends like the zone is not in it", client: loopback, qname: "notlocal.", qtype: dns.TypeA, noAA: true,
			answer: []string{"notlocal. 60 IN A 198.51.100.7"}},
		{name: "refused for a client without recursion", client: outsider, qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused, noAA: true},
		{name: "zone names answered for a client without recursion", client: outsider, qname: "api-svc.service.local.", qtype: dns.TypeA,
			answer: []string{"api-svc.service.local. 5 IN A 10.0.0.1"}},
		{name: "AXFR refused", client: loopback, qname: "local.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Three times: the first fills the cache, the others are
			// answered from it. All must be the answer of the table.
			for range 3 {
				q := newQuery(tc.qname, tc.qtype, 0)
				q.Id = 0xbeef
				resp := serveDNS(t, h, q, tc.client, false)
				if resp.Id != 0xbeef || !resp.RecursionDesired {
					t.Errorf("reply ID %#x RD=%v, want the query's %#x and RD", resp.Id, resp.RecursionDesired, q.Id)
				}
				checkResponse(t, tc, resp)
			}
		})
	}
	// The outsider's refused query never reached the upstream: count the
	// forwards of a fresh run of just that case.
	fwd.calls.Store(0)
	serveDNS(t, h, newQuery("example.com.", dns.TypeA, 0), outsider, false)
	if fwd.calls.Load() != 0 {
		t.Errorf("a client without recursion caused %d upstream queries, want 0", fwd.calls.Load())
	}
}

// The zone's fixed branches are NODATA for every type even when nothing
// is below them (README, Names; RFC 8020), while the branches named after
// a tag or service are NXDOMAIN once it is gone.
func TestBranchesOfAnEmptyZone(t *testing.T) {
	h := newHandler(t, testConfig(catalog.New()))
	var cases []dnsCase
	for _, name := range []string{"service.local.", "container.local.", "_tcp.service.local.", "_udp.service.local."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeTXT} {
			cases = append(cases, dnsCase{name: name + " " + dns.TypeToString[qtype], qname: name, qtype: qtype, ns: []string{soa}})
		}
	}
	for _, name := range []string{"_v1.service.local.", "_tcp.books-ms.service.local.", "books-ms.service.local.", "_books-ms._tcp.service.local."} {
		cases = append(cases, dnsCase{name: name + " NXDOMAIN", qname: name, qtype: dns.TypeSRV, rcode: dns.RcodeNameError, ns: []string{soa}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				checkResponse(t, tc, serveDNS(t, h, newQuery(tc.qname, tc.qtype, 0), loopback, tcp))
			}
		})
	}
}

func checkResponse(t *testing.T, tc dnsCase, resp *dns.Msg) {
	t.Helper()
	if resp.Rcode != tc.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
	}
	if resp.Authoritative == tc.noAA {
		t.Errorf("AA=%v, want %v", resp.Authoritative, !tc.noAA)
	}
	if resp.Truncated {
		t.Errorf("TC set on a small answer")
	}
	if got, want := rrStrings(resp.Answer), wantStrings(t, tc.answer); !slices.Equal(got, want) {
		t.Errorf("answer:\n got  %q\n want %q", got, want)
	}
	if !tc.noAA {
		if got, want := rrStrings(resp.Ns), wantStrings(t, tc.ns); !slices.Equal(got, want) {
			t.Errorf("authority:\n got  %q\n want %q", got, want)
		}
	}
	if tc.extra != nil {
		if got, want := rrStrings(resp.Extra), wantStrings(t, tc.extra); !slices.Equal(got, want) {
			t.Errorf("additional:\n got  %q\n want %q", got, want)
		}
	}
	if len(resp.Question) != 1 || resp.Question[0].Name != tc.qname {
		t.Errorf("question %v, want %s echoed exactly", resp.Question, tc.qname)
	}
}

func TestAddressModes(t *testing.T) {
	cat := seed(t)
	cases := []struct {
		mode   AddressMode
		client netip.Addr
		qname  string
		qtype  uint16
		rcode  int
		answer []string
	}{
		{AddressContainer, loopback, "books-ms.service.local.", dns.TypeSRV, 0, []string{
			"books-ms.service.local. 5 IN SRV 1 1 8080 books-1.container.local.", "books-ms.service.local. 5 IN SRV 1 1 8080 books-2.container.local."}},
		{AddressContainer, loopback, "books-1.container.local.", dns.TypeA, 0, []string{"books-1.container.local. 5 IN A 172.17.0.2"}},
		{AddressContainer, onBridge, "node-exporter.service.local.", dns.TypeA, 0, []string{"node-exporter.service.local. 5 IN A 192.168.1.10"}},
		// Host mode: only what is published; a shared network changes nothing.
		{AddressHost, onBridge, "books-ms.service.local.", dns.TypeSRV, 0, []string{"books-ms.service.local. 5 IN SRV 1 1 32768 books-1.container.local."}},
		{AddressHost, onBridge, "books-1.container.local.", dns.TypeA, 0, []string{"books-1.container.local. 5 IN A 192.168.1.10"}},
		{AddressHost, loopback, "worker.service.local.", dns.TypeA, dns.RcodeNameError, nil},
		{AddressHost, loopback, "api-svc.service.local.", dns.TypeA, 0, []string{"api-svc.service.local. 5 IN A 10.0.0.1"}},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String()+" "+tc.qname+" "+dns.TypeToString[tc.qtype], func(t *testing.T) {
			cfg := testConfig(cat)
			cfg.AddressMode = tc.mode
			resp := serveDNS(t, newHandler(t, cfg), newQuery(tc.qname, tc.qtype, 0), tc.client, false)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got, want := rrStrings(resp.Answer), wantStrings(t, tc.answer); !slices.Equal(got, want) {
				t.Errorf("answer:\n got  %q\n want %q", got, want)
			}
		})
	}
}

// bigService registers n API instances of "big", 10.1.x.y:9000+i.
func bigService(t testing.TB, cat *catalog.Catalog, n int) {
	for i := 1; i <= n; i++ {
		apiInstance(t, cat, fmt.Sprintf("big-%03d", i), "big", fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), uint16(9000+i), catalog.ProtoTCP)
	}
}

func TestTruncation(t *testing.T) {
	cat := catalog.New()
	bigService(t, cat, 60)
	cfg := testConfig(cat)
	h := newHandler(t, cfg)
	cases := []struct {
		name    string
		qtype   uint16
		edns    uint16
		tcp     bool
		limit   int
		wantAll bool
	}{
		{"SRV, no EDNS: 512", dns.TypeSRV, 0, false, 512, false},
		{"A, no EDNS: 512", dns.TypeA, 0, false, 512, false},
		{"SRV, EDNS 1232", dns.TypeSRV, 1232, false, 1232, false},
		{"SRV, EDNS 4096 capped at 1232", dns.TypeSRV, 4096, false, 1232, false},
		{"SRV, EDNS below 512 counts as 512", dns.TypeSRV, 100, false, 512, false},
		{"A, EDNS 1232: all fit", dns.TypeA, 1232, false, 1232, true},
		{"SRV over TCP: all", dns.TypeSRV, 0, true, dns.MaxMsgSize, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, wire := exchange(t, h, newQuery("big.service.local.", tc.qtype, tc.edns), loopback, tc.tcp)
			if len(wire) > tc.limit {
				t.Errorf("reply of %d bytes, over the client's %d", len(wire), tc.limit)
			}
			if tc.wantAll {
				if resp.Truncated || len(resp.Answer) != 60 {
					t.Errorf("TC=%v with %d answers, want all 60 and no TC", resp.Truncated, len(resp.Answer))
				}
			} else if !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 60 {
				t.Errorf("TC=%v with %d answers, want TC and some but not all", resp.Truncated, len(resp.Answer))
			}
			if !resp.Authoritative {
				t.Error("no AA")
			}
			if (resp.IsEdns0() != nil) != (tc.edns > 0) {
				t.Errorf("OPT in reply: %v, want %v", resp.IsEdns0() != nil, tc.edns > 0)
			}
			// Every SRV kept has its target's address, and no address is
			// there without its SRV: a record is kept or dropped with its
			// glue.
			if tc.qtype == dns.TypeSRV {
				targets := map[string]bool{}
				for _, r := range resp.Answer {
					targets[r.(*dns.SRV).Target] = true
				}
				glue := map[string]bool{}
				for _, r := range resp.Extra {
					if a, ok := r.(*dns.A); ok {
						glue[a.Hdr.Name] = true
					}
				}
				for tgt := range targets {
					if !glue[tgt] {
						t.Errorf("SRV target %s without its A record", tgt)
					}
				}
				for g := range glue {
					if !targets[g] {
						t.Errorf("A record of %s without its SRV", g)
					}
				}
			}
			// Random order: the truncated answers are not always the first
			// ones registered.
		})
	}
}

func TestTruncationIsRandom(t *testing.T) {
	cat := catalog.New()
	bigService(t, cat, 60)
	h := newHandler(t, testConfig(cat))
	seen := map[string]bool{}
	for range 20 {
		resp := serveDNS(t, h, newQuery("big.service.local.", dns.TypeSRV, 0), loopback, false)
		seen[resp.Answer[0].(*dns.SRV).Target] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 truncated answers all started with the same instance %v: answers are not shuffled", seen)
	}
}

func TestEDNS(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	t.Run("OPT echoed with our size and the DO bit", func(t *testing.T) {
		q := newQuery("books-ms.service.local.", dns.TypeA, 4096)
		q.IsEdns0().SetDo()
		resp := serveDNS(t, h, q, loopback, false)
		opt := resp.IsEdns0()
		if opt == nil || opt.UDPSize() != DefaultMaxUDPSize || !opt.Do() {
			t.Fatalf("OPT %v, want size %d with DO", opt, DefaultMaxUDPSize)
		}
	})
	t.Run("no OPT without EDNS", func(t *testing.T) {
		resp := serveDNS(t, h, newQuery("books-ms.service.local.", dns.TypeA, 0), loopback, false)
		if resp.IsEdns0() != nil {
			t.Fatal("OPT in the reply to a query without one")
		}
	})
	t.Run("EDNS version 1: BADVERS", func(t *testing.T) {
		q := newQuery("books-ms.service.local.", dns.TypeA, 1232)
		q.IsEdns0().SetVersion(1)
		back := serveDNS(t, h, q, loopback, false)
		if back.Rcode != dns.RcodeBadVers || back.IsEdns0() == nil || back.IsEdns0().Version() != 0 || len(back.Answer) != 0 {
			t.Fatalf("rcode %s, OPT %v, %d answers: want BADVERS, an OPT of version 0, no answer", dns.RcodeToString[back.Rcode], back.IsEdns0(), len(back.Answer))
		}
	})
}

func TestRefusedAndMalformed(t *testing.T) {
	cat := seed(t)
	cfg := testConfig(cat)
	cfg.Allow, _ = ParseACL("loopback")
	h := newHandler(t, cfg)
	cases := []struct {
		name   string
		client netip.Addr
		msg    func() *dns.Msg
		rcode  int
	}{
		{"client outside --allow", onBridge, func() *dns.Msg { return newQuery("books-ms.service.local.", dns.TypeA, 0) }, dns.RcodeRefused},
		{"no question", loopback, func() *dns.Msg { m := newQuery("books-ms.service.local.", dns.TypeA, 0); m.Question = nil; return m }, dns.RcodeFormatError},
		{"two questions", loopback, func() *dns.Msg {
			m := newQuery("books-ms.service.local.", dns.TypeA, 0)
			m.Question = append(m.Question, m.Question[0])
			return m
		}, dns.RcodeFormatError},
		{"NOTIFY", loopback, func() *dns.Msg { m := newQuery("local.", dns.TypeSOA, 0); m.Opcode = dns.OpcodeNotify; return m }, dns.RcodeNotImplemented},
		{"UPDATE", loopback, func() *dns.Msg { m := newQuery("local.", dns.TypeSOA, 0); m.Opcode = dns.OpcodeUpdate; return m }, dns.RcodeNotImplemented},
		{"CHAOS class", loopback, func() *dns.Msg {
			m := newQuery("version.bind.", dns.TypeTXT, 0)
			m.Question[0].Qclass = dns.ClassCHAOS
			return m
		}, dns.RcodeRefused},
		{"out of zone, no forwarder", loopback, func() *dns.Msg { return newQuery("example.com.", dns.TypeA, 0) }, dns.RcodeRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := serveDNS(t, h, tc.msg(), tc.client, false)
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if len(resp.Answer)+len(resp.Ns) != 0 {
				t.Errorf("records in a %s reply: %v %v", dns.RcodeToString[tc.rcode], resp.Answer, resp.Ns)
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	cat := seed(t)
	cfg := testConfig(cat)
	ready := false
	cfg.Ready = func() bool { return ready }
	h := newHandler(t, cfg)
	resp := serveDNS(t, h, newQuery("nope.service.local.", dns.TypeA, 0), loopback, false)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("unknown name before the first sync: %s, want SERVFAIL (no negative caching)", dns.RcodeToString[resp.Rcode])
	}
	resp = serveDNS(t, h, newQuery("api-svc.service.local.", dns.TypeA, 0), loopback, false)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("known name before the first sync: %s with %d answers, want it answered", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	ready = true
	resp = serveDNS(t, h, newQuery("nope.service.local.", dns.TypeA, 0), loopback, false)
	if resp.Rcode != dns.RcodeNameError {
		t.Errorf("unknown name after the sync: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestForwarding(t *testing.T) {
	cat := seed(t)
	t.Run("upstream failure: SERVFAIL", func(t *testing.T) {
		cfg := testConfig(cat)
		cfg.Forwarder = &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { return nil, errUpstream }}
		resp := serveDNS(t, newHandler(t, cfg), newQuery("example.com.", dns.TypeA, 0), loopback, false)
		if resp.Rcode != dns.RcodeServerFailure || !resp.RecursionAvailable {
			t.Errorf("rcode %s RA=%v, want SERVFAIL with RA", dns.RcodeToString[resp.Rcode], resp.RecursionAvailable)
		}
	})
	t.Run("large upstream reply truncated for UDP", func(t *testing.T) {
		cfg := testConfig(cat)
		cfg.Forwarder = &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
			m := new(dns.Msg)
			m.SetReply(r)
			for i := range 100 {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(r.Question[0].Name, dns.TypeTXT, 60), Txt: []string{strings.Repeat("x", 20) + fmt.Sprint(i)}})
			}
			return m, nil
		}}
		h := newHandler(t, cfg)
		resp, wire := exchange(t, h, newQuery("example.com.", dns.TypeTXT, 0), loopback, false)
		if !resp.Truncated || len(wire) > 512 {
			t.Errorf("forwarded reply: TC=%v, %d bytes; want TC and at most 512", resp.Truncated, len(wire))
		}
		resp = serveDNS(t, h, newQuery("example.com.", dns.TypeTXT, 0), loopback, true)
		if resp.Truncated || len(resp.Answer) != 100 {
			t.Errorf("over TCP: TC=%v, %d answers; want all 100", resp.Truncated, len(resp.Answer))
		}
	})
	t.Run("zone names never reach the forwarder", func(t *testing.T) {
		cfg := testConfig(cat)
		fwd := &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { return nil, errUpstream }}
		cfg.Forwarder = fwd
		h := newHandler(t, cfg)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"nope.service.local.", dns.TypeA}, {"local.", dns.TypeDS}, {"x.local.", dns.TypeDS}, {"books-ms.service.local.", dns.TypeMX}} {
			serveDNS(t, h, newQuery(q.name, q.qtype, 0), loopback, false)
		}
		if fwd.calls.Load() != 0 {
			t.Errorf("%d zone queries were forwarded", fwd.calls.Load())
		}
	})
}

// A panic while answering becomes SERVFAIL and a count, not a crash:
// through ServeDNS (the TCP server's way in) over both transports.
func TestPanicIsServfail(t *testing.T) {
	cfg := testConfig(seed(t))
	cfg.Ready = func() bool { panic("boom") }
	h := newHandler(t, cfg)
	for i, tcp := range []bool{false, true} {
		resp := serveDNS(t, h, newQuery("nope.service.local.", dns.TypeA, 0), loopback, tcp)
		if resp.Rcode != dns.RcodeServerFailure {
			t.Fatalf("TCP=%v: rcode %s, want SERVFAIL", tcp, dns.RcodeToString[resp.Rcode])
		}
		if n := testutil.ToFloat64(h.met.panics); n != float64(i+1) {
			t.Errorf("TCP=%v: svcdns_dns_panics_total %v, want %d", tcp, n, i+1)
		}
	}
}

type denyAll struct{}

func (denyAll) Allow(netip.Addr) bool { return false }
