package forward

import (
	"context"
	"errors"

	"github.com/miekg/dns"

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

// Results, the "result" label of svcdns_forward_responses_total: how one
// upstream's try of a forward ended.
const (
	resultSuccess   = "success"   // an answer passed on (NOERROR, or YXDOMAIN)
	resultNXDomain  = "nxdomain"  // NXDOMAIN, passed on
	resultServfail  = "servfail"  // SERVFAIL; the next upstream is asked
	resultRefused   = "refused"   // REFUSED; the next upstream is asked
	resultTimeout   = "timeout"   // no reply before the try's deadline
	resultError     = "error"     // the network failed, or another error rcode
	resultTruncated = "truncated" // a truncated UDP answer whose TCP retry failed, kept as a fallback
)

var results = []string{resultSuccess, resultNXDomain, resultServfail, resultRefused, resultTimeout, resultError, resultTruncated}

type metrics struct {
	requests   *prometheus.CounterVec   // upstream, proto
	errors     *prometheus.CounterVec   // upstream, kind
	responses  *prometheus.CounterVec   // upstream, result
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
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "responses_total",
			Help: "Upstreams asked, per upstream and how the try ended: success, nxdomain, servfail, refused, timeout, error, truncated (a TC answer whose TCP retry failed).",
		}, []string{"upstream", "result"}),
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
		for _, r := range results {
			m.responses.WithLabelValues(u, r)
		}
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.responses, m.latency, m.overloaded, m.failed, m.inFlight} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

// result names how a try ended, for svcdns_forward_responses_total; "" for
// a try the caller cancelled, which says nothing about the upstream.
func result(resp, trunc *dns.Msg, err error) string {
	var rerr rcodeError
	switch {
	case err == nil && resp.Rcode == dns.RcodeNameError:
		return resultNXDomain
	case err == nil:
		return resultSuccess
	case errors.Is(err, context.Canceled):
		return ""
	case trunc != nil:
		return resultTruncated
	case errors.Is(err, errTimeout):
		return resultTimeout
	case errors.As(err, &rerr) && rerr.rcode == dns.RcodeServerFailure:
		return resultServfail
	case errors.As(err, &rerr) && rerr.rcode == dns.RcodeRefused:
		return resultRefused
	}
	return resultError
}

// rcodeError is an upstream's answer with an rcode that sends the query on
// to the next upstream.
type rcodeError struct{ rcode int }

func (e rcodeError) Error() string { return "rcode " + rcodeString(e.rcode) }
