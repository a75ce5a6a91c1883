//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The watcher against a Docker endpoint that refuses or fails some
// requests (issue 14): a socket proxy with a small listen backlog, one that
// drops every third connection, one that answers inspects with HTTP 500.
// svcdns must lose nothing it knows and converge once the endpoint
// behaves.

// convergeBound is what these tests allow for the catalog and the answers
// to equal docker ps after the last change; the README's target is 10 s,
// and the measured times are logged.
const convergeBound = 30 * time.Second

// dockerHealth is /healthz's "docker" object, the fields these tests read.
type dockerHealth struct {
	Connected          bool             `json:"connected"`
	InspectFailures    map[string]int64 `json:"inspect_failures"`
	RetriesPending     int              `json:"retries_pending"`
	InspectConcurrency int              `json:"inspect_concurrency"`
}

func dockerHealthOf(t testing.TB, s *svcdns) dockerHealth {
	t.Helper()
	_, body, err := s.get("/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Docker *dockerHealth `json:"docker"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Docker == nil {
		t.Fatalf("/healthz %s: %v", body, err)
	}
	return *h.Docker
}

// startSocat runs `socat UNIX-LISTEN:<sock>,fork,backlog=5
// UNIX-CONNECT:/var/run/docker.sock`, the socket proxy a user puts in front
// of the daemon, and returns its socket; it is stopped at cleanup.
func startSocat(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("socat not installed (scripts/deps.sh installs it)")
		}
		t.Skip("socat not installed")
	}
	dir, err := os.MkdirTemp("", namePrefix+"socat-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command(bin, "UNIX-LISTEN:"+sock+",fork,backlog=5", "UNIX-CONNECT:/var/run/docker.sock")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its forked children die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	})
	eventually(t, 5*time.Second, "socat listening", func() error { _, err := os.Stat(sock); return err })
	return sock
}

// fleet is containers named svcdns-test-<prefix>-NNN answering service
// <prefix>, started and removed in parallel batches.
type fleet struct {
	t      *testing.T
	prefix string
	ids    []string
	names  []string
	up     map[int]bool
}

func newFleet(t *testing.T, prefix string) *fleet {
	f := &fleet{t: t, prefix: prefix, up: map[int]bool{}}
	t.Cleanup(func() {
		if ids := dockerLines("ps", "-aq", "--filter", "name="+namePrefix+prefix+"-"); len(ids) > 0 {
			_, _ = dockerCmd(append([]string{"rm", "-f", "-v"}, ids...)...)
		}
	})
	return f
}

func (f *fleet) service() string { return f.prefix + ".service." + testZone }

