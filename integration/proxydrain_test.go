//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Draining on docker stop (issue 12): Docker emits kill when it sends the
// stop signal and die only when the process has exited; svcdns takes the
// instance out of new traffic at the kill event.

// containerLog is a container's whole log, stdout and stderr.
func containerLog(id string) string {
	out, err := exec.Command("docker", "logs", id).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs: %v) %s", err, out)
	}
	return string(out)
}

// containerRunning reports whether Docker says the container runs.
func containerRunning(t testing.TB, id string) bool {
	t.Helper()
	out, err := dockerCmd("inspect", "--format", "{{.State.Running}}", id)
	return err == nil && strings.TrimSpace(out) == "true"
}

// docker stop of an instance that serves on for a while after SIGTERM (a
// careful server: it finishes what it holds, and accepts for a moment in
// case a load balancer still sends), under a load of POSTs through the
// proxy: none fails, and from the moment the proxy's route drops it (while
// it still runs) no request goes to it.
func TestHTTPProxyDrainOnStop(t *testing.T) {
	const (
		workers = 4
		grace   = 4 * time.Second // fakesvc's -stop-grace: docker stop takes this long
	)
	p := startProxy(t)
	labels := []string{"--label", "SERVICE_PROXY_PATH=" + booksPath}
	old := runContainer(t, "drain-old", slices.Concat(labels, []string{imgBooks, "-stop-grace", grace.String()})...)
	runContainer(t, "drain-new", slices.Concat(labels, []string{imgBooks})...)
	oldIP := strings.TrimSpace(mustDocker(t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", old))
	p.waitRoute(t, booksPath, 2)

	// POSTs are not retried on another instance once sent: a request that
	// reached a stopping instance's closing connection would fail.
	l := startLoadOf(p, http.MethodPost, booksPath+"/orders?delay=20ms", workers, 100_000, 60*time.Second)
	l.waitMore(t, 200)
	stopAt := time.Since(l.began)
	stopped := make(chan error, 1)
	go func() { _, err := dockerCmd("stop", old); stopped <- err }()
	p.waitRoute(t, booksPath, 1)
	routedAt := time.Since(l.began)
	stillRunning := containerRunning(t, old)
	a, err := answerA(p.DNS, "books-ms.service."+testZone)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	exitedAt := time.Since(l.began)
	l.waitMore(t, 200)
	as := l.stop()

	var toOld, afterSignal, sentAfterRoute, lastOld int
	for i, x := range as {
		if x.host != old[:12] {
			continue
		}
		toOld++
		lastOld = i
		if x.stopping {
			afterSignal++
		}
		if x.sent > routedAt {
			sentAfterRoute++
		}
	}
	failed := failures(as)
	logLine := ""
	for _, line := range strings.Split(containerLog(old), "\n") {
		if strings.Contains(line, "requests that arrived after") {
			logLine = line
		}
	}
	t.Logf("docker stop under load: %d POSTs sent, %d failed, %d answered by the stopped instance (%d of them after its SIGTERM, the last answered at %v); "+
		"stop at %v, route without it at %v (%v later, the container still running: %t), exited at %v; fakesvc: %q",
		len(as), len(failed), toOld, afterSignal, as[lastOld].at.Round(time.Millisecond),
		stopAt.Round(time.Millisecond), routedAt.Round(time.Millisecond), (routedAt - stopAt).Round(time.Millisecond), stillRunning,
		exitedAt.Round(time.Millisecond), logLine)
	wantNoFailures(t, failed, len(as), "docker stop")
	if !stillRunning {
		t.Errorf("the route dropped the instance only after it exited (%v after docker stop), not at its kill event", routedAt-stopAt)
	}
	if slices.Contains(a, oldIP) {
		t.Errorf("DNS still answers the stopping instance %s: %v", oldIP, a)
	}
	if sentAfterRoute > 0 {
		t.Errorf("%d requests sent after the route dropped the instance reached it", sentAfterRoute)
	}
	if t.Failed() {
		t.Logf("svcdns log:\n%s", tail(p.Log()))
	}
}

// A container that ignores SIGTERM (docker kill -s TERM) leaves the route
// at the kill event and comes back when its hold (--stop-timeout 1, plus
// 2 s) ends and the watcher finds it still running.
func TestHTTPProxyDrainSurvivor(t *testing.T) {
	p := startProxy(t)
	id := runContainer(t, "drain-survivor", "--label", "SERVICE_PROXY_PATH="+booksPath, "--stop-timeout", "1", imgBooks, "-ignore-term")
	p.waitRoute(t, booksPath, 1)
	// Routed from its start event: it ignores SIGTERM once it answers.
	c := &http.Client{Timeout: 5 * time.Second}
	eventually(t, 20*time.Second, "the container answers", func() error {
		if a := p.get(c, "", booksPath); !a.ok() {
			return a.err
		}
		return nil
	})
	began := time.Now()
	mustDocker(t, "kill", "-s", "TERM", id)
	p.waitRoute(t, booksPath, 0)
	if !containerRunning(t, id) {
		t.Fatalf("the container did not survive SIGTERM: %s\n%s", mustDocker(t, "inspect", "--format", "{{json .State}}", id), containerLog(id))
	}
	left := time.Since(began)
	p.waitRoute(t, booksPath, 1)
	back := time.Since(began)
	if a := p.get(c, "", booksPath); !a.ok() {
		t.Errorf("GET after it came back: %v", a.err)
	}
	if !strings.Contains(p.Log(), "container still running after its stop signal, answered again") {
		t.Errorf("no log line for the survivor:\n%s", tail(p.Log()))
	}
	t.Logf("docker kill -s TERM to a container that ignores it: out of the route after %v, back after %v (hold: stop timeout 1 s + 2 s)",
		left.Round(time.Millisecond), back.Round(time.Millisecond))
}
