package cluster

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/httpapi"
	"github.com/svcdns/svcdns/internal/testutil"
)

// An instance's metrics endpoint (SERVICE_METRICS_PORT/_PATH, the API's
// "metrics") travels with it; one a local label could not give refuses
// the record, as a bad proxy route or name does, and the owner's other
// records stay.
func TestMetricsEndpointTravels(t *testing.T) {
	good := rec("a", "web")
	good.Insts[0].Metrics = &catalog.MetricsEndpoint{Port: 9100, Path: "/internal/metrics?format=prom"}
	_, body, err := decodeHeader(encodeState(&state{Owner: "p", Version: Version{1, 1}, Records: []wireRecord{good}}))
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := decodeState(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := toCatalog("p", &s.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	if m := got.Instances[0].Metrics; m == nil || *m != *good.Insts[0].Metrics {
		t.Errorf("metrics endpoint after the wire: %+v", m)
	}

	bad := map[string]catalog.MetricsEndpoint{
		"port 0":            {Port: 0, Path: "/metrics"},
		"no path":           {Port: 9100, Path: ""},
		"relative path":     {Port: 9100, Path: "metrics"},
		"space in the path": {Port: 9100, Path: "/a b"},
		"fragment":          {Port: 9100, Path: "/metrics#x"},
		"backslash":         {Port: 9100, Path: `/a\b`},
		"control byte":      {Port: 9100, Path: "/a\x00b"},
		"non-ASCII":         {Port: 9100, Path: "/mé"},
		"over 256 bytes":    {Port: 9100, Path: "/" + strings.Repeat("m", catalog.MaxProxyPathLen)},
	}
	for name, m := range bad {
		t.Run(name, func(t *testing.T) {
			r := rec("b", "web")
			r.Insts[0].Metrics = &m
			h := newTestHolder(catalog.New(), 100)
			h.run(step{up: "p"})
			h.run(sStep("p", 1, 1, good, r))
			if ids := webIDs(t, h.store.(*catalog.Catalog)); !reflect.DeepEqual(ids, []string{"p/a:80/tcp"}) {
				t.Errorf("held %v, want p/a only", ids)
			}
			if v := h.m.refused.Load(); v != 1 {
				t.Errorf("refused %d, want 1", v)
			}
		})
	}
	// A path over the decoder's cap for any string is a malformed message.
	r := rec("b", "web")
	r.Insts[0].Metrics = &catalog.MetricsEndpoint{Port: 9100, Path: "/" + strings.Repeat("m", maxString)}
	_, body, _ = decodeHeader(encodeState(&state{Owner: "p", Version: Version{1, 1}, Records: []wireRecord{r}}))
	if _, _, err := decodeState(body); err == nil {
		t.Error("a metrics path over maxString decoded")
	}
}

// TestPrometheusSDAcrossNodes: two nodes on loopback, the default
// --prometheus-sd labels. n2's GET /v1/prometheus lists n1's opted-in
// containers with the address rule of httpapi: the published metrics
// port, else the overlay address, else nothing.
func TestPrometheusSDAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	host := netip.MustParseAddr("192.0.2.10")
	bridge := catalog.NetAddr{Network: "bridge", NetworkID: "b1", Prefix: netip.MustParsePrefix("172.17.0.2/16")}
	put := func(name string, addrs []catalog.NetAddr, insts ...*catalog.Instance) {
		t.Helper()
		c := &catalog.Container{ID: "c-" + name, Name: name, Target: name, Node: "n1", Source: catalog.SourceDocker, Passing: true, Addrs: addrs}
		for _, in := range insts {
			if in.HostPort != 0 {
				c.HostIP, in.HostIP = host, host
			}
		}
		if _, err := n1.cat.PutContainer(c, testutil.Own(c, insts...)); err != nil {
			t.Fatal(err)
		}
	}
	metrics := func(port uint16, path string) *catalog.MetricsEndpoint {
		return &catalog.MetricsEndpoint{Port: port, Path: path}
	}
	// Serves web on 8080 and metrics on 9100, both published: scraped at
	// the port published for 9100.
	put("app", []catalog.NetAddr{bridge},
		&catalog.Instance{Service: "web", Port: 8080, HostPort: 32001, Passing: true, Metrics: metrics(9100, "/stats")},
		&catalog.Instance{Service: "web-admin", Port: 9100, HostPort: 32100, Passing: true})
	// On an attachable overlay, nothing published: its overlay address.
	put("ovl", []catalog.NetAddr{bridge, overlayAddr("10.0.9.5/24")},
		&catalog.Instance{Service: "web", Port: 8080, Passing: true, Metrics: metrics(8080, "/metrics")})
	// On n1's bridge only, nothing published: no target from n2.
	put("hidden", []catalog.NetAddr{bridge},
		&catalog.Instance{Service: "web", Port: 8080, Passing: true, Metrics: metrics(8080, "/metrics")})
	// Published, not opted in: not listed with --prometheus-sd labels.
	put("plain", []catalog.NetAddr{bridge}, &catalog.Instance{Service: "web", Port: 8080, HostPort: 32002, Passing: true})
	eventually(t, "n2 holds n1's containers", func() bool { return len(serviceOn(t, n2, "web")) == 4 })

	api, err := httpapi.New(httpapi.Config{Catalog: n2.cat, Node: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/prometheus", nil))
	var groups []httpapi.SDGroup
	if err := json.Unmarshal(rec.Body.Bytes(), &groups); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/prometheus on n2: %d %v %s", rec.Code, err, rec.Body)
	}
	type target struct{ addr, path, kind, node, container string }
	var got []target
	for _, g := range groups {
		l := g.Labels
		got = append(got, target{strings.Join(g.Targets, ","), l["__metrics_path__"], l["__meta_svcdns_address_kind"], l["__meta_svcdns_node"], l["__meta_svcdns_container"]})
	}
	want := []target{
		{"10.0.9.5:8080", "/metrics", "overlay", "n1", "ovl"},
		{"192.0.2.10:32100", "/stats", "published", "n1", "app"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("n2's scrape targets:\n got %+v\nwant %+v", got, want)
	}
}
