package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	namespace = "svcdns"
	subsystem = "proxy"
)

// metrics are the proxy's series, per route (its host and prefix) and
// service.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	unrouted       prometheus.Counter

	mu     sync.Mutex
	routes map[[2]string]*routeMetrics // kept across rebuilds while the route lives
}

// routeMetrics are one route's series, resolved once so that a request
// does no label lookup but for a status code it has not seen yet.
type routeMetrics struct {
	m              *metrics
	labels         [2]string
	codes          [600]atomic.Pointer[prometheus.Counter]
	duration       prometheus.Observer
	retries        prometheus.Counter
	upstreamErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"route", "service"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "requests_total",
			Help: "Requests answered through the proxy, by route, service and status code (499: the client went away).",
		}, append(labels, "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response through the proxy, by route and service.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, labels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "retries_total",
			Help: "Requests sent again to another instance after a failure before any response byte.",
		}, labels),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "upstream_errors_total",
			Help: "Attempts that failed before a response from the instance (refused, reset, timed out), retried or not.",
		}, labels),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "unrouted_requests_total",
			Help: "Requests that matched no route (404).",
		}),
		routes: map[[2]string]*routeMetrics{},
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.retries, m.upstreamErrors, m.unrouted} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register proxy metrics: %w", err)
	}
	return m, nil
}

// route returns the series of one route, made on first use.
func (m *metrics) route(key, service string) *routeMetrics {
	l := [2]string{key, service}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm := m.routes[l]; rm != nil {
		return rm
	}
	rm := &routeMetrics{
		m: m, labels: l,
		duration:       m.duration.WithLabelValues(key, service),
		retries:        m.retries.WithLabelValues(key, service),
		upstreamErrors: m.upstreamErrors.WithLabelValues(key, service),
	}
	m.routes[l] = rm
	return rm
}

// forget drops a route's series once the route is gone, so that routes
// that come and go do not pile up series.
func (m *metrics) forget(key, service string) {
	l := [2]string{key, service}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.routes, l)
	m.requests.DeletePartialMatch(prometheus.Labels{"route": key, "service": service})
	m.duration.DeleteLabelValues(key, service)
	m.retries.DeleteLabelValues(key, service)
	m.upstreamErrors.DeleteLabelValues(key, service)
}

func (rm *routeMetrics) observe(code int, d time.Duration) {
	rm.duration.Observe(d.Seconds())
	if code < 100 || code >= len(rm.codes) {
		code = 0
	}
	c := rm.codes[code].Load()
	if c == nil {
		cnt := rm.m.requests.WithLabelValues(rm.labels[0], rm.labels[1], strconv.Itoa(code))
		c = &cnt
		rm.codes[code].Store(c)
	}
	(*c).Inc()
}
