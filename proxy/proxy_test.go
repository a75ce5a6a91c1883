package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

func TestProxyRoutesAndHeaders(t *testing.T) {
	f := newFixture(t)
	books := echo(t, "books")
	strip := echo(t, "strip")
	f.register("books-1", "books-ms", addrOf(books), paths("/api/v1/books"))
	f.register("strip-1", "strip-ms", addrOf(strip), &catalog.ProxyRoute{Paths: []string{"/s"}, Strip: true})

	tests := []struct {
		method, host, path, body string
		code                     int
		want                     string
	}{
		{"GET", "", "/api/v1/books/12?x=1", "", 200, "books GET /api/v1/books/12?x=1 "},
		{"POST", "", "/api/v1/books", "hello", 200, "books POST /api/v1/books hello"},
		{"GET", "books-ms.service.local:80", "/anything", "", 200, "books GET /anything "},
		{"GET", "BOOKS-MS.service.local.", "/", "", 200, "books GET / "},
		{"GET", "", "/s/12", "", 200, "strip GET /12 "},
		{"GET", "", "/s", "", 200, "strip GET / "},
		{"GET", "", "/s%2Fx/y", "", 200, "strip GET /x/y "},   // routes match the decoded path
		{"GET", "", "/s/a%2Fb", "", 200, "strip GET /a%2Fb "}, // an escaped path strips as the decoded one
		{"GET", "", "/nothing", "", 404, "svcdns proxy: no route for host"},
	}
	for _, tt := range tests {
		code, body := f.do(tt.method, tt.host, tt.path, strings.NewReader(tt.body))
		if code != tt.code || !strings.HasPrefix(body, tt.want) {
			t.Errorf("%s %s%s: %d %q, want %d %q", tt.method, tt.host, tt.path, code, body, tt.code, tt.want)
		}
	}

	req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/books", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a client's own claim is not kept
	req.Host = "front.example.test"
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Got-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want 127.0.0.1", got)
	}
	if got := resp.Header.Get("X-Got-Forwarded-Host"); got != "front.example.test" {
		t.Errorf("X-Forwarded-Host %q", got)
	}
	if got := resp.Header.Get("X-Got-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto %q", got)
	}
}

func TestProxyRebuildsOnChange(t *testing.T) {
	f := newFixture(t)
	v1, v2 := echo(t, "v1"), echo(t, "v2")
	if code, _ := f.get("", "/api/v1/books"); code != http.StatusNotFound {
		t.Fatalf("before any instance: %d, want 404", code)
	}
	f.register("v1", "books-ms", addrOf(v1), paths("/api/v1/books"))
	if _, body := f.get("", "/api/v1/books"); !strings.HasPrefix(body, "v1 ") {
		t.Fatalf("after v1 registered: %q", body)
	}
	f.register("v2", "books-ms", addrOf(v2), paths("/api/v1/books"))
	f.deregister("v1")
	for range 10 {
		if _, body := f.get("", "/api/v1/books"); !strings.HasPrefix(body, "v2 ") {
			t.Fatalf("after v1 left: %q", body)
		}
	}
	// A path change moves the route.
	f.register("v2", "books-ms", addrOf(v2), paths("/api/v2/books"))
	if code, _ := f.get("", "/api/v1/books"); code != http.StatusNotFound {
		t.Errorf("old path after the move: %d, want 404", code)
	}
	// The line follows the swap.
	eventuallyTrue(t, "route changes logged", func() bool {
		return strings.Contains(f.logs.String(), "proxy route removed") && strings.Contains(f.logs.String(), "proxy route added")
	})
}

