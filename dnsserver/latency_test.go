package dnsserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Every answered query is timed once, on the read loop (cache hits) and
// off it (the first lookup, TCP).
func TestLatencyHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(seed(t))
	cfg.Registerer = reg
	h := newHandler(t, cfg)
	port := serveOn(t, h, "127.0.0.1:0")
	addr := net.JoinHostPort("127.0.0.1", port)
	q := newQuery("books-ms.service.local.", dns.TypeA, 0)
	const udp = 5
	c := &dns.Client{Net: "udp", Timeout: replyTimeout}
	for range udp {
		if _, _, err := c.Exchange(q, addr); err != nil {
			t.Fatal(err)
		}
	}
	c = &dns.Client{Net: "tcp", Timeout: replyTimeout}
	if _, _, err := c.Exchange(q, addr); err != nil {
		t.Fatal(err)
	}
	count := testutil.CollectAndCount(reg, "svcdns_dns_request_duration_seconds")
	if count != 1 {
		t.Fatalf("%d histogram series, want 1", count)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "svcdns_dns_request_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != udp+1 {
				t.Errorf("%d queries timed, want %d", n, udp+1)
			}
		}
	}
}
