package forward

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds, the "kind" label of svcdns_forward_errors_total.
const (
	kindTimeout  = "timeout"  // no reply before the try's deadline
	kindNetwork  = "network"  // dial/send/read failed (ICMP unreachable, TCP reset)
	kindServfail = "servfail" // the upstream answered SERVFAIL
	kindRefused  = "refused"  // the upstream answered REFUSED
	kindRcode    = "rcode"    // another error rcode (FORMERR, NOTIMP, ...)
	kindMismatch = "mismatch" // a datagram that is not our reply, ignored
)

var errorKinds = []string{kindTimeout, kindNetwork, kindServfail, kindRefused, kindRcode, kindMismatch}

type metrics struct {
	requests   *prometheus.CounterVec   // upstream, proto
	errors     *prometheus.CounterVec   // upstream, kind
	latency    *prometheus.HistogramVec // upstream
	overloaded prometheus.Counter
	failed     prometheus.Counter
	inFlight   prometheus.Gauge
}

func newMetrics(upstreams []string) *metrics {
	const ns, sub = "svcdns", "forward"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Queries sent upstream, per upstream and transport (each try counts).",
		}, []string{"upstream", "proto"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "errors_total",
			Help: "Failed tries per upstream and kind (timeout, network, servfail, refused, rcode), and ignored non-matching replies (mismatch).",
		}, []string{"upstream", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from sending a query to accepting its reply, per upstream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 4},
		}, []string{"upstream"}),
		overloaded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "overloaded_total",
			Help: "Queries refused because the maximum number of forwards was in flight.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "failures_total",
			Help: "Queries no upstream answered (answered SERVFAIL).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "in_flight",
			Help: "Forwards in progress.",
		}),
	}
	// Create every per-upstream series at 0, so rates and alerts work
	// before the first error.
	for _, u := range upstreams {
		m.requests.WithLabelValues(u, "udp")
		m.requests.WithLabelValues(u, "tcp")
		m.latency.WithLabelValues(u)
		for _, k := range errorKinds {
			m.errors.WithLabelValues(u, k)
		}
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.latency, m.overloaded, m.failed, m.inFlight} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