func TestProxyNoPassingInstance(t *testing.T) {
	f := newFixture(t)
	_, err := f.cat.RegisterInstance(&catalog.Instance{
		ID: "b1", Service: "books-ms", Protocol: catalog.ProtoTCP, Port: 8080, HostPort: 8080,
		ContainerID: catalog.APIContainerID("b1"), ContainerName: "b1", Target: "b1", Source: catalog.SourceAPI, Node: testNode,
		Passing: false, Proxy: paths("/api/v1/books"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sync()
	code, body := f.get("", "/api/v1/books/1")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "books-ms") || strings.Count(strings.TrimSpace(body), "\n") != 0 {
		t.Errorf("no passing instance: %d %q, want a one-line 503 naming books-ms", code, body)
	}
}

func TestProxyConflict(t *testing.T) {
	f := newFixture(t)
	a, b := echo(t, "a"), echo(t, "b")
	f.register("a1", "books-ms", addrOf(a), paths("/api/v1/books"))
	f.register("b1", "papers-ms", addrOf(b), paths("/api/v1/books"))
	code, body := f.get("", "/api/v1/books")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "books-ms and papers-ms") {
		t.Errorf("conflict: %d %q, want 503 naming both", code, body)
	}
	if n := strings.Count(f.logs.String(), "proxy route conflict"); n != 1 {
		t.Errorf("%d conflict lines, want 1:\n%s", n, f.logs)
	}
	if !strings.Contains(f.logs.String(), "level=WARN") {
		t.Errorf("conflict not at WARN:\n%s", f.logs)
	}
	var routes []Route
	rec := httptest.NewRecorder()
	f.p.RoutesHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/routes", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &routes); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range routes {
		if r.Path == "/api/v1/books" && r.Host == "" {
			found = r.Conflict != "" && r.Service == "books-ms,papers-ms" && len(r.Instances) == 0
		}
	}
	if !found {
		t.Errorf("/v1/routes does not show the conflict: %s", rec.Body)
	}
	// The conflict ends when one side gives the route up.
	f.deregister("b1")
	if _, body := f.get("", "/api/v1/books"); !strings.HasPrefix(body, "a ") {
		t.Errorf("after papers-ms left: %q", body)
	}
	if !strings.Contains(f.logs.String(), "proxy route conflict resolved") {
		t.Errorf("resolution not logged:\n%s", f.logs)
	}
}

// Least in flight: while one instance holds a slow request, the others
// get the rest; idle instances share the load at random.
func TestProxyLeastInFlight(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var slowHits atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/s/hold" {
			<-release
		}
		slowHits.Add(1)
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	var fastHolds atomic.Int64
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/s/hold" {
			fastHolds.Add(1)
		}
		fmt.Fprint(w, "fast")
	}))
	t.Cleanup(fast.Close)
	f.register("slow", "s", addrOf(slow), paths("/s"))
	f.register("fast", "s", addrOf(fast), paths("/s"))

	// Hold requests, one at a time, until the slow instance has two in
	// flight (each may go to either while they are even).
	var wg sync.WaitGroup
	for sent := int64(1); backendOf(f, "slow").inflight.Load() < 2; sent++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.get("", "/s/hold") }()
		eventuallyTrue(t, "hold request placed", func() bool {
			return backendOf(f, "slow").inflight.Load()+fastHolds.Load() == sent
		})
	}
	slowHits.Store(0)
	for range 50 {
		if _, body := f.get("", "/s/x"); !strings.HasPrefix(body, "fast") {
			t.Fatalf("a request went to the busy instance: %q", body)
		}
	}
	close(release)
	wg.Wait()
	eventuallyTrue(t, "nothing in flight", func() bool { return backendOf(f, "slow").inflight.Load() == 0 })

	counts := map[string]int{}
	for range 200 {
		_, body := f.get("", "/s/x")
		counts[strings.Fields(body)[0]]++
	}
	if counts["slow"] < 40 || counts["fast"] < 40 {
		t.Errorf("idle instances shared 200 requests as %v, want both well used", counts)
	}
}

func backendOf(f *fixture, id string) *backend {
	for _, r := range f.p.tbl.Load().list() {
		for _, m := range r.members {
			if m.b.id == id {
				return m.b
			}
		}
	}
	f.t.Fatalf("no backend %s", id)
	return nil
}

