package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// fixture is an API over a fresh catalog, with a registry, a fixed clock
// and a log buffer.
type fixture struct {
	t    *testing.T
	cat  *catalog.Catalog
	api  *API
	reg  *prometheus.Registry
	now  time.Time
	logs *testutil.LogBuffer
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, cat: catalog.New(), reg: prometheus.NewRegistry(), now: t0, logs: &testutil.LogBuffer{}}
	cfg := Config{
		Catalog:    f.cat,
		Node:       "n1",
		Gatherer:   f.reg,
		Registerer: f.reg,
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Now:        func() time.Time { return f.now },
	}
	if mod != nil {
		mod(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.api = api
	return f
}

// do sends one request through the API and returns the recorded answer.
func (f *fixture) do(method, path, body string, header ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.doCtx(context.Background(), method, path, body, header...)
}

func (f *fixture) doCtx(ctx context.Context, method, path, body string, header ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequestWithContext(ctx, method, path, rd)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r)
	return w
}

// register puts an API instance and fails unless it is accepted.
func (f *fixture) register(id, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	w := f.do(http.MethodPut, "/v1/instances/"+id, body)
	if w.Code != http.StatusOK {
		f.t.Fatalf("PUT /v1/instances/%s %s: %d %s", id, body, w.Code, w.Body)
	}
	return w
}

// dockerContainer stores a Docker container with one instance per port of
// service svc.
func (f *fixture) dockerContainer(id, name, svc string, addr string, passing bool, tags []string, ports ...uint16) {
	f.t.Helper()
	ctr := &catalog.Container{
		ID: id, Name: name, Target: name, Node: "n1", Source: catalog.SourceDocker, Passing: passing,
		Addrs: []catalog.NetAddr{{Network: "bridge", Prefix: netip.MustParsePrefix(addr + "/16")}},
	}
	var insts []*catalog.Instance
	for _, p := range ports {
		insts = append(insts, testutil.Instance(ctr, svc, p, func(i *catalog.Instance) { i.Tags = tags }))
	}
	if _, err := f.cat.PutContainer(ctr, insts); err != nil {
		f.t.Fatal(err)
	}
}

// decode unmarshals a JSON answer, failing the test on anything else.
func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, w.Body)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return v
}

// errorOf returns the "error" of a JSON error answer.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	e := decode[map[string]any](t, w)
	msg, ok := e["error"].(string)
	if !ok || msg == "" || len(e) != 1 {
		t.Fatalf("error body %s, want {\"error\": \"...\"}", w.Body)
	}
	return msg
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func indexOf(t *testing.T, w *httptest.ResponseRecorder) uint64 {
	t.Helper()
	v := w.Header().Get("X-Svcdns-Index")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("X-Svcdns-Index %q: %v", v, err)
	}
	return n
}

