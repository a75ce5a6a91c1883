package dnsserver

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	namespace = "svcdns"
	subsystem = "dns"
)

// Query types counted under their own name; the others are "other", so a
// client cannot grow the label set.
var countedTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeSOA, dns.TypeNS,
	dns.TypeTXT, dns.TypeMX, dns.TypeCNAME, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR,
}

// Rcodes counted under their own name; the others are "other".
var countedRcodes = []int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNameError,
	dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
}

// metrics are the handler's series, namespace svcdns, subsystem dns. The
// per-query counters are resolved once, so counting a query is an index
// and an atomic add.
type metrics struct {
	queries     *prometheus.CounterVec
	byTypeRcode [][]prometheus.Counter // [type index][rcode index]
	typeIndex   map[uint16]int
	rcodeIndex  map[int]int
	panics      prometheus.Counter
	truncated   prometheus.Counter
	rateLimited prometheus.Counter
	overload    prometheus.Counter
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
		typeIndex:  make(map[uint16]int),
		rcodeIndex: make(map[int]int),
	}
	typeNames := make([]string, 0, len(countedTypes)+1)
	for i, t := range countedTypes {
		m.typeIndex[t] = i
		typeNames = append(typeNames, dns.TypeToString[t])
	}
	typeNames = append(typeNames, "other")
	rcodeNames := make([]string, 0, len(countedRcodes)+1)
	for i, rc := range countedRcodes {
		m.rcodeIndex[rc] = i
		rcodeNames = append(rcodeNames, dns.RcodeToString[rc])
	}
	rcodeNames = append(rcodeNames, "other")
	m.byTypeRcode = make([][]prometheus.Counter, len(typeNames))
	for i, tn := range typeNames {
		m.byTypeRcode[i] = make([]prometheus.Counter, len(rcodeNames))
		for j, rn := range rcodeNames {
			m.byTypeRcode[i][j] = m.queries.WithLabelValues(tn, rn)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queries, m.panics, m.truncated, m.rateLimited, m.overload} {
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
	ti, ok := m.typeIndex[qtype]
	if !ok {
		ti = len(countedTypes)
	}
	ri, ok := m.rcodeIndex[rcode]
	if !ok {
		ri = len(countedRcodes)
	}
	m.byTypeRcode[ti][ri].Inc()
}