func eventuallyTrue(t *testing.T, what string, fn func() bool) {
	t.Helper()
	// generous: a loaded machine may take seconds to run a goroutine, and
	// every condition here comes true at once on an idle one
	deadline := time.Now().Add(20 * time.Second)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// resetter reads a request, then closes the connection with no answer:
// an instance that died while the request was on its way.
func resetter(t *testing.T) string {
	addr, _ := rawServer(t, func(_ int, c net.Conn, br *bufio.Reader) bool {
		_, _ = http.ReadRequest(br)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		return false
	})
	return addr
}

func TestProxyRetry(t *testing.T) {
	tests := []struct {
		name      string
		dead      string // "refused" or "reset"
		method    string
		body      string
		chunked   bool
		wantCode  int
		wantRetry bool
	}{
		{name: "GET after refused", dead: "refused", method: "GET", wantCode: 200, wantRetry: true},
		{name: "POST after refused: never sent", dead: "refused", method: "POST", body: "abc", wantCode: 200, wantRetry: true},
		{name: "GET after reset", dead: "reset", method: "GET", wantCode: 200, wantRetry: true},
		{name: "PUT with a small body after reset", dead: "reset", method: "PUT", body: "abc", wantCode: 200, wantRetry: true},
		{name: "POST after reset: not idempotent", dead: "reset", method: "POST", body: "abc", wantCode: 502},
		{name: "PUT with a chunked body after reset: not replayable", dead: "reset", method: "PUT", body: "abc", chunked: true, wantCode: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			good := echo(t, "good")
			dead := refusedAddr(t)
			if tt.dead == "reset" {
				dead = resetter(t)
			}
			f.register("dead", "s", dead, paths("/s"))
			// Until the dead instance has been tried first, the good one
			// is kept busy.
			gb := func() *backend { return backendOf(f, "dead") }
			gb().inflight.Store(0)
			f.register("good", "s", addrOf(good), paths("/s"))
			backendOf(f, "good").inflight.Store(1) // least in flight sends the request to dead first
			defer backendOf(f, "good").inflight.Store(0)

			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(strings.NewReader(tt.body)) // unknown length: sent chunked
			}
			code, got := f.do(tt.method, "", "/s/x", body)
			if code != tt.wantCode {
				t.Fatalf("%d %q, want %d", code, got, tt.wantCode)
			}
			if code == 200 && got != "good "+tt.method+" /s/x "+tt.body {
				t.Errorf("retried request arrived as %q", got)
			}
			if code == 502 && !strings.Contains(got, "service s") {
				t.Errorf("502 body %q does not name the service", got)
			}
			retries := counter(t, f.reg, "svcdns_proxy_retries_total", map[string]string{"route": "/s"})
			if (retries == 1) != tt.wantRetry {
				t.Errorf("retries %v, want retried=%t", retries, tt.wantRetry)
			}
			if errs := counter(t, f.reg, "svcdns_proxy_upstream_errors_total", map[string]string{"route": "/s"}); errs != 1 {
				t.Errorf("upstream errors %v, want 1", errs)
			}
		})
	}
}

// Every instance dead: each is tried once, then 502.
func TestProxyAllDead(t *testing.T) {
	f := newFixture(t)
	f.register("d1", "s", refusedAddr(t), paths("/s"))
	f.register("d2", "s", refusedAddr(t), paths("/s"))
	code, body := f.get("", "/s")
	if code != http.StatusBadGateway || !strings.Contains(body, "service s") {
		t.Errorf("%d %q, want 502 naming s", code, body)
	}
	if n := counter(t, f.reg, "svcdns_proxy_upstream_errors_total", nil); n != 2 {
		t.Errorf("%v attempts, want 2 (each instance once)", n)
	}
}

