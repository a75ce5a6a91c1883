package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// MetricsEndpoint is where an instance serves Prometheus metrics: the
// labels SERVICE_METRICS_PORT and SERVICE_METRICS_PATH, or the PUT body's
// metrics object. Prometheus finds it through the HTTP API's service
// discovery (GET /v1/prometheus). Shared like the Instance it hangs from:
// never modified.
type MetricsEndpoint struct {
	Port uint16 // the container's port (for an API instance, its address's)
	Path string // absolute; "/metrics" when none was given
}

// DefaultMetricsPath is the path of a MetricsEndpoint given only a port.
const DefaultMetricsPath = "/metrics"

// ParseMetricsEndpoint checks a metrics port (required) and path ("" =
// DefaultMetricsPath) as labels or the API give them; its errors say what
// is wrong.
func ParseMetricsEndpoint(port, path string) (*MetricsEndpoint, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(port), 10, 16)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("%w metrics port %s: want a port number from 1 to 65535", ErrInvalid, quoteValue(port))
	}
	m := &MetricsEndpoint{Port: uint16(n), Path: strings.TrimSpace(path)}
	if m.Path == "" {
		m.Path = DefaultMetricsPath
	}
	if err := m.checkPath(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *MetricsEndpoint) checkPath() error {
	if len(m.Path) > MaxProxyPathLen || !strings.HasPrefix(m.Path, "/") {
		return fmt.Errorf("%w metrics path %s: want an absolute path of at most %d bytes, such as /metrics", ErrInvalid, quoteValue(m.Path), MaxProxyPathLen)
	}
	for i := 0; i < len(m.Path); i++ {
		if c := m.Path[i]; c <= ' ' || c >= 0x7f || c == '#' || c == '\\' {
			return fmt.Errorf("%w metrics path %s: byte %q is not allowed", ErrInvalid, quoteValue(m.Path), c)
		}
	}
	return nil
}

func (m *MetricsEndpoint) validate(id string) error {
	if m == nil {
		return nil
	}
	if m.Port == 0 {
		return fmt.Errorf("%w instance %s: metrics port 0", ErrInvalid, id)
	}
	if err := m.checkPath(); err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	return nil
}

func sameMetrics(a, b *MetricsEndpoint) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
