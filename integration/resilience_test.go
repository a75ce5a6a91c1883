//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The Docker watcher's tests (issue 3) that put the socket proxy of
// proxy_test.go between svcdns and the daemon: the test stops it (the
// daemon "goes away", the event stream breaks) and starts it again, and
// reads what svcdns asked the daemon.

// healthz returns /healthz's status code and body.
func healthz(s *svcdns) (int, string, error) {
	code, body, err := s.get("/healthz")
	return code, strings.TrimSpace(string(body)), err
}

// ---- 5. the event stream is cut ----

// While the proxy is down containers stop, start, pause, get renamed and
// come and go; svcdns keeps answering what it knew, and once the proxy is
// back its catalog is docker ps again: nothing stale, nothing missing. Two
// cuts in a row, so a second reconnect is tested too.
func TestDockerEventStreamCut(t *testing.T) {
	requireDocker(t)
	p := newDockerProxy(t)
	p.Start(t)
	s := startWatching(t, "", "--docker-host", p.Host())
	const svc = "cut.service." + testZone

	ids := map[string]string{} // by first name
	cur := map[string]string{} // first name -> current name
	run := func(n string) {
		ids[n] = runContainer(t, n, "--label", "SERVICE_NAME=cut", imgFakesvc)
		cur[n] = n
		id := ids[n]
		t.Cleanup(func() { _, _ = dockerCmd("rm", "-f", "-v", id) }) // by id: it may be renamed
	}
	// answering makes the check that exactly the containers ups (first
	// names) answer the service, and that each of them answers its current
	// .container. name while gone (first names and old names) are NXDOMAIN.
	answering := func(ups, gone []string) func() error {
		var running []string
		for _, n := range ups {
			running = append(running, ids[n])
		}
		ips := containerIPs(t, running...)
		var wantA, wantSRV []string
		for _, n := range ups {
			wantA = append(wantA, ips[ids[n]])
			wantSRV = append(wantSRV, srvKey(cname(cur[n]), 8080))
		}
		return func() error {
			if err := serviceIs(s.DNS, svc, wantA, wantSRV); err != nil {
				return err
			}
			for _, n := range ups {
				if err := containerIs(s.DNS, cur[n], ips[ids[n]]); err != nil {
					return err
				}
			}
			for _, n := range gone {
				if err := containerIs(s.DNS, n, ""); err != nil {
					return err
				}
			}
			return nil
		}
	}

	for _, n := range []string{"cut-keep", "cut-stop", "cut-rm", "cut-pause", "cut-ren"} {
		run(n)
	}
	eventually(t, 10*time.Second, "before the cut", answering([]string{"cut-keep", "cut-stop", "cut-rm", "cut-pause", "cut-ren"}, nil))

	rounds := []struct {
		name   string
		during func()   // docker commands while svcdns cannot see the daemon
		ups    []string // the containers answering the service afterwards
		gone   []string // names that are NXDOMAIN afterwards
	}{
		{
			name: "stop, rm, pause, rename, start, start and rm",
			during: func() {
				mustDocker(t, "stop", namePrefix+"cut-stop")
				mustDocker(t, "rm", "-f", namePrefix+"cut-rm")
				mustDocker(t, "pause", namePrefix+"cut-pause")
				mustDocker(t, "rename", namePrefix+"cut-ren", namePrefix+"cut-ren2")
				cur["cut-ren"] = "cut-ren2"
				run("cut-new1")
				run("cut-flash")
				mustDocker(t, "rm", "-f", namePrefix+"cut-flash")
			},
			ups:  []string{"cut-keep", "cut-ren", "cut-new1"},
			gone: []string{"cut-stop", "cut-rm", "cut-flash", "cut-ren"},
		},
		{
			name: "unpause, start again, rm, start",
			during: func() {
				mustDocker(t, "unpause", namePrefix+"cut-pause")
				mustDocker(t, "start", namePrefix+"cut-stop")
				mustDocker(t, "rm", "-f", namePrefix+"cut-new1")
				run("cut-new2")
			},
			ups:  []string{"cut-keep", "cut-ren", "cut-pause", "cut-stop", "cut-new2"},
			gone: []string{"cut-new1", "cut-rm", "cut-flash", "cut-ren"},
		},
	}
	for i, r := range rounds {
		t.Logf("cut %d: %s", i+1, r.name)
		keepIP := containerIP(t, ids["cut-keep"], "")
		p.Stop()
		if n := p.Conns(); n != 0 {
			t.Fatalf("proxy stopped with %d connections open", n)
		}
		cut := time.Now()
		r.during()
		// svcdns keeps serving what it knew, and knows it is cut off.
		if err := containerIs(s.DNS, cur["cut-keep"], keepIP); err != nil {
			t.Errorf("cut %d: a container known before the cut: %v", i+1, err)
		}
		if err := rcodeIs(s.DNS, "nope.service."+testZone, dns.TypeA, dns.RcodeNameError); err != nil {
			t.Errorf("cut %d: after a first sync, unknown names stay NXDOMAIN: %v", i+1, err)
		}
		eventually(t, 10*time.Second, "/healthz says Docker is not connected", func() error {
			code, body, err := healthz(s)
			if err != nil {
				return err
			}
			if code != http.StatusOK || !strings.Contains(body, "degraded") {
				return fmt.Errorf("/healthz: %d %s, want 200 and status degraded", code, body)
			}
			return nil
		})
		if d := time.Since(cut); d < time.Second {
			time.Sleep(time.Second - d)
		}
		p.Start(t)
		back := time.Now()
		eventually(t, 30*time.Second, fmt.Sprintf("cut %d: catalog = docker ps after the reconnect", i+1),
			func() error { return catalogMatchesDockerPS(s, true) })
		t.Logf("cut %d of %v: catalog equal to docker ps %v after the proxy came back", i+1,
			back.Sub(cut).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
		eventually(t, 5*time.Second, fmt.Sprintf("cut %d: answers after the reconnect", i+1), answering(r.ups, r.gone))
		code, body, err := healthz(s)
		if err != nil || code != http.StatusOK {
			t.Errorf("cut %d: /healthz after the reconnect: %d %s %v", i+1, code, body, err)
		}
	}
}

// ---- 6. no Docker at start ----

// svcdns started while the Docker socket is unreachable serves API
// instances; names of the zone it cannot know yet get SERVFAIL, not
// NXDOMAIN; /healthz is 503. Once the socket is there, containers are
// picked up and unknown names become NXDOMAIN.
func TestDockerUnreachableAtStart(t *testing.T) {
	requireDocker(t)
	p := newDockerProxy(t) // not started: the socket does not exist
	s := startSvcdns(t, "", "--docker-filter", testFilter, "--docker-host", p.Host())

	s.register(t, "api-1", apiInstance{Service: "api-svc", Address: "10.3.0.1", Port: 8000})
	apiAnswers := func() error {
		return serviceIs(s.DNS, "api-svc.service."+testZone, []string{"10.3.0.1"}, []string{srvKey("api-1.container."+testZone+".", 8000)})
	}
	if err := apiAnswers(); err != nil {
		t.Errorf("API instance before any Docker sync: %v", err)
	}
	unknown := []struct {
		name  string
		qtype uint16
	}{
		{"nope.service." + testZone, dns.TypeA},
		{"nope.service." + testZone, dns.TypeSRV},
		{"_nope._tcp.service." + testZone, dns.TypeSRV},
		{namePrefix + "early.container." + testZone, dns.TypeA},
	}
	notSynced := func() error {
		for _, q := range unknown {
			if err := rcodeIs(s.DNS, q.name, q.qtype, dns.RcodeServerFailure); err != nil {
				return err
			}
		}
		code, body, err := healthz(s)
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("/healthz: %d %s, want 503 before the first Docker sync", code, body)
		}
		return nil
	}
	if err := notSynced(); err != nil {
		t.Error(err)
	}

	// A container that starts while svcdns cannot reach Docker.
	id := runContainer(t, "early", imgBooks)
	ip := containerIP(t, id, "")
	never(t, time.Second, "no Docker yet: unknown names SERVFAIL, /healthz 503", notSynced)
	_, body, _ := healthz(s)
	t.Logf("/healthz without Docker: %s", body)

	p.Start(t)
	began := time.Now()
	eventually(t, 30*time.Second, "the container started before Docker was reachable is answered", func() error {
		return containerIs(s.DNS, "early", ip)
	})
	t.Logf("container answered %v after the Docker socket became reachable", time.Since(began).Round(time.Millisecond))
	eventually(t, 5*time.Second, "synced", func() error {
		if err := rcodeIs(s.DNS, "nope.service."+testZone, dns.TypeA, dns.RcodeNameError); err != nil {
			return err
		}
		if err := rcodeIs(s.DNS, "_nope._tcp.service."+testZone, dns.TypeSRV, dns.RcodeNameError); err != nil {
			return err
		}
		if err := serviceIs(s.DNS, "books-ms.service."+testZone, []string{ip}, []string{srvKey(cname("early"), 8080)}); err != nil {
			return err
		}
		code, body, err := healthz(s)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/healthz: %d %s, want 200 once synced", code, body)
		}
		return nil
	})
	if err := apiAnswers(); err != nil {
		t.Errorf("API instance after the Docker sync: %v", err)
	}
	if err := catalogMatchesDockerPS(s, true); err != nil {
		t.Error(err)
	}
}

