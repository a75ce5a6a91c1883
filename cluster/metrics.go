package cluster

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	namespace = "svcdns"
	subsystem = "cluster"
)

// counter is a monotonic count, read by Stats and by the metrics at
// scrape time. memberlist's callbacks bump counters: they must not block.
type counter struct{ v atomic.Uint64 }

func (c *counter) Inc()           { c.v.Add(1) }
func (c *counter) Add(n float64)  { c.v.Add(uint64(n)) }
func (c *counter) Load() uint64   { return c.v.Load() }
func (c *counter) value() float64 { return float64(c.v.Load()) }

// metrics are the cluster's series: namespace svcdns, subsystem cluster.
type metrics struct {
	msgsIn, msgsOut, bytesIn, bytesOut counter
	pushPulls                          counter
	deltasApplied, statesApplied       counter
	staleDropped                       counter
	dropped                            counter // malformed, oversized, unknown
	stateRequests                      counter
	instancesCut, refused              counter
	strangerJoins                      counter
	delay                              *prometheus.HistogramVec // by kind: delta, state
	delayDelta, delayState             prometheus.Observer
}

func newMetrics() *metrics {
	m := &metrics{
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "delay_seconds",
			Help: "Time from a change on its owner (the owner's clock) to its arrival in this node's catalog, by kind: " +
				"delta (a change spreading), state (a full state: a join, a node back, a gap repaired; counts from the owner's last change, which may be long ago).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"kind"}),
	}
	// Both series from the start, so that a rate over them has a base.
	m.delayDelta, m.delayState = m.delay.WithLabelValues("delta"), m.delay.WithLabelValues("state")
	return m
}

// register puts the series on reg; members counts members by state at
// scrape time.
func (m *metrics) register(reg prometheus.Registerer, members func() map[string]int) error {
	if reg == nil {
		return nil
	}
	cf := func(name, help string, c *counter) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: name, Help: help,
		}, c.value)
	}
	cs := []prometheus.Collector{
		m.delay,
		cf("gossip_messages_in_total", "Gossip packets and streams received (memberlist's protocol and svcdns's payloads).", &m.msgsIn),
		cf("gossip_messages_out_total", "Gossip packets sent and streams opened.", &m.msgsOut),
		cf("gossip_bytes_in_total", "Bytes of gossip packets and streams received.", &m.bytesIn),
		cf("gossip_bytes_out_total", "Bytes of gossip packets and streams sent.", &m.bytesOut),
		cf("push_pulls_total", "Push/pull exchanges (anti-entropy) merged.", &m.pushPulls),
		cf("deltas_applied_total", "Peers' deltas written to the catalog.", &m.deltasApplied),
		cf("states_applied_total", "Peers' full states written to the catalog.", &m.statesApplied),
		cf("stale_dropped_total", "Deltas and states dropped for being older than what was held.", &m.staleDropped),
		cf("dropped_total", "Payloads dropped: malformed, oversized, of an unknown type, or past a full send queue.", &m.dropped),
		cf("state_requests_total", "Full states asked of a peer, after a gap or a newer digest.", &m.stateRequests),
		cf("instances_cut_total", "Peers' instances left out for going over --cluster-max-instances.", &m.instancesCut),
		cf("stranger_joins_total", "Peers joined because they asked for this node's state before it knew them (it missed their join's announcement).", &m.strangerJoins),
		cf("records_refused_total", "Peers' records refused: a name breaking the rules, or an id taken.", &m.refused),
	}
	for _, st := range []string{"alive", "suspect", "dead", "left"} {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "members",
			Help:        "Cluster members by state, this node included.",
			ConstLabels: prometheus.Labels{"state": st},
		}, func() float64 { return float64(members()[st]) }))
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register cluster metrics: %w", err)
	}
	return nil
}
