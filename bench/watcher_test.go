package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
	"github.com/svcdns/svcdns/watcher"
)

// fakeEngine is the part of the Docker Engine API the watcher reads,
// served over a unix socket to the real Docker client: /_ping, the
// container list, inspect, and an event stream that stays open and quiet.
type fakeEngine struct {
	list   []byte      // GET /containers/json
	events chan []byte // pushed to the open /events stream, one JSON message each

	mu       sync.Mutex
	inspect  map[string][]byte // GET /containers/{id}/json
	listSent time.Time         // when the last list response was written
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func newFakeEngine(n int) *fakeEngine {
	e := &fakeEngine{inspect: make(map[string][]byte, n), events: make(chan []byte, 64)}
	type summary struct {
		ID     string `json:"Id"`
		Names  []string
		Image  string
		State  string
		Status string
		Labels map[string]string
	}
	list := make([]summary, n)
	for i := range n {
		id := containerID(i)
		name := fmt.Sprintf("ctr-%d", i)
		svc := fmt.Sprintf("svc%d", i/perService)
		ip := netip.AddrFrom4([4]byte{172, byte(16 + i>>16&15), byte(i >> 8), byte(i)})
		labels := map[string]string{"SERVICE_NAME": svc}
		list[i] = summary{ID: id, Names: []string{"/" + name}, Image: "bench/app:1", State: "running", Status: "Up", Labels: labels}
		e.inspect[id] = inspectJSON(id, name, svc, ip)
	}
	e.list, _ = json.Marshal(list)
	return e
}

// inspectJSON is what GET /containers/{id}/json returns for a running
// container with one exposed port on the default bridge.
func inspectJSON(id, name, svc string, ip netip.Addr) []byte {
	labels := map[string]string{"SERVICE_NAME": svc}
	inspect := map[string]any{
		"Id": id, "Name": "/" + name, "Image": "sha256:" + id,
		"State":      map[string]any{"Status": "running", "Running": true},
		"HostConfig": map[string]any{"NetworkMode": "bridge"},
		"Config": map[string]any{
			"Image": "bench/app:1", "Labels": labels,
			"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
		},
		"NetworkSettings": map[string]any{
			"Networks": map[string]any{"bridge": map[string]any{"IPAddress": ip.String(), "IPPrefixLen": 16}},
		},
	}
	b, _ := json.Marshal(inspect)
	return b
}

// event pushes a container event to the open event stream.
func (e *fakeEngine) event(action, id string, at time.Time) {
	b, _ := json.Marshal(map[string]any{
		"status": action, "id": id, "from": "bench/app:1", "Type": "container", "Action": action,
		"Actor": map[string]any{"ID": id, "Attributes": map[string]string{"image": "bench/app:1"}},
		"scope": "local", "time": at.Unix(), "timeNano": at.UnixNano(),
	})
	e.events <- b
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("OK"))
	case path == "/version":
		_, _ = w.Write([]byte(`{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}`))
	case path == "/containers/json":
		_, _ = w.Write(e.list)
		e.mu.Lock()
		e.listSent = time.Now()
		e.mu.Unlock()
	case path == "/events":
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case m := <-e.events:
				_, _ = w.Write(append(m, '\n'))
				w.(http.Flusher).Flush()
			}
		}
	case strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		e.mu.Lock()
		b, ok := e.inspect[id]
		e.mu.Unlock()
		if ok {
			_, _ = w.Write(b)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"No such container: ` + id + `"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"not faked: ` + path + `"}`))
	}
}

// BenchmarkWatcherColdStart10k is svcdns starting on a host that runs
// 10,000 containers, through the real watcher and the real Docker client
// talking to a fake engine on a unix socket: list, 10,000 inspects,
// ReplaceNode. One op is one start, from Run to the catalog holding all
// 10,000; "ms-after-list" is the part after the list response was written,
// the time the issue bounds at 1 s.
func BenchmarkWatcherColdStart10k(b *testing.B) {
	const n = 10_000
	eng, sock := serveEngine(b, n)

	var afterList time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cat := catalog.New()
		w, stop := runWatcher(b, cat, sock)
		waitIndex(b, cat, time.Minute)
		synced := time.Now()
		b.StopTimer()
		eng.mu.Lock()
		afterList += synced.Sub(eng.listSent)
		eng.mu.Unlock()
		if _, svcs := cat.Services(nil); len(svcs) != n/perService {
			b.Fatalf("%d services after the first sync, want %d; watcher: %+v", len(svcs), n/perService, w.Status())
		}
		stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(afterList.Milliseconds())/float64(b.N), "ms-after-list")
}

// serveEngine serves a fake engine with n containers on a unix socket
// until the benchmark ends.
func serveEngine(b *testing.B, n int) (*fakeEngine, string) {
	eng := newFakeEngine(n)
	sock := filepath.Join(b.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: eng, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return eng, sock
}

// runWatcher runs a watcher of cat on the fake engine at sock; stop ends
// it and waits for Run to return.
func runWatcher(b *testing.B, cat *catalog.Catalog, sock string) (*watcher.Watcher, func()) {
	testutil.NoDockerEnv(b)
	w, err := watcher.New(watcher.Config{
		Catalog: cat, DockerHost: "unix://" + sock, Node: node,
		AdvertiseIP: netip.MustParseAddr("192.0.2.1"), Resync: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return w, func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkWatcherEvent is the event → catalog path: a container starts
// (the fake engine pushes its start event, the watcher inspects it over
// the socket and writes the catalog), then dies (die event, inspect gives
// 404, the watcher removes it). One op is one start and one die on a host
// of 1,000 containers; start-p99-us and die-p99-us are from the event
// being written to the stream to the catalog write that a DNS lookup sees.
func BenchmarkWatcherEvent(b *testing.B) {
	const n = 1000
	eng, sock := serveEngine(b, n)
	cat := catalog.New()
	_, stop := runWatcher(b, cat, sock)
	defer stop()
	waitIndex(b, cat, time.Minute)

	// applied waits until the service svc has (want) or lacks (!want) an
	// instance, bounded.
	applied := func(idx uint64, svc string, want bool) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			_, insts, err := cat.Service(nil, catalog.ServiceQuery{Service: svc})
			if err != nil {
				b.Fatal(err)
			}
			if (len(insts) > 0) == want {
				return idx
			}
			if idx, err = cat.Wait(ctx, idx); err != nil {
				b.Fatalf("service %s not %s within 10s: %v", svc, map[bool]string{true: "added", false: "removed"}[want], err)
			}
		}
	}
	var startLat, dieLat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		k := n + i
		id, name, svc := containerID(k), fmt.Sprintf("ctr-%d", k), fmt.Sprintf("ev%d", k)
		ip := netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
		eng.mu.Lock()
		eng.inspect[id] = inspectJSON(id, name, svc, ip)
		eng.mu.Unlock()

		idx := cat.Index()
		t0 := time.Now()
		eng.event("start", id, t0)
		idx = applied(idx, svc, true)
		startLat = append(startLat, time.Since(t0))

		eng.mu.Lock()
		delete(eng.inspect, id)
		eng.mu.Unlock()
		t0 = time.Now()
		eng.event("die", id, t0)
		applied(idx, svc, false)
		dieLat = append(dieLat, time.Since(t0))
	}
	b.StopTimer()
	for _, l := range []struct {
		unit string
		d    []time.Duration
	}{{"start-p50-us", startLat}, {"die-p50-us", dieLat}} {
		slices.Sort(l.d)
		b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), l.unit)
		b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), strings.Replace(l.unit, "p50", "p99", 1))
	}
}
