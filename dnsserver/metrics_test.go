package dnsserver

import (
	"maps"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/svcdns/svcdns/internal/testutil"
)

// The handler's metrics pass promlint and are all registered.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := testConfig(seed(t))
	cfg.Registerer = reg
	newHandler(t, cfg)
	want := []string{
		"svcdns_dns_overload_dropped_total", "svcdns_dns_panics_total", "svcdns_dns_queries_total",
		"svcdns_dns_rate_limited_total", "svcdns_dns_request_duration_seconds", "svcdns_dns_truncated_total",
	}
	if got := testutil.LintMetrics(t, reg); !slices.Equal(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}

// QueriesByRcode, which the dashboard's query rates are sampled from,
// holds what /metrics shows: svcdns_dns_queries_total summed over types,
// answers from the read loop's cache included.
func TestQueriesByRcode(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(seed(t))
	cfg.Registerer = reg
	h := newHandler(t, cfg)
	if got := h.QueriesByRcode(); len(got) != 0 {
		t.Errorf("before any query: %v, want nothing", got)
	}
	serveDNS(t, h, newQuery("books-ms.service.local.", dns.TypeA, 0), loopback, false)
	serveDNS(t, h, newQuery("books-ms.service.local.", dns.TypeSRV, 0), loopback, true)
	serveDNS(t, h, newQuery("nope.service.local.", dns.TypeA, 0), loopback, false)
	pkt, err := newQuery("books-ms.service.local.", dns.TypeA, 0).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := readLoop(h, nil).packetReply(pkt, loopback); !ok {
		t.Fatal("not answered from the cache")
	}

	got := h.QueriesByRcode()
	if want := map[string]float64{"NOERROR": 3, "NXDOMAIN": 1}; !maps.Equal(got, want) {
		t.Errorf("QueriesByRcode() = %v, want %v", got, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "svcdns_dns_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := m.GetCounter().GetValue(); l.GetName() == "rcode" && v > 0 {
					gathered[l.GetValue()] += v
				}
			}
		}
	}
	if !maps.Equal(got, gathered) {
		t.Errorf("QueriesByRcode() = %v, /metrics has %v", got, gathered)
	}
}

// A query type or rcode not counted under its own name is "other", below
// and above the tables' sizes alike.
func TestCountedLabels(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		qtype       uint16
		rcode       int
		typ, rcodeL string
	}{
		{dns.TypeA, dns.RcodeSuccess, "A", "NOERROR"},
		{dns.TypeIXFR, dns.RcodeBadVers, "IXFR", "BADVERS"},
		{dns.TypeANY, dns.RcodeRefused, "ANY", "REFUSED"},
		{dns.TypeHINFO, dns.RcodeYXDomain, "other", "YXDOMAIN"},
		{dns.TypeMX, dns.RcodeNotAuth, "MX", "other"},
		{dns.TypeCAA, dns.RcodeBadCookie, "other", "other"},
		{dns.TypeSRV, 4095, "SRV", "other"},
		{65535, -1, "other", "other"},
	} {
		c := m.queries.WithLabelValues(tc.typ, tc.rcodeL)
		before := promtest.ToFloat64(c)
		m.countRcode(tc.qtype, tc.rcode)
		if got := promtest.ToFloat64(c) - before; got != 1 {
			t.Errorf("type %d rcode %d: {type=%q,rcode=%q} moved by %v, want 1", tc.qtype, tc.rcode, tc.typ, tc.rcodeL, got)
		}
	}
}

// A forwarded answer is counted under its own rcode: each one the
// forwarder passes on (forward's TestPassedRcodes), YXDOMAIN included.
func TestForwardedRcodesCounted(t *testing.T) {
	rcodes := map[string]int{"ok.example.": dns.RcodeSuccess, "nx.example.": dns.RcodeNameError, "yx.example.": dns.RcodeYXDomain}
	cfg := testConfig(seed(t))
	cfg.Forwarder = &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetRcode(r, rcodes[r.Question[0].Name])
		return m, nil
	}}
	h := newHandler(t, cfg)
	for name, rc := range rcodes {
		c := h.met.queries.WithLabelValues("A", rcodeName(rc))
		before := promtest.ToFloat64(c)
		for _, tcp := range []bool{false, true} {
			if resp := serveDNS(t, h, newQuery(name, dns.TypeA, 0), loopback, tcp); resp.Rcode != rc {
				t.Fatalf("%s (tcp %v): %s, want the upstream's %s", name, tcp, rcodeName(resp.Rcode), rcodeName(rc))
			}
		}
		if got := promtest.ToFloat64(c) - before; got != 2 {
			t.Errorf(`%s: {type="A",rcode=%q} moved by %v, want 2`, name, rcodeName(rc), got)
		}
	}
	if got := promtest.ToFloat64(h.met.queries.WithLabelValues("A", "other")); got != 0 {
		t.Errorf(`{type="A",rcode="other"} = %v, want 0`, got)
	}
}
