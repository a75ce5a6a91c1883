package dnsserver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The latency histogram shows what a prometheus.Histogram given the same
// observations one by one shows: buckets, count and sum.
func TestBatchHistogram(t *testing.T) {
	opts := prometheus.HistogramOpts{Name: "h", Help: "x", Buckets: []float64{.00001, .00005, .001, 1, 2.5}}
	ours, theirs := newBatchHistogram(opts), prometheus.NewHistogram(opts)
	for _, o := range []struct {
		v float64
		n int
	}{{.00003, 3}, {.00005, 2}, {.00001, 1}, {2, 1}, {10, 1}, {0, 4}, {.5, 0}} {
		ours.observeN(o.v, o.n)
		for range o.n {
			theirs.Observe(o.v)
		}
	}
	got, want := histogramOf(t, ours), histogramOf(t, theirs)
	if got.GetSampleCount() != want.GetSampleCount() || got.GetSampleSum() != want.GetSampleSum() {
		t.Errorf("count %d sum %v, want %d %v", got.GetSampleCount(), got.GetSampleSum(), want.GetSampleCount(), want.GetSampleSum())
	}
	if len(got.GetBucket()) != len(want.GetBucket()) {
		t.Fatalf("%d buckets, want %d", len(got.GetBucket()), len(want.GetBucket()))
	}
	for i, b := range want.GetBucket() {
		if g := got.GetBucket()[i]; g.GetUpperBound() != b.GetUpperBound() || g.GetCumulativeCount() != b.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d, want le=%v: %d", g.GetUpperBound(), g.GetCumulativeCount(), b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
}

func histogramOf(t *testing.T, c prometheus.Collector) *dto.Histogram {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs[0].GetMetric()[0].GetHistogram()
}