// parallel runs fn(i) for i in is, batch at a time (a new one starts as
// soon as one ends, so the daemon is never waiting on the slowest of a
// batch), and fails the test on the first error.
func (f *fleet) parallel(is []int, batch int, fn func(i int) error) {
	f.t.Helper()
	sem := make(chan struct{}, batch)
	errs := make(chan error, len(is))
	var wg sync.WaitGroup
	for _, i := range is {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- fn(i)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// start starts n more containers, batch at a time.
func (f *fleet) start(n, batch int) {
	f.t.Helper()
	first := len(f.ids)
	var is []int
	for i := first; i < first+n; i++ {
		f.names = append(f.names, fmt.Sprintf("%s-%03d", f.prefix, i))
		f.ids = append(f.ids, "")
		is = append(is, i)
	}
	f.parallel(is, batch, func(i int) error {
		// No log driver: the daemon's work per container is what the
		// test waits for, and fakesvc's log is not read.
		id, err := dockerCmd("run", "-d", "--log-driver", "none", "--name", namePrefix+f.names[i], "--label", testLabel,
			"--label", "SERVICE_NAME="+f.prefix, imgFakesvc)
		f.ids[i] = id
		return err
	})
	for _, i := range is {
		f.up[i] = true
	}
}

// remove removes the containers is with one docker rm per batch (the CLI
// removes its arguments in parallel), the batches side by side.
func (f *fleet) remove(is []int, batch int) {
	f.t.Helper()
	var chunks [][]int
	var ks []int
	for from := 0; from < len(is); from += batch {
		ks = append(ks, len(chunks))
		chunks = append(chunks, is[from:min(from+batch, len(is))])
	}
	f.parallel(ks, len(chunks), func(k int) error {
		args := []string{"rm", "-f", "-v"}
		for _, i := range chunks[k] {
			args = append(args, f.ids[i])
		}
		_, err := dockerCmd(args...)
		return err
	})
	for _, i := range is {
		delete(f.up, i)
	}
}

// running returns the ids and names of the containers up.
func (f *fleet) running() (ids, names []string) {
	for i := range f.ids {
		if f.up[i] {
			ids, names = append(ids, f.ids[i]), append(names, f.names[i])
		}
	}
	return ids, names
}

// converged waits until svcdns's catalog is docker ps and the service
// answers exactly the running containers (A and SRV), and returns how long
// after since (the last change: the last docker command returned, or the
// proxy began to behave) that was; the test's own docker inspect and
// polling count in it.
func (f *fleet) converged(s *svcdns, what string, since time.Time) time.Duration {
	f.t.Helper()
	ids, names := f.running()
	var wantA, wantSRV []string
	if len(ids) > 0 {
		ips := containerIPs(f.t, ids...)
		for k, id := range ids {
			wantA = append(wantA, ips[id])
			wantSRV = append(wantSRV, srvKey(cname(names[k]), 8080))
		}
	}
	eventually(f.t, convergeBound-time.Since(since), what+": catalog = docker ps", func() error { return catalogMatchesDockerPS(s, true) })
	eventually(f.t, convergeBound-time.Since(since), what+": answers", func() error { return serviceIs(s.DNS, f.service(), wantA, wantSRV) })
	return time.Since(since)
}

// knownKept returns a check that every container in ids still running is
// in svcdns's catalog: what svcdns knows is never lost to a failing
// endpoint.
func knownKept(s *svcdns, ids []string) func() error {
	return func() error {
		running, err := runningContainers(true)
		if err != nil {
			return err
		}
		got, err := s.catalogContainers()
		if err != nil {
			return err
		}
		var lost []string
		for _, id := range ids {
			if running[id] && !got[id] {
				lost = append(lost, id[:12])
			}
		}
		if len(lost) > 0 {
			return fmt.Errorf("running containers svcdns knew are gone from its catalog: %v", lost)
		}
		return nil
	}
}

// TestDockerSocketBacklog: svcdns reads Docker through socat with a listen
// backlog of 5 while 200 containers start in batches of 25, then 100 are
// removed; each time the answers equal docker ps (within convergeBound of
// the last docker command; the time is logged), /healthz ends connected
// with no retry pending, the event stream never dropped, the metrics
// agree with /healthz, and each failing line has its recovered line.
func TestDockerSocketBacklog(t *testing.T) {
	requireDocker(t)
	sock := startSocat(t)
	s := startWatching(t, "", "--docker-host", "unix://"+sock)
	f := newFleet(t, "backlog")

	began := time.Now()
	f.start(200, 25)
	docker := time.Since(began)
	d := f.converged(s, "200 started, 25 at a time", began.Add(docker))
	t.Logf("200 started, 25 at a time, in %v; answers equal docker ps %v after the last docker run returned",
		docker.Round(time.Millisecond), d.Round(time.Millisecond))

	is := make([]int, 100)
	for i := range is {
		is[i] = 2 * i // every other one
	}
	began = time.Now()
	f.remove(is, 25)
	docker = time.Since(began)
	d = f.converged(s, "100 removed", began.Add(docker))
	t.Logf("100 removed, 4 docker rm of 25 side by side, in %v; answers equal docker ps %v after the last docker rm returned",
		docker.Round(time.Millisecond), d.Round(time.Millisecond))

	// A container removed while its inspect waited for a retry leaves the
	// answers at its die event; its retry is still to run (at most 5 s).
	h := settledHealth(t, s)
	failing, _ := endpointStory(t, s)
	t.Logf("/healthz: inspect failures %v, inspect concurrency %d; %d failing periods logged",
		h.InspectFailures, h.InspectConcurrency, failing)
	// A refused inspect is its container's problem: the event stream
	// stayed up the whole time.
	if n, err := metricSum(s, "svcdns_watcher_reconnects_total"); err != nil || n != 0 {
		t.Errorf("svcdns_watcher_reconnects_total = %v (%v), want 0: the event stream dropped", n, err)
	}
	metricsAgree(t, s)
}

// metricsAgree waits until svcdns's watcher metrics say what /healthz
// says (read between two equal /healthz reads: a periodic sync may be
// failing inspects meanwhile).
func metricsAgree(t *testing.T, s *svcdns) {
	t.Helper()
	summary := func(h dockerHealth) [3]float64 {
		var failures int64
		for _, n := range h.InspectFailures {
			failures += n
		}
		return [3]float64{float64(failures), float64(h.RetriesPending), float64(h.InspectConcurrency)}
	}
	eventually(t, convergeBound, "the metrics agree with /healthz", func() error {
		before := summary(dockerHealthOf(t, s))
		var got [3]float64
		for i, name := range []string{"svcdns_watcher_inspect_errors_total", "svcdns_watcher_inspect_retries_pending",
			"svcdns_watcher_inspect_concurrency"} {
			v, err := metricSum(s, name)
			if err != nil {
				return err
			}
			got[i] = v
		}
		if after := summary(dockerHealthOf(t, s)); after != before {
			return fmt.Errorf("/healthz moved while reading /metrics: %v, then %v", before, after)
		}
		if got != before || got[2] < 1 || got[2] > 32 {
			return fmt.Errorf("/metrics inspect errors, retries pending, concurrency %v; /healthz %v (concurrency 1 to 32)", got, before)
		}
		return nil
	})
}

// settledHealth waits until /healthz says connected with no retry
// pending, and returns its docker object.
func settledHealth(t *testing.T, s *svcdns) dockerHealth {
	t.Helper()
	var h dockerHealth
	eventually(t, convergeBound, "/healthz connected, no retry pending", func() error {
		if h = dockerHealthOf(t, s); !h.Connected || h.RetriesPending != 0 {
			return fmt.Errorf("/healthz docker %+v", h)
		}
		return nil
	})
	return h
}

// endpointStory waits until every "docker endpoint failing requests" line
// in svcdns's log is followed by its "docker endpoint recovered" line (2 s
// after the last failure, once nothing waits for a retry), and returns how
// many of each there are: one pair per failing period, not a line per
// failed request.
func endpointStory(t *testing.T, s *svcdns) (failing, recovered int) {
	t.Helper()
	eventually(t, convergeBound, "the endpoint's recovery logged", func() error {
		log := s.Log()
		failing = strings.Count(log, "docker endpoint failing requests")
		recovered = strings.Count(log, "docker endpoint recovered")
		if recovered != failing {
			return fmt.Errorf("%d failing and %d recovered lines", failing, recovered)
		}
		return nil
	})
	return failing, recovered
}

// TestDockerFlakyEndpoint: behind a proxy that drops every third new
// connection, or answers every inspect with HTTP 500, svcdns reconnects
// (the test cuts the stream), containers start and go; nothing svcdns knew
// and still runs leaves its catalog, and once the proxy behaves the
// answers equal docker ps.
func TestDockerFlakyEndpoint(t *testing.T) {
	requireDocker(t)
	tests := []struct {
		name   string
		fault  func(p *dockerProxy, on bool)
		counts string // the /healthz inspect_failures key the fault shows as
		// periods is the failing periods logged, 0 for any but none: a
		// fault that fails every inspect while containers wait for their
		// retry is one period (two log lines), however many inspects fail.
		periods int
	}{
		{name: "every third connection refused", counts: "refused", fault: func(p *dockerProxy, on bool) {
			n := 0
			if on {
				n = 3
			}
			p.RefuseEvery(n)
		}},
		{name: "inspects answer 500", counts: "server_error", periods: 1, fault: func(p *dockerProxy, on bool) { p.FailInspects(on) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newDockerProxy(t)
			p.Start(t)
			s := startWatching(t, "", "--docker-host", p.Host())
			f := newFleet(t, "flaky")
			f.start(20, 10)
			f.converged(s, "before the fault", time.Now())
			known, _ := f.running()

			tc.fault(p, true)
			// A reconnect: its full sync runs against the failing proxy.
			p.Stop()
			p.Start(t)
			f.start(10, 10)
			f.remove([]int{0, 1, 2, 3, 4}, 5)
			never(t, 3*time.Second, "while the proxy fails", knownKept(s, known))
			refused, failed := p.Faults()
			h := dockerHealthOf(t, s)
			t.Logf("the proxy refused %d connections and failed %d inspects; /healthz docker %+v", refused, failed, h)
			if refused+failed == 0 {
				t.Fatal("the proxy did not fail anything: the test tests nothing")
			}

			tc.fault(p, false)
			began := time.Now()
			d := f.converged(s, "once the proxy behaves", began)
			// Containers kept through the failures may still wait for
			// their retry (at most 5 s): done means nothing pending.
			h = settledHealth(t, s)
			metricsAgree(t, s)
			t.Logf("answers equal docker ps %v, every retry done %v after the proxy stopped failing",
				d.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
			if h.InspectFailures[tc.counts] == 0 {
				t.Errorf("/healthz docker %+v, want %s failures counted", h, tc.counts)
			}
			failing, _ := endpointStory(t, s)
			failures := int64(0)
			for _, n := range h.InspectFailures {
				failures += n
			}
			t.Logf("%d failing periods logged (a WARN and an INFO each) for %d failed inspects", failing, failures)
			switch {
			case failing == 0:
				t.Errorf("no log line for the failing endpoint")
			case tc.periods > 0 && failing != tc.periods:
				t.Errorf("%d failing periods logged, want %d", failing, tc.periods)
			}
		})
	}
}
