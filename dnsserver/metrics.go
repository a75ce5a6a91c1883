package dnsserver

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	namespace = "svcdns"
	subsystem = "dns"
)

// Query types counted under their own name (each below 256, the size of
// metrics.typeIndex); the others are "other", so a client cannot grow the
// label set.
var countedTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeSOA, dns.TypeNS,
	dns.TypeTXT, dns.TypeMX, dns.TypeCNAME, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR,
}

// Rcodes counted under their own name (each below 32, the size of
// metrics.rcodeIndex): every rcode a reply of svcdns can carry, its own
// and those a forwarded answer passes on (NOERROR, NXDOMAIN, YXDOMAIN:
// see forward's rcodeKind). Others are "other".
var countedRcodes = []int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeYXDomain, dns.RcodeBadVers,
}

// metrics are the handler's series, namespace svcdns, subsystem dns. The
// per-query counters are resolved once, so counting a query is two array
// lookups and an atomic add.
type metrics struct {
	queries     *prometheus.CounterVec
	byTypeRcode [][]prometheus.Counter // [type index][rcode index]
	rcodeNames  []string               // by rcode index, "other" last
	typeIndex   [256]uint8             // row of each query type below 256; "other" for the rest
	rcodeIndex  [32]uint8              // column of each rcode below 32; "other" for the rest
	panics      prometheus.Counter
	truncated   prometheus.Counter
	rateLimited prometheus.Counter
	overload    prometheus.Counter
	latency     *batchHistogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}
	}
	m := &metrics{
		queries: prometheus.NewCounterVec(opts("queries_total",
			"DNS queries answered, by query type and response code."), []string{"type", "rcode"}),
		panics: prometheus.NewCounter(opts("panics_total",
			"Queries whose handling panicked and were answered SERVFAIL.")),
		truncated: prometheus.NewCounter(opts("truncated_total",
			"UDP answers cut to the client's size, with TC set.")),
		rateLimited: prometheus.NewCounter(opts("rate_limited_total",
			"UDP queries over the per-network rate limit, answered with an empty TC reply.")),
		overload: prometheus.NewCounter(opts("overload_dropped_total",
			"UDP queries dropped unanswered because 10,000 were already being handled off the read loop (cache misses, forwards)")),
		latency: newBatchHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help: "Time from reading a query to its reply being ready to send. Answers from the cache on the UDP read loop " +
				"are timed per batch of datagrams (each gets its batch's time); lookups, forwards and TCP per query.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	for i := range m.typeIndex {
		m.typeIndex[i] = uint8(len(countedTypes))
	}
	for i := range m.rcodeIndex {
		m.rcodeIndex[i] = uint8(len(countedRcodes))
	}
	typeNames := make([]string, 0, len(countedTypes)+1)
	for i, t := range countedTypes {
		m.typeIndex[t] = uint8(i)
		typeNames = append(typeNames, dns.TypeToString[t])
	}
	typeNames = append(typeNames, "other")
	m.rcodeNames = make([]string, 0, len(countedRcodes)+1)
	for i, rc := range countedRcodes {
		m.rcodeIndex[rc] = uint8(i)
		m.rcodeNames = append(m.rcodeNames, rcodeName(rc))
	}
	m.rcodeNames = append(m.rcodeNames, "other")
	m.byTypeRcode = make([][]prometheus.Counter, len(typeNames))
	for i, tn := range typeNames {
		m.byTypeRcode[i] = make([]prometheus.Counter, len(m.rcodeNames))
		for j, rn := range m.rcodeNames {
			m.byTypeRcode[i][j] = m.queries.WithLabelValues(tn, rn)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queries, m.panics, m.truncated, m.rateLimited, m.overload, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("dnsserver: metrics registered twice: %w", err)
			}
			return nil, fmt.Errorf("dnsserver: register metrics: %w", err)
		}
	}
	return m, nil
}

// count adds one query of r answered with resp.
func (m *metrics) count(r, resp *dns.Msg) {
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	m.countRcode(qtype, resp.Rcode)
}

// countRcode adds one query of type qtype answered with rcode.
func (m *metrics) countRcode(qtype uint16, rcode int) {
	ti, ri := len(countedTypes), len(countedRcodes)
	if int(qtype) < len(m.typeIndex) {
		ti = int(m.typeIndex[qtype])
	}
	if rcode >= 0 && rcode < len(m.rcodeIndex) {
		ri = int(m.rcodeIndex[rcode])
	}
	m.byTypeRcode[ti][ri].Inc()
}

// byRcode is svcdns_dns_queries_total summed over query types, by rcode
// name; rcodes no query got are left out. It reads the counters
// themselves: a few hundred bytes of garbage, where a registry's Gather
// makes every series of the process.
func (m *metrics) byRcode() map[string]float64 {
	out := make(map[string]float64, len(m.rcodeNames))
	var d dto.Metric
	for _, row := range m.byTypeRcode {
		for j, c := range row {
			d.Reset()
			if c.Write(&d) != nil {
				continue
			}
			if v := d.GetCounter().GetValue(); v > 0 {
				out[m.rcodeNames[j]] += v
			}
		}
	}
	return out
}

// rcodeName is an rcode's name. miekg/dns's RcodeToString names 16
// BADSIG (its TSIG meaning); an answer carries it as BADVERS (RFC 6891).
func rcodeName(rc int) string {
	if rc == dns.RcodeBadVers {
		return "BADVERS"
	}
	return dns.RcodeToString[rc]
}
