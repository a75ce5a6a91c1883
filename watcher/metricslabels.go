package watcher

import (
	"fmt"

	"github.com/svcdns/svcdns/catalog"
)

// The Prometheus endpoint of a container (see catalog.MetricsEndpoint).
const (
	fieldMetricsPort = "METRICS_PORT"
	fieldMetricsPath = "METRICS_PATH"
	reasonMetrics    = "metrics_label"
)

// metricsEndpoint reads SERVICE_METRICS_PORT and SERVICE_METRICS_PATH: a
// container opts in to Prometheus discovery with the port (a container
// port; it need not be published), the path defaults to /metrics. A bad
// value is a problem and no endpoint; a path without a port is one too.
func metricsEndpoint(m meta, p *problems) *catalog.MetricsEndpoint {
	portSet, hasPort := m.lookup(keyPrefix + fieldMetricsPort)
	pathSet, hasPath := m.lookup(keyPrefix + fieldMetricsPath)
	if !hasPort {
		if hasPath {
			p.add(reasonMetrics, fmt.Sprintf("%s without %s%s: not scraped", pathSet.Source, keyPrefix, fieldMetricsPort))
		}
		return nil
	}
	if len(portSet.Value) > maxValueLen || len(pathSet.Value) > maxValueLen {
		p.add(reasonMetrics, fmt.Sprintf("%s: value over %d bytes, not scraped", portSet.Source, maxValueLen))
		return nil
	}
	ep, err := catalog.ParseMetricsEndpoint(portSet.Value, pathSet.Value)
	if err != nil {
		p.add(reasonMetrics, fmt.Sprintf("%s: not scraped: %v", portSet.Source, err))
		return nil
	}
	return ep
}