func TestProxyStreamsAndUpgrades(t *testing.T) {
	f := newFixture(t)
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo: " + line)
			brw.Flush()
			return
		}
		fmt.Fprintln(w, "first")
		http.NewResponseController(w).Flush()
		<-next
		fmt.Fprintln(w, "second")
	}))
	t.Cleanup(backend.Close)
	f.register("b", "s", addrOf(backend), paths("/s"))

	// Streamed: the first chunk arrives before the backend writes the second.
	resp, err := f.srv.Client().Get(f.srv.URL + "/s/stream")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	close(next)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
	resp.Body.Close()

	// Upgraded: bytes flow both ways after the 101.
	c, err := net.Dial("tcp", addrOf(f.srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /s/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	cr := bufio.NewReader(c)
	up, err := http.ReadResponse(cr, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", up, err)
	}
	fmt.Fprint(c, "ping\n")
	if line, _ := cr.ReadString('\n'); line != "echo: ping\n" {
		t.Errorf("through the upgraded connection: %q", line)
	}
	c.Close()
	eventuallyTrue(t, "upgraded request done", func() bool { return backendOf(f, "b").inflight.Load() == 0 })
	// Counted once ServeHTTP returns, which is after the upgraded
	// connection is closed and out of flight.
	eventuallyTrue(t, "101 counted", func() bool {
		return counter(t, f.reg, "svcdns_proxy_requests_total", map[string]string{"code": "101"}) == 1
	})
}

func TestProxyMetricsLint(t *testing.T) {
	f := newFixture(t)
	f.register("b", "s", addrOf(echo(t, "b")), paths("/s"))
	f.get("", "/s")
	f.get("", "/none")
	if n := counter(t, f.reg, "svcdns_proxy_requests_total", map[string]string{"route": "/s", "service": "s", "code": "200"}); n != 1 {
		t.Errorf("requests_total{route=/s,code=200} = %v, want 1", n)
	}
	testutil.LintMetrics(t, f.reg)
	// A route that goes takes its series with it.
	f.deregister("b")
	if n := counter(t, f.reg, "svcdns_proxy_requests_total", map[string]string{"route": "/s"}); n != 0 {
		t.Errorf("series of a gone route kept: %v", n)
	}
}

// hangingAddr is a loopback address whose connects hang: a listener with
// a backlog of 0 that never accepts, its queue already full, so the
// kernel drops further SYNs (a container whose network went away).
func hangingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this one hung
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the accept queue of a listener")
	return ""
}

// A dial that hangs is given up as soon as the catalog drops the instance,
// and the request goes to another one.
func TestProxyDialGivenUpWhenInstanceLeaves(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ConnectTimeout = time.Minute })
	good := echo(t, "good")
	hang := hangingAddr(t)
	// Counted in flight is not enough: the instance must leave while the
	// dial is in progress (TestProxyInstanceLeavesBeforeDial has it leave
	// before). Control runs inside the dial, after the watch. Set before
	// register: the table's atomic swap orders it before any request.
	connecting := make(chan struct{})
	var once sync.Once
	f.p.dialer.Control = func(_, addr string, _ syscall.RawConn) error {
		if addr == hang {
			once.Do(func() { close(connecting) })
		}
		return nil
	}
	f.register("hang", "s", hang, paths("/s"))
	f.register("good", "s", addrOf(good), paths("/s"))
	backendOf(f, "good").inflight.Store(1) // the hanging one is picked first
	type result struct {
		code int
		body string
	}
	done := make(chan result, 1)
	go func() {
		code, body := f.get("", "/s/x")
		done <- result{code, body}
	}()
	select {
	case <-connecting:
	case <-time.After(20 * time.Second):
		t.Fatal("no dial to the hanging instance")
	}
	backendOf(f, "good").inflight.Store(0)
	f.deregister("hang")
	select {
	case r := <-done:
		if r.code != http.StatusOK || !strings.HasPrefix(r.body, "good ") {
			t.Errorf("after the hanging instance left: %d %q", r.code, r.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request still waits on a dial to an instance that left")
	}
}

// TestKeepAliveToInstances: requests in parallel reuse the proxy's
// connections to an instance rather than dial new ones (with Go's default
// of two idle connections per host, most of each round would dial again).
func TestKeepAliveToInstances(t *testing.T) {
	var dials atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	backend.Start()
	t.Cleanup(backend.Close)
	f := newFixture(t)
	f.register("b-1", "b", addrOf(backend), paths("/"))

	const parallel, rounds = 16, 4
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel}}
	defer client.CloseIdleConnections()
	for range rounds {
		var wg sync.WaitGroup
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(f.srv.URL + "/x")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	// Not at most parallel: a transport puts a connection back in its pool
	// after the response has gone on, so a request of the next round may
	// find it still on its way and dial. Two idle connections per host
	// would dial 14 a round, 58 in all; keeping them, a few more than
	// parallel at most.
	if n := dials.Load(); n > parallel*rounds/2 {
		t.Errorf("%d connections to the instance for %d requests, at most %d at a time: want about %d, at most %d", n, parallel*rounds, parallel, parallel, parallel*rounds/2)
	}
}
