package watcher

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the watcher's Prometheus series, namespace svcdns, subsystem
// watcher.
type metrics struct {
	connected     prometheus.Gauge
	lastSync      prometheus.Gauge
	syncDuration  prometheus.Histogram
	eventDelay    prometheus.Histogram
	events        *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	repairs       prometheus.Counter
	reconnects    prometheus.Counter
	rejected      *prometheus.CounterVec
	inspectErrors *prometheus.CounterVec
	queueLength   prometheus.Gauge
	pending       prometheus.Gauge
	retries       prometheus.Gauge
	concurrency   prometheus.Gauge
}

const (
	namespace = "svcdns"
	subsystem = "watcher"
)

// Event actions counted under their own name; the others are "other".
var countedActions = map[string]bool{
	"start": true, "die": true, "stop": true, "kill": true, "pause": true, "unpause": true,
	"destroy": true, "rename": true, "health_status": true, "connect": true, "disconnect": true,
	"create": true, "remove": true,
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}
	}
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts(opts("connected",
			"1 while the Docker event stream is up and the catalog synced from it, else 0."))),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts(opts("last_sync_timestamp_seconds",
			"Unix time of the last full list of the Docker host applied to the catalog."))),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "sync_duration_seconds",
			Help:    "Time to list and inspect the Docker host's containers and replace them in the catalog.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		eventDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "event_to_catalog_seconds",
			Help: "Time from a Docker event's arrival at svcdns to the catalog write that applies it, once per write; " +
				"events merged into one write are timed from the first.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total",
			"Docker events received, by action (health_status: … counted as health_status).")), []string{"action"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("resyncs_total",
			"Full lists of the Docker host applied to the catalog, by reason: connect, periodic, overflow, networks.")), []string{"reason"}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts(opts("repairs_total",
			"Containers that a resync had to add, remove or update: events missed or not yet applied."))),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts(opts("reconnects_total",
			"Attempts to connect to Docker again after a failure or a lost event stream."))),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rejected_names_total",
			"Service names, tags, port names and container names refused, by reason.")), []string{"reason"}),
		inspectErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("inspect_errors_total",
			"Container inspects that failed other than with not found, by cause: refused, timeout, server_error, other.")), []string{"cause"}),
		retries: prometheus.NewGauge(prometheus.GaugeOpts(opts("inspect_retries_pending",
			"Containers whose inspect failed, waiting for their retry."))),
		concurrency: prometheus.NewGauge(prometheus.GaugeOpts(opts("inspect_concurrency",
			"Inspects allowed in flight now: halved when Docker refuses, times out or answers 5xx, grown back on success."))),
		pending: prometheus.NewGauge(prometheus.GaugeOpts(opts("inspects_pending",
			"Containers that events named, waiting for an inspect, being inspected, or inspected and not yet written to the catalog."))),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts(opts("event_queue_length",
			"Containers waiting to be inspected again after an event."))),
	}
	// Every cause from the start, so that a dashboard's rate sees a
	// zero before the first failure instead of a missing series.
	for _, cause := range []string{causeRefused, causeTimeout, causeServer, causeOther} {
		m.inspectErrors.WithLabelValues(cause)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.connected, m.lastSync, m.syncDuration, m.eventDelay, m.events, m.resyncs, m.repairs,
		m.reconnects, m.rejected, m.inspectErrors, m.queueLength, m.pending, m.retries, m.concurrency,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register watcher metrics: %w", err)
	}
	return m, nil
}

func actionLabel(action string) string {
	if len(action) >= len("health_status") && action[:len("health_status")] == "health_status" {
		return "health_status"
	}
	if countedActions[action] {
		return action
	}
	return "other"
}
