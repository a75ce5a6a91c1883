package dnsserver

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestExplain(t *testing.T) {
	cat := seed(t)
	cases := []struct {
		name   string
		mode   AddressMode
		client netip.Addr
		qname  string
		qtype  string
		rcode  int
		answer int
		// rules are "container rule addrs port" per instance, in id order.
		rules   []string
		outcome string
	}{
		{"shared network", AddressAuto, onBridge, "books-ms.service.local", "SRV", dns.RcodeSuccess, 2, []string{
			"books-1 shared-network 172.17.0.2 8080", "books-2 shared-network 172.17.0.3 8080", "books-3 not-passing  0",
		}, "answered from the catalog"},
		{"published or first network", AddressAuto, loopback, "books-ms.service.local.", "a", dns.RcodeSuccess, 2, []string{
			"books-1 published 192.168.1.10 32768", "books-2 container-address 172.17.0.3 8080", "books-3 not-passing  0",
		}, "answered from the catalog"},
		{"host mode leaves out the unpublished", AddressHost, onBridge, "books-ms.service.local", "A", dns.RcodeSuccess, 1, []string{
			"books-1 published 192.168.1.10 32768", "books-2 unreachable  0", "books-3 not-passing  0",
		}, "address mode host"},
		{"tag filter", AddressAuto, onBridge, "v2.books-ms.service.local", "A", dns.RcodeSuccess, 1, []string{
			"books-2 shared-network 172.17.0.3 8080",
		}, ""},
		{"host network", AddressContainer, loopback, "node-exporter.service.local", "A", dns.RcodeSuccess, 1, []string{
			"hostnet host-network 192.168.1.10 9100",
		}, ""},
		{"API instance", AddressAuto, onBridge, "api-svc.service.local", "A", dns.RcodeSuccess, 1, []string{
			"b1 registered 10.0.0.1 9000",
		}, ""},
		{"unknown service", AddressAuto, onBridge, "nope.service.local", "A", dns.RcodeNameError, 0, []string{}, "no such name"},
		{"NODATA", AddressAuto, onBridge, "books-ms.service.local", "TXT", dns.RcodeSuccess, 0, nil, "NODATA"},
		{"outside the zone", AddressAuto, loopback, "example.com", "A", dns.RcodeSuccess, 0, nil, "forwarded"},
		{"outside the zone, no recursion", AddressAuto, netip.MustParseAddr("192.0.2.1"), "example.com", "A", dns.RcodeRefused, 0, nil, "--recursion-allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(cat)
			cfg.AddressMode = tc.mode
			fwd := &fakeForwarder{fn: func(*dns.Msg) (*dns.Msg, error) { return nil, errUpstream }}
			cfg.Forwarder = fwd
			ex, err := newHandler(t, cfg).Explain(t.Context(), tc.qname, tc.qtype, tc.client)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Reply.Rcode != tc.rcode || len(ex.Reply.Answer) != tc.answer {
				t.Errorf("reply %s with %d answers, want %s with %d", dns.RcodeToString[ex.Reply.Rcode], len(ex.Reply.Answer),
					dns.RcodeToString[tc.rcode], tc.answer)
			}
			if !strings.Contains(ex.Outcome, tc.outcome) {
				t.Errorf("outcome %q, want it to say %q", ex.Outcome, tc.outcome)
			}
			var got []string
			for _, ir := range ex.Instances {
				var addrs []string
				for _, a := range ir.Addrs {
					addrs = append(addrs, a.String())
				}
				got = append(got, strings.Join([]string{ir.Instance.ContainerName, ir.Rule, strings.Join(addrs, ","), strconv.Itoa(int(ir.Port))}, " "))
				if ir.Reason == "" {
					t.Errorf("%s: no reason", ir.Instance.ID)
				}
			}
			if tc.rules != nil && !slices.Equal(got, tc.rules) {
				t.Errorf("instances:\n got  %q\n want %q", got, tc.rules)
			}
			if fwd.calls.Load() != 0 {
				t.Errorf("explain forwarded %d queries upstream, want none", fwd.calls.Load())
			}
		})
	}
}

func TestExplainReasonNamesTheNetwork(t *testing.T) {
	h := newHandler(t, testConfig(seed(t)))
	ex, err := h.Explain(t.Context(), "web.service.local", "A", netip.MustParseAddr("10.10.0.77"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Instances) == 0 || !strings.Contains(ex.Instances[0].Reason, "network front (10.10.0.0/24)") {
		t.Errorf("instances %+v, want the reason to name network front", ex.Instances)
	}
	cfg := testConfig(seed(t))
	cfg.Allow, _ = ParseACL("loopback")
	ex, err = newHandler(t, cfg).Explain(t.Context(), "books-ms.service.local", "A", onBridge)
	if err != nil || ex.Reply.Rcode != dns.RcodeRefused || len(ex.Instances) != 0 || !strings.Contains(ex.Outcome, "--allow") {
		t.Errorf("client outside --allow: %v %+v, want REFUSED, no instances, an outcome naming --allow", err, ex)
	}
	for _, bad := range []struct{ name, qtype string }{{"books-ms.service.local", "NOPE"}, {"", "A"}, {"a..b", "A"}} {
		if _, err := h.Explain(t.Context(), bad.name, bad.qtype, loopback); err == nil {
			t.Errorf("Explain(%q, %q) succeeded, want an error", bad.name, bad.qtype)
		}
	}
}
