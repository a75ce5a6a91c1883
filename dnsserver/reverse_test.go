package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// revSOA is the SOA of a reverse zone in a negative answer.
func revSOA(apex string) string {
	return apex + " 3 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"
}

// The seed's Docker networks are 172.17.0.0/16 (bridge), 10.10.0.0/24 and
// fd00:10::/64 (front), 10.20.0.0/24 (back); --reverse-zones adds a /20,
// a /26, an IPv6 /62 and a /12 that covers the bridge.
func TestReverseZones(t *testing.T) {
	fwd := &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Rcode = dns.RcodeNameError
		return m, nil
	}}
	cfg := testConfig(seed(t))
	cfg.Forwarder = fwd
	var err error
	if cfg.ReverseZones, err = ParseReverseZones("192.168.32.0/20, 10.1.2.64/26,fd00:20::/62,172.16.0.0/12"); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, cfg)
	const (
		bridge  = "17.172.in-addr.arpa."
		front6  = "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
		known6  = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
		unknown = "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
	)
	cases := []dnsCase{
		// A Docker network's zone (a /16 on a label boundary).
		{name: "apex SOA", qname: bridge, qtype: dns.TypeSOA,
			answer: []string{"17.172.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "apex SOA, the question's case", qname: "17.172.IN-ADDR.Arpa.", qtype: dns.TypeSOA,
			answer: []string{"17.172.IN-ADDR.Arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "apex NS, with the name server's address", qname: bridge, qtype: dns.TypeNS,
			answer: []string{"17.172.in-addr.arpa. 5 IN NS ns.local."}, extra: []string{"ns.local. 5 IN A 127.0.0.1"}},
		{name: "apex ANY: the SOA", qname: bridge, qtype: dns.TypeANY,
			answer: []string{"17.172.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "apex A: NODATA", qname: bridge, qtype: dns.TypeA, ns: []string{revSOA(bridge)}},
		{name: "PTR of a known address", qname: "2.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.17.172.in-addr.arpa. 5 IN PTR books-1.container.local."}},
		{name: "known address, other type: NODATA", qname: "2.0.17.172.in-addr.arpa.", qtype: dns.TypeA, ns: []string{revSOA(bridge)}},
		{name: "unknown address: NXDOMAIN", qname: "99.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{revSOA(bridge)}},
		{name: "empty non-terminal: NODATA", qname: "0.17.172.in-addr.arpa.", qtype: dns.TypePTR, ns: []string{revSOA(bridge)}},
		{name: "nothing below: NXDOMAIN", qname: "5.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{revSOA(bridge)}},
		{name: "below a full address: NXDOMAIN", qname: "x.2.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{revSOA(bridge)}},
		{name: "not a number: NXDOMAIN", qname: "02.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{revSOA(bridge)}},
		{name: "zone transfer refused", qname: bridge, qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},

		// A /24 network: its zone is the /24, the /16 above is not ours.
		{name: "/24 apex", qname: "0.10.10.in-addr.arpa.", qtype: dns.TypeSOA,
			answer: []string{"0.10.10.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "above a /24: forwarded", qname: "10.10.in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},

		// IPv6, a /64 network.
		{name: "IPv6 apex", qname: front6, qtype: dns.TypeSOA,
			answer: []string{front6 + " 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "IPv6 PTR", qname: known6, qtype: dns.TypePTR, answer: []string{known6 + " 5 IN PTR multi.container.local."}},
		{name: "IPv6 unknown address: NXDOMAIN", qname: unknown, qtype: dns.TypePTR, rcode: dns.RcodeNameError, ns: []string{revSOA(front6)}},
		{name: "IPv6 empty non-terminal: NODATA", qname: known6[len("5.0."):], qtype: dns.TypePTR, ns: []string{revSOA(front6)}},

		// --reverse-zones: a /20 is the 16 /24 zones inside it.
		{name: "/20: a /24 inside is an apex", qname: "40.168.192.in-addr.arpa.", qtype: dns.TypeSOA,
			answer: []string{"40.168.192.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "/20: an address is NXDOMAIN", qname: "1.47.168.192.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{revSOA("47.168.192.in-addr.arpa.")}},
		{name: "/20: the /16 above is not ours", qname: "168.192.in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},
		{name: "/20: the /24 after it is not ours", qname: "48.168.192.in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},
		// A /26 is one zone per address.
		{name: "/26: an address is its own apex", qname: "70.2.1.10.in-addr.arpa.", qtype: dns.TypeSOA,
			answer: []string{"70.2.1.10.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "/26: unknown address, NODATA at its apex", qname: "70.2.1.10.in-addr.arpa.", qtype: dns.TypePTR,
			ns: []string{revSOA("70.2.1.10.in-addr.arpa.")}},
		{name: "/26: its /24 is not ours", qname: "2.1.10.in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},
		{name: "/26: an address outside it is not ours", qname: "130.2.1.10.in-addr.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeNameError, noAA: true},
		// An IPv6 /62 is four /64 zones.
		{name: "IPv6 /62: the last /64 inside", qname: "3.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypeSOA,
			answer: []string{"3.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "IPv6 /62: the /64 after it is not ours", qname: "4.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypeSOA,
			rcode: dns.RcodeNameError, noAA: true},
		// A /12 overlapping a Docker network: its /16 zones, the bridge's among them.
		{name: "/12: a /16 inside is an apex", qname: "31.172.in-addr.arpa.", qtype: dns.TypeSOA,
			answer: []string{"31.172.in-addr.arpa. 5 IN SOA ns.local. hostmaster.local. 0 3600 600 86400 3"}},
		{name: "/12: 172.in-addr.arpa is not ours", qname: "172.in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},

		// Outside every served zone: as before.
		{name: "PTR of a registered address outside the zones", qname: "1.0.0.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.0.10.in-addr.arpa. 5 IN PTR b1.container.local."}},
		{name: "PTR of an unknown address outside the zones: forwarded", qname: "8.8.8.8.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, noAA: true},
		{name: "in-addr.arpa itself: forwarded", qname: "in-addr.arpa.", qtype: dns.TypeSOA, rcode: dns.RcodeNameError, noAA: true},
	}
	for _, tc := range cases {
		tc.client = loopback
		t.Run(tc.name, func(t *testing.T) {
			for range 3 { // fills the cache, then is answered from it
				checkResponse(t, tc, serveDNS(t, h, newQuery(tc.qname, tc.qtype, 0), tc.client, false))
			}
		})
	}
}

func TestParseReverseZones(t *testing.T) {
	cases := []struct {
		in      string
		want    []netip.Prefix
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "10.1.2.3/16, fd00::/48", want: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/48")}},
		{in: "10.1.2.3", wantErr: true},
		{in: "0.0.0.0/0", wantErr: true},
		{in: "::ffff:10.0.0.0/104", wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseReverseZones(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseReverseZones(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseReverseZones(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseReverseZones(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
