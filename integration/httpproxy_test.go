//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The HTTP proxy's tests (issue 12): svcdns with --proxy-addr in front of
// fakesvc containers labelled SERVICE_PROXY_PATH, on the real engine.

const booksPath = "/api/v1/books"

// proxied is svcdns with its proxy on a loopback port (svcdns.Proxy).
type proxied struct {
	*svcdns
}

func startProxy(t *testing.T, flags ...string) *proxied {
	t.Helper()
	s := startWatching(t, "", append([]string{"--proxy-addr", "127.0.0.1:0"}, flags...)...)
	return &proxied{svcdns: s}
}

// route is the part of a GET /v1/routes element the tests read.
type route struct {
	Host      string `json:"host"`
	Path      string `json:"path"`
	Service   string `json:"service"`
	Conflict  string `json:"conflict"`
	Instances []struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	} `json:"instances"`
}

func (p *proxied) routes(t testing.TB) []route {
	t.Helper()
	code, body, _ := p.do(t, http.MethodGet, "/v1/routes", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/routes: %d %s", code, body)
	}
	var rs []route
	if err := json.Unmarshal(body, &rs); err != nil {
		t.Fatalf("GET /v1/routes: %v: %s", err, body)
	}
	return rs
}

// waitRoute waits until the route for any host and path has n instances.
func (p *proxied) waitRoute(t testing.TB, path string, n int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("route %s with %d instances", path, n), func() error {
		for _, r := range p.routes(t) {
			if r.Host == "" && r.Path == path {
				if len(r.Instances) != n {
					return fmt.Errorf("%d instances: %+v", len(r.Instances), r)
				}
				return nil
			}
		}
		return fmt.Errorf("no route %s", path)
	})
}

// answer is one request through the proxy: its status, and who answered.
type answer struct {
	sent     time.Duration // since the load began
	at       time.Duration // answered, since the load began
	code     int
	host     string // X-Fakesvc-Host
	version  string // X-Fakesvc-Version
	stopping bool   // X-Fakesvc-Stopping: the instance had its stop signal
	err      error
}

func (a answer) ok() bool { return a.err == nil && a.code == http.StatusOK }

// get sends one GET through the proxy.
func (p *proxied) get(c *http.Client, host, path string) answer {
	return p.send(c, http.MethodGet, host, path)
}

// send sends one request through the proxy, a POST with a small body.
func (p *proxied) send(c *http.Client, method, host, path string) answer {
	var reqBody io.Reader
	if method == http.MethodPost {
		reqBody = strings.NewReader(`{"title":"a book"}`)
	}
	req, err := http.NewRequest(method, "http://"+p.Proxy+path, reqBody)
	if err != nil {
		return answer{err: err}
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, host: resp.Header.Get("X-Fakesvc-Host"), version: resp.Header.Get("X-Fakesvc-Version"),
		stopping: resp.Header.Get("X-Fakesvc-Stopping") == "1", err: err}
	if a.code != http.StatusOK && a.err == nil {
		a.err = fmt.Errorf("%d %s", a.code, strings.TrimSpace(string(body)))
	}
	return a
}

// load is a bounded loop of requests through the proxy: workers in parallel,
// until stopped, or max requests, or maxTime.
type load struct {
	began   time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sent    atomic.Int64
	mu      sync.Mutex
	answers []answer
}

func startLoad(p *proxied, path string, workers int, max int64, maxTime time.Duration) *load {
	return startLoadOf(p, http.MethodGet, path, workers, max, maxTime)
}

