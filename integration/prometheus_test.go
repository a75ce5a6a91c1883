//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/internal/testutil"
)

// Debian's prometheus, run by the test on loopback with its own config,
// finds the containers that opted in with SERVICE_METRICS_PORT through
// GET /v1/prometheus (http_sd_configs) and scrapes them.

func requirePrometheus(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no prometheus (apt-get install prometheus)")
		}
		t.Skip("no prometheus")
	}
	return p
}

// startPrometheus runs prometheus with config on a free loopback port
// and returns its address; it is killed at cleanup.
func startPrometheus(t *testing.T, bin, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	out := &testutil.LogBuffer{Max: 1 << 20}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", tail(out.String()))
		}
	})
	return addr
}

// promGet decodes a Prometheus API answer's data into v.
func promGet(addr, path string, v any) error {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET %s: %d: %w", path, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("GET %s: status %q", path, body.Status)
	}
	return json.Unmarshal(body.Data, v)
}

func TestPrometheusDiscovery(t *testing.T) {
	prom := requirePrometheus(t)
	s := startWatching(t, "")
	runContainer(t, "prom-1", "--label", "SERVICE_METRICS_PORT=8080", imgBooks)
	runContainer(t, "prom-2", "--label", "SERVICE_METRICS_PORT=8080", "--label", "SERVICE_METRICS_PATH=/metrics", imgBooks)
	runContainer(t, "prom-off", imgBooks) // not opted in: not listed
	want := []string{namePrefix + "prom-1", namePrefix + "prom-2"}

	eventually(t, 15*time.Second, "both opted-in containers in /v1/prometheus", func() error {
		groups, err := s.prometheusSD()
		if err != nil {
			return err
		}
		var got []string
		for _, g := range groups {
			got = append(got, g.Labels["__meta_svcdns_container"])
		}
		slices.Sort(got)
		return sameSet("containers", got, want)
	})

	addr := startPrometheus(t, prom, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: svcdns-test
    http_sd_configs:
      - url: http://%s/v1/prometheus
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__meta_svcdns_container]
        target_label: container
      - source_labels: [__meta_svcdns_service]
        target_label: service
`, s.HTTP))

	// Discovered and scraped: both targets up.
	eventually(t, 40*time.Second, "prometheus scraping both containers", func() error {
		var targets struct {
			Active []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := promGet(addr, "/api/v1/targets", &targets); err != nil {
			return err
		}
		var up []string
		var states []string
		for _, a := range targets.Active {
			states = append(states, a.Labels["container"]+"="+a.Health+" "+a.LastError)
			if a.Health == "up" && a.Labels["service"] == "books-ms" {
				up = append(up, a.Labels["container"])
			}
		}
		slices.Sort(up)
		if err := sameSet("targets up", up, want); err != nil {
			return fmt.Errorf("%w (targets: %s)", err, strings.Join(states, "; "))
		}
		return nil
	})
	// And the samples are there, one series per container.
	eventually(t, 10*time.Second, "fakesvc_info from both containers", func() error {
		var res struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		if err := promGet(addr, "/api/v1/query?query=fakesvc_info", &res); err != nil {
			return err
		}
		var got []string
		for _, r := range res.Result {
			got = append(got, r.Metric["container"])
		}
		slices.Sort(got)
		return sameSet("series", got, want)
	})

	// svcdns's own metrics moved with what the test did: the three
	// container starts, their instances by source, and a query under its
	// type and rcode (nothing else asks this svcdns).
	if v := metricValue(t, s.HTTP, "svcdns_watcher_events_total", `action="start"`); v < 3 {
		t.Errorf(`svcdns_watcher_events_total{action="start"} = %v, want at least 3`, v)
	}
	if v := metricValue(t, s.HTTP, "svcdns_catalog_source_instances", `source="docker"`, `passing="true"`); v != 3 {
		t.Errorf(`svcdns_catalog_source_instances{source="docker",passing="true"} = %v, want 3`, v)
	}
	srvQueries := func() float64 {
		return metricValue(t, s.HTTP, "svcdns_dns_queries_total", `type="SRV"`, `rcode="NOERROR"`)
	}
	before := srvQueries()
	if m, err := ask(s.DNS, "books-ms.service."+testZone+".", dns.TypeSRV); err != nil || len(srvRecords(m)) != 3 {
		t.Fatalf("books-ms SRV: %v %v, want 3 records", m, err)
	}
	if after := srvQueries(); after != before+1 {
		t.Errorf(`svcdns_dns_queries_total{type="SRV",rcode="NOERROR"} went from %v to %v after one query, want +1`, before, after)
	}
}

// sdGroup is one element of GET /v1/prometheus.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// prometheusSD reads s's GET /v1/prometheus.
func (s *svcdns) prometheusSD() ([]sdGroup, error) {
	code, body, err := s.get("/v1/prometheus")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("GET /v1/prometheus: %d %v", code, err)
	}
	var groups []sdGroup
	return groups, json.Unmarshal(body, &groups)
}
