package httpapi

import (
	"testing"
	"time"
)

func TestNodes(t *testing.T) {
	off := newFixture(t, nil)
	if w := off.do("GET", "/v1/nodes", ""); w.Code != 404 || errorOf(t, w) == "" {
		t.Errorf("without a cluster: %d %s", w.Code, w.Body)
	}
	if h := decode[Health](t, off.do("GET", "/healthz", "")); h.Cluster != nil {
		t.Errorf("healthz cluster %v without a cluster", h.Cluster)
	}

	full := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	nodes := []Node{
		{Name: "n1", Address: "10.0.0.1:7946", State: "alive", Local: true, Instances: 3, Version: "7.4"},
		{Name: "n2", Address: "10.0.0.2:7946", State: "alive", Instances: 5, Version: "9.2", LastFullState: full},
		{Name: "n3", Address: "10.0.0.3:7946", State: "dead", Instances: 1, Version: "4.1", LastFullState: full},
	}
	f := newFixture(t, func(c *Config) { c.Cluster = func() []Node { return nodes } })
	w := f.do("GET", "/v1/nodes", "")
	if w.Code != 200 {
		t.Fatalf("GET /v1/nodes: %d %s", w.Code, w.Body)
	}
	want := `[{"name":"n1","address":"10.0.0.1:7946","state":"alive","local":true,"instances":3,"version":"7.4"},
		{"name":"n2","address":"10.0.0.2:7946","state":"alive","local":false,"instances":5,"version":"9.2","last_full_state":"2026-11-30T12:00:00Z"},
		{"name":"n3","address":"10.0.0.3:7946","state":"dead","local":false,"instances":1,"version":"4.1","last_full_state":"2026-11-30T12:00:00Z"}]`
	if !jsonEqual(t, w.Body.String(), want) {
		t.Errorf("GET /v1/nodes:\n%s\nwant\n%s", w.Body, want)
	}
	h := decode[Health](t, f.do("GET", "/healthz", ""))
	if h.Cluster["alive"] != 2 || h.Cluster["dead"] != 1 {
		t.Errorf("healthz cluster %v", h.Cluster)
	}
}