const (
	hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hexB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestReads(t *testing.T) {
	f := newFixture(t, nil)
	f.dockerContainer(hexA, "web-1", "web", "172.17.0.2", true, []string{"v1"}, 80)
	f.dockerContainer(hexB, "web-2", "web", "172.17.0.3", false, []string{"v2"}, 80)
	f.register("db1", `{"service":"db","address":"10.0.0.9","port":5432}`)
	catIdx := f.cat.Index()

	tests := []struct {
		name string
		path string
		code int
		ids  []string // the ids (or names) answered, in order
		err  string   // part of the error message
	}{
		{name: "services", path: "/v1/services", code: 200, ids: []string{"db", "web"}},
		{name: "service", path: "/v1/services/web", code: 200, ids: []string{hexA + ":80/tcp", hexB + ":80/tcp"}},
		{name: "upper case name", path: "/v1/services/WEB", code: 200, ids: []string{hexA + ":80/tcp", hexB + ":80/tcp"}},
		{name: "passing", path: "/v1/services/web?passing=true", code: 200, ids: []string{hexA + ":80/tcp"}},
		{name: "passing bare", path: "/v1/services/web?passing", code: 200, ids: []string{hexA + ":80/tcp"}},
		{name: "passing false", path: "/v1/services/web?passing=false", code: 200, ids: []string{hexA + ":80/tcp", hexB + ":80/tcp"}},
		{name: "tag", path: "/v1/services/web?tag=v2", code: 200, ids: []string{hexB + ":80/tcp"}},
		{name: "tag upper case", path: "/v1/services/web?tag=V1", code: 200, ids: []string{hexA + ":80/tcp"}},
		{name: "tag and passing", path: "/v1/services/web?tag=v2&passing=1", code: 200, ids: []string{}},
		{name: "unknown service", path: "/v1/services/nope", code: 200, ids: []string{}},
		{name: "containers", path: "/v1/containers", code: 200, ids: []string{hexA, "api/db1", hexB}},
		{name: "service with dot", path: "/v1/services/v1.web", code: 400, err: "dot"},
		{name: "service 64 bytes", path: "/v1/services/" + strings.Repeat("a", 64), code: 400, err: "at most 63"},
		{name: "service non-ASCII", path: "/v1/services/b%C3%BCcher", code: 400, err: "non-ASCII"},
		{name: "bad passing", path: "/v1/services/web?passing=maybe", code: 400, err: "passing"},
		{name: "bad tag", path: "/v1/services/web?tag=a.b", code: 400, err: "tag"},
		{name: "empty tag", path: "/v1/services/web?tag=", code: 400, err: "empty"},
		{name: "bad index", path: "/v1/services/web?index=abc", code: 400, err: "index"},
		{name: "negative index", path: "/v1/services/web?index=-1", code: 400, err: "index"},
		{name: "bad wait", path: "/v1/services/web?index=1&wait=abc", code: 400, err: "wait"},
		{name: "negative wait", path: "/v1/services/web?index=1&wait=-1s", code: 400, err: "wait"},
		{name: "zero wait", path: "/v1/services/web?index=1&wait=0s", code: 400, err: "wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do(http.MethodGet, tc.path, "")
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d; body %s", w.Code, tc.code, w.Body)
			}
			if tc.code != http.StatusOK {
				if msg := errorOf(t, w); !strings.Contains(msg, tc.err) {
					t.Errorf("error %q, want it to mention %q", msg, tc.err)
				}
				return
			}
			var got []string
			for _, e := range decode[[]map[string]any](t, w) {
				id, _ := e["id"].(string)
				if id == "" {
					id, _ = e["name"].(string)
				}
				got = append(got, id)
			}
			if !slices.Equal(got, tc.ids) {
				t.Errorf("answered %q, want %q", got, tc.ids)
			}
			if len(got) == 0 && strings.TrimSpace(w.Body.String()) != "[]" {
				t.Errorf("body %s, want []", w.Body)
			}
			idx := indexOf(t, w)
			switch {
			case strings.HasPrefix(tc.path, "/v1/services/web"), strings.HasPrefix(tc.path, "/v1/services/WEB"):
				// The service's own index: web last changed before db1 came.
				if idx == 0 || idx >= catIdx {
					t.Errorf("X-Svcdns-Index %d, want web's index, below the catalog's %d", idx, catIdx)
				}
			case tc.path == "/v1/services/nope":
				if idx != catIdx {
					t.Errorf("X-Svcdns-Index %d, want the catalog's %d for a service never seen", idx, catIdx)
				}
			default:
				if idx != catIdx {
					t.Errorf("X-Svcdns-Index %d, want %d", idx, catIdx)
				}
			}
		})
	}
}

