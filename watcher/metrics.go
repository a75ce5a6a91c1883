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
	events        *prometheus.CounterVec
	resyncs       *prometheus.CounterVec
	repairs       prometheus.Counter
	reconnects    prometheus.Counter
	rejected      *prometheus.CounterVec
	inspectErrors prometheus.Counter
	queueLength   prometheus.Gauge
	pending       prometheus.Gauge
}

const (
	namespace = "svcdns"
	subsystem = "watcher"
)

// Event actions counted under their own name; the others are "other".
var countedActions = map[string]bool{
	"start": true, "die": true, "stop": true, "kill": true, "pause": true, "unpause": true,
	"destroy": true, "rename": true, "health_status": true, "connect": true, "disconnect": true,
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
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_total",
			"Docker events received, by action (health_status: … counted as health_status).")), []string{"action"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("resyncs_total",
			"Full lists of the Docker host applied to the catalog, by reason: connect, periodic, overflow.")), []string{"reason"}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts(opts("repairs_total",
			"Containers that a resync had to add, remove or update: events missed or not yet applied."))),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts(opts("reconnects_total",
			"Attempts to connect to Docker again after a failure or a lost event stream."))),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts(opts("rejected_names_total",
			"Service names, tags, port names and container names refused, by reason.")), []string{"reason"}),
		inspectErrors: prometheus.NewCounter(prometheus.CounterOpts(opts("inspect_errors_total",
			"Container inspects that failed other than with not found."))),
		pending: prometheus.NewGauge(prometheus.GaugeOpts(opts("inspects_pending",
			"Containers that events named, waiting for an inspect, being inspected, or inspected and not yet written to the catalog."))),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts(opts("event_queue_length",
			"Containers waiting to be inspected again after an event."))),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.connected, m.lastSync, m.syncDuration, m.events, m.resyncs, m.repairs,
		m.reconnects, m.rejected, m.inspectErrors, m.queueLength, m.pending,
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
