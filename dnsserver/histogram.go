package dnsserver

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// batchHistogram is a Prometheus histogram that takes n observations of
// one value at once. The read loop times a batch of cache hits together
// (each reply gets its batch's time); a prometheus.Histogram's Observe
// per reply searched the buckets once per reply, about 110 instructions a
// query, here once per batch.
type batchHistogram struct {
	desc   *prometheus.Desc
	bounds []float64       // upper bounds, ascending
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newBatchHistogram(opts prometheus.HistogramOpts) *batchHistogram {
	return &batchHistogram{
		desc:   prometheus.NewDesc(prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name), opts.Help, nil, opts.ConstLabels),
		bounds: opts.Buckets,
		counts: make([]atomic.Uint64, len(opts.Buckets)+1),
	}
}

// Observe adds one observation of v (seconds).
func (h *batchHistogram) Observe(v float64) { h.observeN(v, 1) }

// observeN adds n observations of v.
func (h *batchHistogram) observeN(v float64, n int) {
	if n <= 0 {
		return
	}
	// The first bucket whose upper bound is v or above (le), else +Inf.
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(uint64(n))
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v*float64(n))) {
			return
		}
	}
}

func (h *batchHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect sends the histogram. The count is the buckets' total, so the
// two always agree; an observation being added may be in the buckets
// and not yet in the sum.
func (h *batchHistogram) Collect(ch chan<- prometheus.Metric) {
	buckets := make(map[float64]uint64, len(h.bounds))
	var n uint64
	for i, b := range h.bounds {
		n += h.counts[i].Load()
		buckets[b] = n
	}
	n += h.counts[len(h.bounds)].Load()
	ch <- prometheus.MustNewConstHistogram(h.desc, n, math.Float64frombits(h.sum.Load()), buckets)
}