// The JSON shapes are the contract other tools parse: check every key.
func TestJSONShapes(t *testing.T) {
	f := newFixture(t, nil)
	ctr := &catalog.Container{
		ID: hexA, Name: "books-1", Target: "books-1", Node: "n1", Source: catalog.SourceDocker, Passing: true,
		Addrs: []catalog.NetAddr{
			{Network: "bridge", Prefix: netip.MustParsePrefix("172.17.0.2/16")},
			{Network: "backend", Prefix: netip.MustParsePrefix("fd00::2/64")},
		},
		HostIP: netip.MustParseAddr("10.0.2.15"),
	}
	insts := []*catalog.Instance{
		{ID: catalog.InstanceID(hexA, "8080"), Service: "books-ms", Tags: []string{"v1"}, Protocol: "tcp", Port: 8080, PortName: "http",
			Addrs: ctr.Addrs, HostIP: netip.MustParseAddr("10.0.2.15"), HostPort: 32768,
			ContainerID: hexA, ContainerName: "books-1", Target: "books-1", Node: "n1", Source: catalog.SourceDocker, Passing: true},
		{ID: catalog.InstanceID(hexA, "9090"), Service: "books-ms", Protocol: "udp", Port: 9090,
			Addrs: ctr.Addrs, ContainerID: hexA, ContainerName: "books-1", Target: "books-1", Node: "n1", Source: catalog.SourceDocker, Passing: true},
	}
	if _, err := f.cat.PutContainer(ctr, insts); err != nil {
		t.Fatal(err)
	}
	nets := `[{"network":"bridge","address":"172.17.0.2","prefix_len":16},{"network":"backend","address":"fd00::2","prefix_len":64}]`
	want := `[
	 {"id":"` + hexA + `:8080","service":"books-ms","tags":["v1"],"protocol":"tcp","port":8080,"port_name":"http",
	  "address":"172.17.0.2","networks":` + nets + `,"host_address":"10.0.2.15","host_port":32768,
	  "container_id":"` + hexA + `","container_name":"books-1","node":"n1","owner":"n1","source":"docker","passing":true},
	 {"id":"` + hexA + `:9090","service":"books-ms","tags":[],"protocol":"udp","port":9090,"port_name":"",
	  "address":"172.17.0.2","networks":` + nets + `,
	  "container_id":"` + hexA + `","container_name":"books-1","node":"n1","owner":"n1","source":"docker","passing":true}]`
	if w := f.do("GET", "/v1/services/books-ms", ""); !jsonEqual(t, w.Body.String(), want) {
		t.Errorf("GET /v1/services/books-ms:\n got %s\nwant %s", w.Body, want)
	}

	w := f.register("b1", `{"service":"Books-MS","address":"::ffff:10.0.0.1","port":8080,"tags":["V1","v1","alpha"],"ttl":"30s"}`)
	wantAPI := `{"id":"b1","service":"books-ms","tags":["alpha","v1"],"protocol":"tcp","port":8080,"port_name":"",
	  "address":"10.0.0.1","networks":[{"network":"","address":"10.0.0.1","prefix_len":32}],
	  "host_address":"10.0.0.1","host_port":8080,"container_id":"api/b1","container_name":"b1","node":"n1","owner":"n1",
	  "source":"api","passing":true,"expires":"2025-03-01T12:00:30Z","ttl":"30s"}`
	if !jsonEqual(t, w.Body.String(), wantAPI) {
		t.Errorf("PUT /v1/instances/b1:\n got %s\nwant %s", w.Body, wantAPI)
	}
	if w := f.do("GET", "/v1/services/books-ms?tag=alpha", ""); !jsonEqual(t, w.Body.String(), "["+wantAPI+"]") {
		t.Errorf("GET the API instance:\n got %s\nwant [%s]", w.Body, wantAPI)
	}

	wantCtrs := `[
	 {"id":"` + hexA + `","name":"books-1","node":"n1","owner":"n1","source":"docker","networks":` + nets + `,"host_address":"10.0.2.15","passing":true},
	 {"id":"api/b1","name":"b1","node":"n1","owner":"n1","source":"api","networks":[{"network":"","address":"10.0.0.1","prefix_len":32}],"passing":true}]`
	// By id: "aaaa..." sorts before "api/b1".
	w = f.do("GET", "/v1/containers", "")
	if !jsonEqual(t, w.Body.String(), wantCtrs) {
		t.Errorf("GET /v1/containers:\n got %s\nwant %s", w.Body, wantCtrs)
	}

	w = f.do("GET", "/v1/services", "")
	if want := `[{"name":"books-ms","instances":3,"passing":3}]`; !jsonEqual(t, w.Body.String(), want) {
		t.Errorf("GET /v1/services: got %s, want %s", w.Body, want)
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"POST", "/", 405, "GET, HEAD"},
		{"GET", "/v1/services/a/b", 404, ""},
		{"PUT", "/v1/instances/", 404, ""},
		{"POST", "/v1/services", 405, "GET, HEAD"},
		{"DELETE", "/v1/services/web", 405, "GET, HEAD"},
		{"GET", "/v1/instances/b1", 405, "DELETE, PUT"},
		{"POST", "/healthz", 405, "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := f.do(tc.method, tc.path, "")
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d; body %s", w.Code, tc.code, w.Body)
			}
			msg := errorOf(t, w)
			if !strings.Contains(msg, tc.path) {
				t.Errorf("error %q does not name the path", msg)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// dockerState is a DockerStatus; the watcher's own (watcher.Status) has
// more fields, which /healthz encodes the same way.
type dockerState struct {
	Connected bool   `json:"connected"`
	Synced    bool   `json:"synced"`
	LastError string `json:"last_error,omitempty"`
	Events    uint64 `json:"events,omitempty"`
}

func (s dockerState) Health() (synced, connected bool) { return s.Synced, s.Connected }

func TestHealthz(t *testing.T) {
	synced := dockerState{Connected: true, Synced: true}
	lost := dockerState{Synced: true, LastError: "connection refused"}
	tests := []struct {
		name   string
		docker *dockerState // nil: no Docker
		code   int
		want   string
	}{
		{name: "no docker", code: 200,
			want: `{"status":"ok","docker":null,"catalog":{"index":1,"services":1,"instances":1,"passing":1,"containers":1}}`},
		{name: "before first sync", docker: &dockerState{}, code: 503,
			want: `{"status":"syncing","docker":{"connected":false,"synced":false},
			        "catalog":{"index":1,"services":1,"instances":1,"passing":1,"containers":1}}`},
		{name: "synced", docker: &synced, code: 200,
			want: `{"status":"ok","docker":{"connected":true,"synced":true},
			        "catalog":{"index":1,"services":1,"instances":1,"passing":1,"containers":1}}`},
		{name: "docker lost after sync", docker: &lost, code: 200,
			want: `{"status":"degraded","docker":{"connected":false,"synced":true,"last_error":"connection refused"},
			        "catalog":{"index":1,"services":1,"instances":1,"passing":1,"containers":1}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if tc.docker != nil {
					c.Docker = func() DockerStatus { return *tc.docker }
				}
			})
			f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
			w := f.do("GET", "/healthz", "")
			if w.Code != tc.code {
				t.Errorf("code %d, want %d", w.Code, tc.code)
			}
			if !jsonEqual(t, w.Body.String(), tc.want) {
				t.Errorf("body\n got %s\nwant %s", w.Body, tc.want)
			}
			if indexOf(t, w) != 1 {
				t.Errorf("X-Svcdns-Index %q, want 1", w.Header().Get("X-Svcdns-Index"))
			}
		})
	}
	// The state is read at each request, not once.
	st := dockerState{}
	f := newFixture(t, func(c *Config) { c.Docker = func() DockerStatus { return st } })
	if w := f.do("GET", "/healthz", ""); w.Code != 503 {
		t.Fatalf("before sync: %d, want 503", w.Code)
	}
	st = synced
	if w := f.do("GET", "/healthz", ""); w.Code != 200 {
		t.Fatalf("after sync: %d, want 200", w.Code)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	f.do("GET", "/v1/services/books", "")
	f.do("GET", "/v1/services/other", "")
	f.do("GET", "/no/such/path", "")
	f.do("BREW", "/v1/services", "")

	w := f.do("GET", "/metrics", "")
	if w.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		"svcdns_catalog_instances 1\n",
		"svcdns_catalog_passing_instances 1\n",
		"svcdns_catalog_services 1\n",
		"svcdns_catalog_containers 1\n",
		"svcdns_catalog_index 1\n",
		`svcdns_catalog_source_instances{passing="true",source="api"} 1`,
		`svcdns_catalog_source_instances{passing="true",source="docker"} 0`,
		`svcdns_http_requests_total{code="200",method="PUT",route="/v1/instances/{id}"} 1`,
		`svcdns_http_requests_total{code="200",method="GET",route="/v1/services/{name}"} 2`,
		`svcdns_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`svcdns_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`svcdns_http_request_duration_seconds_count{method="GET",route="/v1/services/{name}"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, raw := range []string{"/v1/services/books", "/no/such/path", "BREW"} {
		if strings.Contains(body, `"`+raw+`"`) {
			t.Errorf("/metrics has a label with the raw value %q", raw)
		}
	}

	testutil.LintMetrics(t, f.reg)
	if _, err := New(Config{Catalog: f.cat, Registerer: f.reg}); err == nil {
		t.Error("registering twice on one registry succeeded, want an error")
	}

	// Without a Gatherer there is no /metrics.
	g := newFixture(t, func(c *Config) { c.Gatherer, c.Registerer = nil, nil })
	if w := g.do("GET", "/metrics", ""); w.Code != 404 {
		t.Errorf("GET /metrics without a gatherer: %d, want 404", w.Code)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a catalog succeeded")
	}
	if _, err := New(Config{Catalog: catalog.New(), MaxLongPolls: -1}); err == nil {
		t.Error("New with MaxLongPolls -1 succeeded")
	}
	a, err := New(Config{Catalog: catalog.New()})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if cap(a.polls) != defaultMaxLongPolls || a.node != host {
		t.Errorf("defaults: max long polls %d, node %q; want %d, %q", cap(a.polls), a.node, defaultMaxLongPolls, host)
	}
}

// Serve ends long polls at once on shutdown and returns nil.
func TestServeShutdown(t *testing.T) {
	f := newFixture(t, nil)
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- f.api.Serve(ctx, ln) }()

	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/v1/services/books")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	idx := resp.Header.Get("X-Svcdns-Index")

	type result struct {
		code int
		idx  string
		err  error
	}
	polled := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/v1/services/books?index=" + idx + "&wait=1m")
		if err != nil {
			polled <- result{err: err}
			return
		}
		resp.Body.Close()
		polled <- result{code: resp.StatusCode, idx: resp.Header.Get("X-Svcdns-Index")}
	}()
	waitFor(t, func() bool { return len(f.api.polls) == 1 })

	// A long poll still held when the shutdown's 5s run out makes Serve
	// return an error: that, not the time taken, tells the poll was ended.
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve still running a minute after its context ended")
	}
	r := <-polled
	if r.err != nil || r.code != 200 || r.idx != idx {
		t.Errorf("long poll at shutdown: %d index %s err %v, want 200 index %s", r.code, r.idx, r.err, idx)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the listener still answers after Serve returned")
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every instance and container says its owner: this node for what its
// Docker host runs and its API received, the peer for a peer's records
// (written by the cluster under the peer's name).
func TestOwner(t *testing.T) {
	f := newFixture(t, nil)
	f.dockerContainer(hexA, "web-1", "web", "172.17.0.2", true, nil, 80)
	f.register("local-api", `{"service":"web","address":"10.0.0.1","port":81}`)
	peer := func(id, name string, src catalog.Source, addr string) {
		ctr := &catalog.Container{ID: id, Name: name, Target: name + ".n2", Node: "n2", Source: src, Passing: true,
			Addrs: []catalog.NetAddr{{Network: "bridge", Prefix: netip.MustParsePrefix(addr + "/16")}}}
		inst := testutil.Instance(ctr, "web", 82)
		if src == catalog.SourceAPI {
			ctr.Addrs[0].Network = ""
			inst.Addrs, inst.ID = ctr.Addrs, strings.TrimPrefix(id, "api/")
		}
		if _, err := f.cat.PutContainer(ctr, []*catalog.Instance{inst}); err != nil {
			t.Fatal(err)
		}
	}
	peer("n2/"+hexB, "web-2", catalog.SourceDocker, "172.18.0.2")
	peer("api/n2/peer-api", "peer-api", catalog.SourceAPI, "10.0.0.2")

	wantOwner := map[string]string{hexA: "n1", "api/local-api": "n1", "n2/" + hexB: "n2", "api/n2/peer-api": "n2"}
	tests := []struct {
		name, path string
		id         func(map[string]any) string
	}{
		{"instances", "/v1/services/web", func(m map[string]any) string { s, _ := m["container_id"].(string); return s }},
		{"containers", "/v1/containers", func(m map[string]any) string { s, _ := m["id"].(string); return s }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decode[[]map[string]any](t, f.do("GET", tc.path, ""))
			if len(got) != len(wantOwner) {
				t.Fatalf("%s: %d entries, want %d: %v", tc.path, len(got), len(wantOwner), got)
			}
			for _, m := range got {
				id := tc.id(m)
				want, ok := wantOwner[id]
				if !ok {
					t.Errorf("%s: unexpected %q", tc.path, id)
					continue
				}
				if m["owner"] != want || m["node"] != want {
					t.Errorf("%s %s: owner %v node %v, want %s for both", tc.path, id, m["owner"], m["node"], want)
				}
			}
		})
	}
}
