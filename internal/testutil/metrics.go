package testutil

import (
	"bytes"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// LintMetrics gathers g, fails t for every promlint problem (names, units,
// help), and returns the metric names, sorted, for the caller to check
// that what it registers is there.
func LintMetrics(t testing.TB, g prometheus.Gatherer) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	lint(t, promlint.NewWithMetricFamilies(mfs))
	names := make([]string, 0, len(mfs))
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	slices.Sort(names)
	return names
}

// LintExposition fails t for every promlint problem of a /metrics page in
// the text exposition format.
func LintExposition(t testing.TB, page []byte) {
	t.Helper()
	lint(t, promlint.New(bytes.NewReader(page)))
}

func lint(t testing.TB, l *promlint.Linter) {
	t.Helper()
	problems, err := l.Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