// startLoadOf is startLoad with requests of method.
func startLoadOf(p *proxied, method, path string, workers int, max int64, maxTime time.Duration) *load {
	ctx, cancel := context.WithTimeout(context.Background(), maxTime)
	l := &load{began: time.Now(), cancel: cancel}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil && l.sent.Add(1) <= max {
				sent := time.Since(l.began)
				a := p.send(client, method, "", path)
				a.sent, a.at = sent, time.Since(l.began)
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// count returns the answers so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.answers)
}

// stop ends the loop and returns every answer.
func (l *load) stop() []answer {
	l.cancel()
	l.wg.Wait()
	return l.answers
}

// waitMore waits until the loop has n more answers than now.
func (l *load) waitMore(t testing.TB, n int) {
	t.Helper()
	want := l.count() + n
	eventually(t, 20*time.Second, fmt.Sprintf("%d more answers under load", n), func() error {
		if got := l.count(); got < want {
			return fmt.Errorf("%d answers, want %d", got, want)
		}
		return nil
	})
}

func failures(as []answer) []answer {
	var out []answer
	for _, a := range as {
		if !a.ok() {
			out = append(out, a)
		}
	}
	return out
}

// wantNoFailures fails the test when any of sent requests failed, showing
// the first few, then each distinct error with its count and the window it
// came in: a few failures in flight and a route with no instance for
// seconds (503s by the thousand) call for different causes.
func wantNoFailures(t testing.TB, failed []answer, sent int, during string) {
	t.Helper()
	for i, a := range failed {
		if i == 5 {
			break
		}
		t.Errorf("failed at %v: %v", a.at.Round(time.Millisecond), a.err)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed during %s, want 0; by error:\n%s", len(failed), sent, during, failureGroups(failed))
	}
}

// failureGroups lists the distinct errors of failed, in the order they
// first came, each with its count and when the first and last came.
func failureGroups(failed []answer) string {
	type group struct {
		n           int
		first, last time.Duration
	}
	var order []string
	groups := map[string]*group{}
	for _, a := range failed {
		msg := a.err.Error()
		g := groups[msg]
		if g == nil && len(order) >= 20 {
			msg = "(other errors)"
			g = groups[msg]
		}
		if g == nil {
			g = &group{first: a.at}
			groups[msg] = g
			order = append(order, msg)
		}
		g.n++
		g.first, g.last = min(g.first, a.at), max(g.last, a.at)
	}
	var b strings.Builder
	for _, msg := range order {
		g := groups[msg]
		fmt.Fprintf(&b, "  %d from %v to %v: %s\n", g.n, g.first.Round(time.Millisecond), g.last.Round(time.Millisecond), msg)
	}
	return b.String()
}

// healthLog is Docker's record of a container's health: its status, its
// failing streak and its last (up to 5) checks with when each began, how
// long it took, its exit code and output ("Health check exceeded
// timeout" when the exec was too slow), for a failure's message.
func healthLog(id string) string {
	out, err := dockerCmd("inspect", "--format",
		`{{.Name}} {{with .State.Health}}{{.Status}}, failing streak {{.FailingStreak}}:{{range .Log}}
    {{.Start.UTC.Format "15:04:05.000"}} took {{.End.Sub .Start}} exit {{.ExitCode}} {{printf "%q" .Output}}{{end}}{{else}}no health check{{end}}`, id)
	if err != nil {
		return fmt.Sprintf("%.12s: %v", id, err)
	}
	return out
}

// containerLines are the lines of svcdns's log about containers (added,
// updated with their passing state, draining, removed) and proxy routes:
// what a failure's window is read against. The log's tail alone may have
// rolled past them.
func containerLines(log string) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="container `) || strings.Contains(line, `msg="proxy route`) {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// waitHealthy waits until Docker reports the container healthy.
func waitHealthy(t testing.TB, id string) {
	t.Helper()
	eventually(t, 30*time.Second, "container "+id[:12]+" healthy", func() error {
		out, err := dockerCmd("inspect", "--format", "{{.State.Health.Status}}", id)
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(out); s != "healthy" {
			return fmt.Errorf("health %s", s)
		}
		return nil
	})
}

func TestHTTPProxyReachesBothInstances(t *testing.T) {
	p := startProxy(t)
	runContainer(t, "books-p1", "--label", "SERVICE_PROXY_PATH="+booksPath, imgBooks)
	runContainer(t, "books-p2", "--label", "SERVICE_PROXY_PATH="+booksPath, imgBooks)
	p.waitRoute(t, booksPath, 2)

	// A container is routed to from its start event, before its process
	// may listen: until then its requests are refused and retried on the
	// other one. None fails, and both answer within a bounded number.
	c := &http.Client{Timeout: 5 * time.Second}
	hosts := map[string]int{}
	sent := 0
	for ; sent < 400 && (len(hosts) < 2 || sent < 40); sent++ {
		a := p.get(c, "", booksPath+"/12")
		if !a.ok() {
			t.Fatalf("GET %s/12: %v", booksPath, a.err)
		}
		hosts[a.host]++
		if len(hosts) < 2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(hosts) != 2 {
		t.Errorf("%d requests reached %v, want both instances; routes %+v\n%s", sent, hosts, p.routes(t), tail(p.Log()))
	}
	// The service's own name reaches it too.
	if a := p.get(c, "books-ms.service."+testZone, "/"); !a.ok() {
		t.Errorf("Host books-ms.service.%s: %v", testZone, a.err)
	}
	t.Logf("%d requests through the proxy, none failed: %v", sent, hosts)
}

// Blue-green: v2 starts beside v1, Docker reports it healthy, v1 is
// stopped; a load loop through the proxy sees no failure.
func TestHTTPProxyBlueGreen(t *testing.T) {
	p := startProxy(t)
	// Docker runs each health check as an exec, through a daemon that a
	// loaded machine slows down. The image's check (--timeout=2s
	// --retries=1) makes a container unhealthy after one slow exec: while
	// another workload loaded the engine, it flipped a serving fakesvc to
	// unhealthy 6 times in 65 s, for 2 to 5 s each. svcdns rightly takes
	// such a container out of its routes, and both instances of a version
	// flipped at once leave the route with none, answering 503 until a
	// check passes again, which says nothing about the move. Here a
	// container is unhealthy only after 3 failed checks in a row, each
	// given 10 s; it is still healthy at its first passing check.
	args := []string{"--label", "SERVICE_NAME=books-ms", "--label", "SERVICE_PROXY_PATH=" + booksPath,
		"--health-timeout", "10s", "--health-retries", "3"}
	var blue []string
	for i := range 2 {
		id := runContainer(t, fmt.Sprintf("bg-blue-%d", i), append(args, "-e", "FAKESVC_VERSION=1", imgHealth, "-healthy")...)
		waitHealthy(t, id)
		blue = append(blue, id)
	}
	p.waitRoute(t, booksPath, 2)

	l := startLoad(p, booksPath, 4, 100_000, 45*time.Second)
	l.waitMore(t, 200)
	var green []string
	for i := range 2 {
		green = append(green, runContainer(t, fmt.Sprintf("bg-green-%d", i), append(args, "-e", "FAKESVC_VERSION=2", imgHealth, "-healthy")...))
	}
	for _, id := range green {
		waitHealthy(t, id)
	}
	healthy := time.Since(l.began)
	p.waitRoute(t, booksPath, 4)
	routed := time.Since(l.began)
	mustDocker(t, append([]string{"stop"}, blue...)...)
	stopped := time.Since(l.began)
	p.waitRoute(t, booksPath, 2)
	l.waitMore(t, 500)
	as := l.stop()

	var lastBlue, firstGreen time.Duration = -1, -1
	for _, a := range as {
		switch {
		case a.version == "1" && a.at > lastBlue:
			lastBlue = a.at
		case a.version == "2" && (firstGreen < 0 || a.at < firstGreen):
			firstGreen = a.at
		}
	}
	failed := failures(as)
	t.Logf("blue-green: %d requests sent, %d failed; green healthy in Docker at %v, routed at %v, blue stopped at %v; first green answer at %v, last blue answer at %v",
		len(as), len(failed), healthy.Round(time.Millisecond), routed.Round(time.Millisecond), stopped.Round(time.Millisecond),
		firstGreen.Round(time.Millisecond), lastBlue.Round(time.Millisecond))
	wantNoFailures(t, failed, len(as), "the blue-green move")
	if firstGreen < 0 || lastBlue < 0 || lastBlue > stopped {
		t.Errorf("traffic did not move as it should: first green %v, last blue %v, blue stopped at %v", firstGreen, lastBlue, stopped)
	}
	if t.Failed() {
		t.Logf("the load began at %s UTC; Docker's health checks:", l.began.UTC().Format("15:04:05.000"))
		for _, id := range slices.Concat(blue, green) {
			t.Log(healthLog(id))
		}
		t.Logf("svcdns's lines about containers and routes:\n%s", containerLines(p.Log()))
		t.Logf("svcdns log:\n%s", tail(p.Log()))
	}
}

// docker kill of one instance under load: at most the requests in flight
// to it fail (the workers bound them), and retries usually save those.
func TestHTTPProxyKill(t *testing.T) {
	const workers = 4
	p := startProxy(t)
	labels := []string{"--label", "SERVICE_PROXY_PATH=" + booksPath, imgBooks}
	victim := runContainer(t, "kill-1", labels...)
	runContainer(t, "kill-2", labels...)
	p.waitRoute(t, booksPath, 2)

	l := startLoad(p, booksPath, workers, 100_000, 30*time.Second)
	l.waitMore(t, 200)
	killedAt := time.Since(l.began)
	mustDocker(t, "kill", victim)
	p.waitRoute(t, booksPath, 1)
	l.waitMore(t, 500)
	as := l.stop()
	failed := failures(as)
	t.Logf("docker kill under load: %d requests sent, %d failed (at most %d could be in flight to the killed instance); killed at %v",
		len(as), len(failed), workers, killedAt.Round(time.Millisecond))
	for _, a := range failed {
		t.Logf("failed at %v: %v", a.at.Round(time.Millisecond), a.err)
	}
	if len(failed) > workers {
		t.Errorf("%d requests failed, more than the %d that could be in flight to the killed instance", len(failed), workers)
	}
}

// No passing instance: 503 naming the service. Two services claiming one
// path: a WARN line naming both, a 503, and /v1/routes shows it.
func TestHTTPProxyNoInstanceAndConflict(t *testing.T) {
	p := startProxy(t)
	c := &http.Client{Timeout: 5 * time.Second}

	// Never healthy: the health file is never made.
	runContainer(t, "sick-1", "--label", "SERVICE_NAME=sick-ms", "--label", "SERVICE_PROXY_PATH=/sick", imgHealth)
	p.waitRoute(t, "/sick", 0)
	a := p.get(c, "", "/sick/1")
	if a.code != http.StatusServiceUnavailable || !strings.Contains(a.err.Error(), "sick-ms") {
		t.Errorf("no passing instance: %d %v, want 503 naming sick-ms", a.code, a.err)
	}

	runContainer(t, "claim-a", "--label", "SERVICE_NAME=shelf-a", "--label", "SERVICE_PROXY_PATH=/shelf", imgBooks)
	runContainer(t, "claim-b", "--label", "SERVICE_NAME=shelf-b", "--label", "SERVICE_PROXY_PATH=/shelf", imgBooks)
	eventually(t, 20*time.Second, "the conflict in /v1/routes", func() error {
		for _, r := range p.routes(t) {
			if r.Path == "/shelf" && r.Conflict != "" && r.Service == "shelf-a,shelf-b" && len(r.Instances) == 0 {
				return nil
			}
		}
		return fmt.Errorf("no conflict on /shelf yet")
	})
	a = p.get(c, "", "/shelf")
	if a.code != http.StatusServiceUnavailable || !strings.Contains(a.err.Error(), "shelf-a and shelf-b") {
		t.Errorf("conflict: %d %v, want 503 naming both", a.code, a.err)
	}
	var warns []string
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "proxy route conflict") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "shelf-a") || !strings.Contains(warns[0], "shelf-b") {
		t.Errorf("conflict WARN lines %q, want one naming both services", warns)
	}
	// A relative path label: a WARN, and no route.
	runContainer(t, "relative", "--label", "SERVICE_NAME=rel-ms", "--label", "SERVICE_PROXY_PATH=api/rel", imgBooks)
	eventually(t, 20*time.Second, "the WARN for a relative path", func() error {
		if !strings.Contains(p.Log(), "not an absolute path") {
			return fmt.Errorf("no WARN yet")
		}
		return nil
	})
	for _, r := range p.routes(t) {
		if strings.Contains(r.Path, "rel") {
			t.Errorf("a relative path made route %+v", r)
		}
	}
}
