package watcher

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/svcdns/svcdns/catalog"
)

// TestConvertMetricsEndpoint: SERVICE_METRICS_PORT/PATH opt a container in
// to Prometheus discovery, on its first instance only.
func TestConvertMetricsEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		fixture  string
		mutate   func(*container.InspectResponse)
		want     string // per instance: "<port>/<proto> <metrics port><path>" or "-"
		problems string
	}{
		{name: "port alone gets /metrics", fixture: "bridge",
			mutate: withLabels("SERVICE_METRICS_PORT", "9100"), want: "8080/tcp 9100/metrics"},
		{name: "port and path, from env", fixture: "bridge",
			mutate: withEnv("SERVICE_METRICS_PORT=8080", "SERVICE_METRICS_PATH=/admin/metrics"), want: "8080/tcp 8080/admin/metrics"},
		{name: "no label", fixture: "bridge", want: "8080/tcp -"},
		{name: "one target per container", fixture: "multiport",
			mutate: withLabels("SERVICE_METRICS_PORT", "9090"), want: "8080/tcp 9090/metrics\n9090/tcp -"},
		{name: "a bad port is a problem", fixture: "bridge",
			mutate: withLabels("SERVICE_METRICS_PORT", "http"), want: "8080/tcp -", problems: reasonMetrics},
		{name: "a relative path is a problem", fixture: "bridge",
			mutate: withLabels("SERVICE_METRICS_PORT", "9100", "SERVICE_METRICS_PATH", "metrics"), want: "8080/tcp -", problems: reasonMetrics},
		{name: "a path without a port is a problem", fixture: "bridge",
			mutate: withLabels("SERVICE_METRICS_PATH", "/metrics"), want: "8080/tcp -", problems: reasonMetrics},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lines := convertTCP(t, tt.fixture, tt.mutate, func(i *catalog.Instance) string {
				if i.Metrics == nil {
					return "-"
				}
				return fmt.Sprintf("%d%s", i.Metrics.Port, i.Metrics.Path)
			})
			if r := strings.Join(lines, "\n"); r != tt.want {
				t.Errorf("got\n%s\nwant\n%s", r, tt.want)
			}
			if r := reasons(got.Problems); r != tt.problems {
				t.Errorf("problems %q, want %q: %+v", r, tt.problems, got.Problems)
			}
			checkRecord(t, got)
		})
	}
}

// convertTCP converts the named fixture, changed by mutate (nil: as it
// is), and describes each tcp instance as "<port>/tcp <describe(inst)>".
func convertTCP(t *testing.T, name string, mutate func(*container.InspectResponse), describe func(*catalog.Instance) string) (conversion, []string) {
	t.Helper()
	c := fixture(t, name)
	if mutate != nil {
		mutate(&c)
	}
	got := convert(c, convertOptions{Node: testNode, AdvertiseIP: netip.MustParseAddr("192.0.2.10")})
	var lines []string
	for _, i := range got.Record.Instances {
		if i.Protocol == catalog.ProtoTCP {
			lines = append(lines, fmt.Sprintf("%d/%s %s", i.Port, i.Protocol, describe(i)))
		}
	}
	return got, lines
}