// ---- 9. read-only ----

// What svcdns asks the Docker daemon, recorded by the proxy through a
// container's whole life, a stream cut and periodic resyncs: GET requests
// to /_ping, /version, /containers/json, /containers/{id}/json and
// /events only (with or without the /v1.xx API version prefix). HEAD
// /_ping is allowed too: the Docker client library pings with HEAD before
// falling back to GET, and HEAD is read-only (read-only socket proxies
// such as docker-socket-proxy let it through).
func TestDockerReadOnlyAPI(t *testing.T) {
	requireDocker(t)
	p := newDockerProxy(t)
	p.Start(t)
	s := startWatching(t, "", "--docker-host", p.Host(), "--resync", "1s")
	netRO := createNetwork(t, "ro")

	const svc = "ro.service." + testZone
	id := runContainer(t, "ro-1", "--label", "SERVICE_NAME=ro", imgHealth, "-healthy")
	t.Cleanup(func() { _, _ = dockerCmd("rm", "-f", "-v", id) }) // by id: it is renamed
	answered := func() error {
		if a, _, _, err := lookup(s.DNS, svc); err != nil || len(a) == 0 {
			return fmt.Errorf("%s: A %v %v", svc, a, err)
		}
		return nil
	}
	goneNow := func() error { return serviceIs(s.DNS, svc, nil, nil) }
	eventually(t, 10*time.Second, "ro-1 answered", answered)

	steps := []struct {
		cmd  []string
		then func() error
	}{
		{[]string{"pause", id}, goneNow},
		{[]string{"unpause", id}, answered},
		{[]string{"network", "connect", netRO, id}, answered},
		{[]string{"network", "disconnect", netRO, id}, answered},
		{[]string{"rename", id, namePrefix + "ro-1b"}, func() error { return containerIs(s.DNS, "ro-1b", containerIP(t, id, "")) }},
		{[]string{"exec", id, "/healthcheck", "fail"}, goneNow},
		{[]string{"exec", id, "/healthcheck", "pass"}, answered},
		{[]string{"stop", id}, goneNow},
		{[]string{"start", id}, answered},
	}
	for _, st := range steps {
		mustDocker(t, st.cmd...)
		eventually(t, 10*time.Second, "after docker "+strings.Join(st.cmd, " "), st.then)
	}
	p.Stop()
	p.Start(t)
	time.Sleep(2500 * time.Millisecond) // two periodic resyncs at least
	mustDocker(t, "rm", "-f", id)
	eventually(t, 20*time.Second, "catalog = docker ps", func() error { return catalogMatchesDockerPS(s, true) })
	eventually(t, 10*time.Second, "ro-1 gone", goneNow)

	reqs := p.Requests()
	allowed := regexp.MustCompile(`^(GET|HEAD) (/v1\.[0-9]+)?/(_ping|version|events|networks|containers/json|containers/[^/?]+/json)(\?.*)?$`)
	counts := map[string]int{}
	var bad []string
	for _, r := range reqs {
		m := allowed.FindStringSubmatch(r)
		if m == nil || m[1] == "HEAD" && m[3] != "_ping" {
			bad = append(bad, r)
			continue
		}
		what := m[3]
		if strings.HasPrefix(what, "containers/") && what != "containers/json" {
			what = "containers/{id}/json"
		}
		counts[m[1]+" /"+what]++
	}
	t.Logf("svcdns sent %d requests to the Docker socket: %v", len(reqs), counts)
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Errorf("requests other than GET /_ping, /version, /containers/json, /containers/{id}/json, /events, /networks:\n%s", strings.Join(slices.Compact(bad), "\n"))
	}
	// The recording saw the traffic it must: a stream per connection, the
	// periodic lists, and inspects.
	if counts["GET /events"] < 2 || counts["GET /containers/json"] < 3 || counts["GET /containers/{id}/json"] == 0 {
		t.Errorf("expected at least 2 GET /events, 3 GET /containers/json and some inspects, got %v", counts)
	}
}
