package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testNode = "node-1"

// fixture is a catalog, a Proxy following it, and an HTTP server in front
// of the proxy.
type fixture struct {
	t    *testing.T
	cat  *catalog.Catalog
	p    *Proxy
	srv  *httptest.Server
	reg  *prometheus.Registry
	logs *testutil.LogBuffer
}

func newFixture(t *testing.T, mods ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, cat: catalog.New(), reg: prometheus.NewRegistry(), logs: &testutil.LogBuffer{}}
	cfg := Config{
		Catalog: f.cat, Node: testNode, Registerer: f.reg,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		// A failure timeout only: tests hold requests at instances for as
		// long as they need, which on a loaded machine may be seconds; a
		// held request past it comes back 504 and is in flight no more.
		HeaderTimeout: time.Minute,
	}
	for _, m := range mods {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	f.srv = httptest.NewServer(p)
	t.Cleanup(func() {
		f.srv.Close()
		cancel()
		<-done
	})
	return f
}

// sync waits until the proxy's table is at the catalog's index.
func (f *fixture) sync() {
	f.t.Helper()
	want := f.cat.Index()
	deadline := time.After(5 * time.Second)
	for {
		t := f.p.tbl.Load()
		if t.index >= want {
			return
		}
		select {
		case <-t.next:
		case <-deadline:
			f.t.Fatalf("route table at index %d, catalog at %d after 5s", t.index, want)
		}
	}
}

// register puts an API instance of svc at the backend's address.
func (f *fixture) register(id, svc string, addr string, route *catalog.ProxyRoute) {
	f.t.Helper()
	ap := netip.MustParseAddrPort(addr)
	_, err := f.cat.RegisterInstance(testutil.APIInstance(id, svc, ap.Addr().String(), ap.Port(), func(i *catalog.Instance) {
		i.Node, i.Proxy = testNode, route
	}))
	if err != nil {
		f.t.Fatal(err)
	}
	f.sync()
}

func (f *fixture) deregister(id string) {
	f.t.Helper()
	if _, err := f.cat.DeregisterInstance(id); err != nil {
		f.t.Fatal(err)
	}
	f.sync()
}

// do sends a request through the proxy and returns status and body.
func (f *fixture) do(method, host, path string, body io.Reader) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) get(host, path string) (int, string) { return f.do(http.MethodGet, host, path, nil) }

// echo is a backend that answers "<name> <method> <path> <body>" and the
// X-Forwarded-* headers it got.
func echo(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Got-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Got-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Got-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"))
		fmt.Fprintf(w, "%s %s %s %s", name, r.Method, r.URL.RequestURI(), b)
	}))
	t.Cleanup(s.Close)
	return s
}

func addrOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func paths(p ...string) *catalog.ProxyRoute { return &catalog.ProxyRoute{Paths: p} }

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
