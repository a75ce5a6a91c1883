//go:build integration

package integration

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The Docker watcher's tests (issue 3) that run svcdns on a loopback port
// and ask it from the host: containers of the real engine come and go, and
// svcdns's answers follow. Each test starts its own svcdns watching only
// the containers labelled svcdns-test=1, and none runs in parallel with
// another: they all see each other's containers.

// startWatching starts svcdns on dnsAddr ("" = a loopback port) following
// the test containers of the local engine, and waits for its first sync.
func startWatching(t *testing.T, dnsAddr string, flags ...string) *svcdns {
	t.Helper()
	requireDocker(t)
	s := startSvcdns(t, dnsAddr, append([]string{"--docker-filter", testFilter}, flags...)...)
	waitSynced(t, s)
	return s
}

// syncedLine is the watcher's log line for a full list of Docker applied
// on connecting: the first one is the first sync.
var syncedLine = regexp.MustCompile(`msg="docker containers synced".* reason=connect `)

// waitSynced waits for svcdns's first full sync with Docker, as its log
// line tells it (nothing to poll), then checks that /healthz says so.
func waitSynced(t testing.TB, s *svcdns) {
	t.Helper()
	s.waitLog(t, syncedLine, 20*time.Second)
	code, body, err := s.get("/healthz")
	if err != nil {
		t.Fatalf("/healthz after the first Docker sync: %v", err)
	}
	if code != http.StatusOK {
		t.Fatalf("/healthz after the first Docker sync: %d %s", code, body)
	}
}

// cname is the SRV target of a container named svcdns-test-<name>.
func cname(name string) string { return namePrefix + name + ".container." + testZone + "." }

// srvKey is one srvRecords entry: "target:port".
func srvKey(target string, port int) string { return target + ":" + strconv.Itoa(port) }

// lookup asks name's A and SRV records. An NXDOMAIN gives empty lists,
// with nx set; any rcode but NOERROR and NXDOMAIN is an error.
func lookup(server, name string) (a, srv []string, nx bool, err error) {
	ma, err := ask(server, name, dns.TypeA)
	if err != nil {
		return nil, nil, false, err
	}
	ms, err := ask(server, name, dns.TypeSRV)
	if err != nil {
		return nil, nil, false, err
	}
	for _, m := range []*dns.Msg{ma, ms} {
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			return nil, nil, false, fmt.Errorf("%s %s: rcode %s", name, dns.TypeToString[m.Question[0].Qtype], dns.RcodeToString[m.Rcode])
		}
	}
	if ma.Rcode != ms.Rcode {
		return nil, nil, false, fmt.Errorf("%s: A is %s but SRV is %s", name, dns.RcodeToString[ma.Rcode], dns.RcodeToString[ms.Rcode])
	}
	return nonNil(aRecords(ma)), nonNil(srvRecords(ms)), ma.Rcode == dns.RcodeNameError, nil
}

// serviceIs returns nil when name answers exactly wantA (A) and wantSRV
// (SRV "target:port"); both empty means NXDOMAIN.
func serviceIs(server, name string, wantA, wantSRV []string) error {
	a, srv, nx, err := lookup(server, name)
	if err != nil {
		return err
	}
	if len(wantA)+len(wantSRV) == 0 {
		if !nx {
			return fmt.Errorf("%s: A %v SRV %v, want NXDOMAIN", name, a, srv)
		}
		return nil
	}
	if err := sameSet(name+" A", a, wantA); err != nil {
		return err
	}
	return sameSet(name+" SRV", srv, wantSRV)
}

// containerIs returns nil when <name>.container.local answers exactly ip,
// or, with ip "", is NXDOMAIN.
func containerIs(server, name, ip string) error {
	qname := namePrefix + name + ".container." + testZone
	m, err := ask(server, qname, dns.TypeA)
	if err != nil {
		return err
	}
	if ip == "" {
		if m.Rcode != dns.RcodeNameError {
			return fmt.Errorf("%s: %s %v, want NXDOMAIN", qname, dns.RcodeToString[m.Rcode], aRecords(m))
		}
		return nil
	}
	if m.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("%s: %s, want A %s", qname, dns.RcodeToString[m.Rcode], ip)
	}
	return sameSet(qname+" A", aRecords(m), []string{ip})
}

// rcodeIs returns nil when name asked for qtype gets rcode.
func rcodeIs(server, name string, qtype uint16, rcode int) error {
	m, err := ask(server, name, qtype)
	if err != nil {
		return err
	}
	if m.Rcode != rcode {
		return fmt.Errorf("%s %s: %s %v, want %s", name, dns.TypeToString[qtype], dns.RcodeToString[m.Rcode],
			m.Answer, dns.RcodeToString[rcode])
	}
	return nil
}

// containerIPs returns the first IPv4 address of each container, with one
// docker inspect.
func containerIPs(t testing.TB, ids ...string) map[string]string {
	t.Helper()
	out := mustDocker(t, append([]string{"inspect", "--format",
		"{{.Id}}{{range .NetworkSettings.Networks}} {{.IPAddress}}{{end}}"}, ids...)...)
	ips := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			ips[f[0]] = f[1]
		}
	}
	for _, id := range ids {
		if ips[id] == "" {
			t.Fatalf("container %s has no address:\n%s", id, out)
		}
	}
	return ips
}

// logLineWith returns the first line of svcdns's log at level (INFO,
// WARN, …) that names the container svcdns-test-<name>, or "".
func logLineWith(s *svcdns, level, name string) string {
	full := namePrefix + name
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "level="+level) && !strings.Contains(line, `"level":"`+level+`"`) {
			continue
		}
		for i := 0; ; {
			j := strings.Index(line[i:], full)
			if j < 0 {
				break
			}
			end := i + j + len(full)
			if end == len(line) || !isNameByte(line[end]) {
				return line
			}
			i = end
		}
	}
	return ""
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// metricSum adds up the samples of a Prometheus metric in /metrics.
func metricSum(s *svcdns, name string) (float64, error) {
	code, body, err := s.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) || len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ' {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("/metrics has no %s", name)
	}
	return sum, nil
}

// ---- 1. containers come and go ----

// Three books-ms containers answer A and SRV with their addresses and port
// 8080; stop, kill, rm -f and pause take one out of the answers, restart
// and unpause bring it back, and rename moves its .container. name.
func TestDockerBooksLifecycle(t *testing.T) {
	s := startWatching(t, "")
	const svc = "books-ms.service." + testZone
	names := []string{"books-1", "books-2", "books-3"}
	ids := map[string]string{}
	ips := map[string]string{}
	up := map[string]bool{}
	cur := map[string]string{} // name -> its current name (a rename changes it)
	const delayCount = "svcdns_watcher_event_to_catalog_seconds_count"
	delays, err := metricSum(s, delayCount)
	if err != nil {
		t.Fatal(err)
	}
	target := func(n string) string { return cname(cur[n]) }
	want := func() (a, srv []string) {
		for _, n := range names {
			if up[n] {
				a = append(a, ips[n])
				srv = append(srv, srvKey(target(n), 8080))
			}
		}
		return a, srv
	}

	// shapeIs checks what can be checked before docker inspect has told
	// the addresses: the SRV records exactly, the number of A records, and
	// whether ctr's own name answers.
	shapeIs := func(ctr string, ctrUp, ctrNX bool) error {
		_, wantSRV := want()
		a, srv, _, err := lookup(s.DNS, svc)
		if err != nil {
			return err
		}
		if err := sameSet(svc+" SRV", srv, wantSRV); err != nil {
			return err
		}
		if len(a) != len(wantSRV) {
			return fmt.Errorf("%s A: %v, want %d addresses", svc, a, len(wantSRV))
		}
		m, err := ask(s.DNS, strings.TrimSuffix(target(ctr), "."), dns.TypeA)
		if err != nil {
			return err
		}
		switch {
		case ctrUp && (m.Rcode != dns.RcodeSuccess || len(aRecords(m)) != 1):
			return fmt.Errorf("%s: %s %v, want one address", target(ctr), dns.RcodeToString[m.Rcode], aRecords(m))
		case ctrNX && m.Rcode != dns.RcodeNameError:
			return fmt.Errorf("%s: %s %v, want NXDOMAIN", target(ctr), dns.RcodeToString[m.Rcode], aRecords(m))
		}
		return nil
	}
	// exact checks the answers against the addresses docker inspect gives.
	exact := func(what string) {
		t.Helper()
		wantA, wantSRV := want()
		eventually(t, 2*time.Second, what, func() error {
			if err := serviceIs(s.DNS, svc, wantA, wantSRV); err != nil {
				return err
			}
			for _, n := range names {
				if up[n] {
					if err := containerIs(s.DNS, cur[n], ips[n]); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}

	for _, n := range names {
		ids[n] = runContainer(t, n, imgBooks)
		ran := time.Now() // docker run has returned
		cur[n] = n
		up[n] = true
		poll(t, 5*time.Second, 2*time.Millisecond, n+" answered after docker run", func() error { return shapeIs(n, true, false) })
		t.Logf("%s: A and SRV answered %v after docker run returned", n, time.Since(ran).Round(100*time.Microsecond))
		ips[n] = containerIP(t, ids[n], "")
	}
	exact("three books-ms containers answered")
	// Each container's events are at least one catalog write, timed from
	// the event's arrival.
	if n, err := metricSum(s, delayCount); err != nil || n < delays+3 {
		t.Errorf("%s %v (%v), want at least %v: one per container started", delayCount, n, err, delays+3)
	}
	m, err := ask(s.DNS, svc, dns.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	g := glue(m)
	for _, n := range names {
		if got := g[target(n)]; !slices.Equal(got, []string{ips[n]}) {
			t.Errorf("SRV additional section for %s: %v, want [%s]", target(n), got, ips[n])
		}
	}

	steps := []struct {
		name    string
		cmd     string // docker subcommand, applied to ctr
		ctr     string
		up      bool
		cnameNX bool // <ctr>.container.local must be NXDOMAIN afterwards
	}{
		{"stop", "stop", "books-1", false, true},
		{"restart a stopped container", "restart", "books-1", true, false},
		{"kill", "kill", "books-2", false, true},
		{"restart a killed container", "restart", "books-2", true, false},
		{"pause", "pause", "books-3", false, false},
		{"unpause", "unpause", "books-3", true, false},
		{"restart a running container", "restart", "books-3", true, false},
		{"rm -f", "rm -f", "books-1", false, true},
	}
	for _, st := range steps {
		args := append(strings.Fields(st.cmd), namePrefix+st.ctr)
		mustDocker(t, args...)
		done := time.Now()
		up[st.ctr] = st.up
		poll(t, 5*time.Second, 2*time.Millisecond, fmt.Sprintf("after docker %s %s", st.cmd, st.ctr),
			func() error { return shapeIs(st.ctr, st.up, st.cnameNX) })
		lat := time.Since(done)
		if st.up {
			ips[st.ctr] = containerIP(t, ids[st.ctr], "") // a restart may give it a new address
		}
		exact(fmt.Sprintf("after docker %s %s", st.cmd, st.ctr))
		verb := "gone from"
		if st.up {
			verb = "back in"
		}
		t.Logf("docker %s %s: %s A/SRV %v after the command returned", st.cmd, st.ctr, verb, lat.Round(100*time.Microsecond))
	}

	// Rename: the .container. name and the SRV target follow.
	const newName = "books-2-renamed"
	t.Cleanup(func() { _, _ = dockerCmd("rm", "-f", "-v", ids["books-2"]) })
	oldTarget := target("books-2")
	mustDocker(t, "rename", namePrefix+"books-2", namePrefix+newName)
	done := time.Now()
	cur["books-2"] = newName
	poll(t, 5*time.Second, 2*time.Millisecond, "after docker rename", func() error {
		m, err := ask(s.DNS, strings.TrimSuffix(oldTarget, "."), dns.TypeA)
		if err != nil {
			return err
		}
		if m.Rcode != dns.RcodeNameError {
			return fmt.Errorf("old name %s: %s %v, want NXDOMAIN", oldTarget, dns.RcodeToString[m.Rcode], aRecords(m))
		}
		return shapeIs("books-2", true, false)
	})
	t.Logf("docker rename: new name answered, old one NXDOMAIN %v after the command returned", time.Since(done).Round(100*time.Microsecond))
	exact("after docker rename")

	eventually(t, 5*time.Second, "catalog = docker ps", func() error { return catalogMatchesDockerPS(s, true) })
}

// ---- 3. health checks ----

// A container whose check fails is never answered, one whose check starts
// passing appears, one that turns unhealthy disappears (and comes back).
func TestDockerHealth(t *testing.T) {
	s := startWatching(t, "")

	// hc-never is watched from before its docker run until the test ends:
	// not once may it be answered, not even while its check is "starting".
	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		seen    []string
		queries int
	)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			a, srv, _, err := lookup(s.DNS, "hc-never.service."+testZone)
			mu.Lock()
			queries++
			if err != nil {
				seen = append(seen, err.Error())
			} else if len(a)+len(srv) > 0 {
				seen = append(seen, fmt.Sprintf("A %v SRV %v", a, srv))
			}
			mu.Unlock()
		}
	}()
	stopWatch := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopWatch)

	never := runContainer(t, "hc-never", "--label", "SERVICE_NAME=hc-never", imgHealth)
	later := runContainer(t, "hc-later", "--label", "SERVICE_NAME=hc-later", imgHealth)
	sick := runContainer(t, "hc-sick", "--label", "SERVICE_NAME=hc-sick", imgHealth, "-healthy")
	sickRan := time.Now()
	ips := containerIPs(t, never, later, sick)
	// Each container is named svcdns-test-<its service>, its SRV target.
	answered := func(svc, ip string) func() error {
		return func() error {
			return serviceIs(s.DNS, svc+".service."+testZone, []string{ip}, []string{srvKey(cname(svc), 8080)})
		}
	}
	gone := func(svc string) func() error {
		return func() error { return serviceIs(s.DNS, svc+".service."+testZone, nil, nil) }
	}

	eventually(t, 10*time.Second, "hc-sick answered once healthy", answered("hc-sick", ips[sick]))
	t.Logf("hc-sick (healthy at start): answered %v after its docker run returned (check interval 500ms)", time.Since(sickRan).Round(time.Millisecond))

	// hc-later: its check has failed at least once; it stays unanswered
	// over several more checks, then passes and appears.
	waitHealth(t, later, "unhealthy")
	for range 30 {
		if err := gone("hc-later")(); err != nil {
			t.Fatalf("hc-later while docker reports it unhealthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustDocker(t, "exec", later, "/healthcheck", "pass")
	began := time.Now()
	eventually(t, 10*time.Second, "hc-later answered once its check passes", answered("hc-later", ips[later]))
	t.Logf("hc-later: answered %v after its check was made to pass (next check within 500ms)", time.Since(began).Round(time.Millisecond))

	// hc-sick turns unhealthy, then healthy again.
	mustDocker(t, "exec", sick, "/healthcheck", "fail")
	began = time.Now()
	eventually(t, 10*time.Second, "hc-sick gone once unhealthy", gone("hc-sick"))
	t.Logf("hc-sick: gone %v after its check was made to fail", time.Since(began).Round(time.Millisecond))
	if st := healthStatus(t, sick); st != "unhealthy" {
		t.Errorf("hc-sick is gone from answers while docker reports it %q", st)
	}
	mustDocker(t, "exec", sick, "/healthcheck", "pass")
	began = time.Now()
	eventually(t, 10*time.Second, "hc-sick back once healthy again", answered("hc-sick", ips[sick]))
	t.Logf("hc-sick: back %v after its check was made to pass again", time.Since(began).Round(time.Millisecond))

	if st := healthStatus(t, never); st != "unhealthy" {
		t.Errorf("hc-never: docker reports %q, want unhealthy (did its check run?)", st)
	}
	stopWatch()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("hc-never (check always failing) was answered, or its lookup failed, %d of %d times: %q", len(seen), queries, seen[:min(len(seen), 5)])
	}
	t.Logf("hc-never: asked %d times over the test, never answered", queries)
	if err := catalogMatchesDockerPS(s, true); err != nil {
		t.Error(err)
	}
}

func healthStatus(t testing.TB, id string) string {
	t.Helper()
	return mustDocker(t, "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", id)
}

func waitHealth(t testing.TB, id, want string) {
	t.Helper()
	poll(t, 15*time.Second, 100*time.Millisecond, "docker health "+want, func() error {
		if st := healthStatus(t, id); st != want {
			return fmt.Errorf("health %q", st)
		}
		return nil
	})
}

// ---- 4. from container to names ----

// The mapping of DESIGN.md, case by case: multi-port, Compose, SERVICE_*
// as labels and as env, ignore, and invalid names that are refused with a
// WARN line while the container's own name still answers.
func TestDockerMapping(t *testing.T) {
	s := startWatching(t, "")
	long := strings.Repeat("x", 64)
	imageBase, _, _ := strings.Cut(imgFakesvc, ":") // svcdns-test-fakesvc:latest → svcdns-test-fakesvc
	type mappingCase struct {
		name    string           // the container is svcdns-test-map-<name>
		run     []string         // docker run options, image and arguments
		srv     map[string][]int // names that answer this container, with their SRV ports; A too unless the name starts with _
		nx      []string         // names that are NXDOMAIN
		ignored bool             // SERVICE_IGNORE: no names at all, not in the catalog
		warn    bool             // a WARN line names the container
	}
	two := []string{"--expose", "9090"}
	twoArgs := []string{"-ports", "8080,9090"}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }
	cases := []mappingCase{
		{name: "image", run: []string{imgFakesvc},
			srv: map[string][]int{imageBase: {8080}}},
		{name: "multiport", run: cat(two, []string{"--label", "SERVICE_NAME=multi", imgBooks}, twoArgs),
			srv: map[string][]int{"multi": {8080, 9090}, "_8080._tcp.multi": {8080}, "_9090._tcp.multi": {9090}, "_multi._tcp": {8080, 9090}},
			nx:  []string{"_8081._tcp.multi"}},
		{name: "compose", run: []string{"--label", "com.docker.compose.service=compose-web", "--label", "com.docker.compose.project=svcdns-test", imgBooks},
			srv: map[string][]int{"compose-web": {8080}}},
		{name: "name-beats-compose", run: []string{"--label", "com.docker.compose.service=compose-lose", "--env", "SERVICE_NAME=svc-win", imgBooks},
			srv: map[string][]int{"svc-win": {8080}}, nx: []string{"compose-lose"}},
		{name: "labels", run: []string{"--label", "SERVICE_NAME=lbl-svc", "--label", "SERVICE_TAGS=v1,Blue", imgBooks},
			srv: map[string][]int{"lbl-svc": {8080}, "v1.lbl-svc": {8080}, "blue.lbl-svc": {8080}, "_lbl-svc._blue": {8080}},
			nx:  []string{"green.lbl-svc"}},
		{name: "env", run: []string{"--env", "SERVICE_NAME=Env-Svc", "--env", "SERVICE_TAGS=v2", imgBooks},
			srv: map[string][]int{"env-svc": {8080}, "v2.env-svc": {8080}}, nx: []string{"v1.env-svc"}},
		{name: "port-name-labels", run: cat(two, []string{"--label", "SERVICE_NAME=main-lbl", "--label", "SERVICE_9090_NAME=admin-lbl", imgBooks}, twoArgs),
			srv: map[string][]int{"main-lbl": {8080}, "admin-lbl": {9090}}},
		{name: "port-name-env", run: cat(two, []string{"--env", "SERVICE_NAME=main-env", "--env", "SERVICE_9090_NAME=admin-env", imgBooks}, twoArgs),
			srv: map[string][]int{"main-env": {8080}, "admin-env": {9090}}},
		{name: "ignore-label", run: []string{"--label", "SERVICE_IGNORE=true", "--label", "SERVICE_NAME=ign-lbl", "--label", ignoreLabel + "=1", imgBooks},
			nx: []string{"ign-lbl"}, ignored: true},
		{name: "ignore-env", run: []string{"--env", "SERVICE_IGNORE=1", "--env", "SERVICE_NAME=ign-env", "--label", ignoreLabel + "=1", imgBooks},
			nx: []string{"ign-env"}, ignored: true},
		{name: "ignore-port", run: cat(two, []string{"--label", "SERVICE_NAME=part", "--label", "SERVICE_9090_IGNORE=true", imgBooks}, twoArgs),
			srv: map[string][]int{"part": {8080}, "_8080._tcp.part": {8080}}, nx: []string{"_9090._tcp.part"}},
		{name: "bad-dotted", run: []string{"--label", "SERVICE_NAME=v1.books-ms", imgBooks},
			nx: []string{"v1.books-ms", "books-ms"}, warn: true},
		{name: "bad-long", run: []string{"--env", "SERVICE_NAME=" + long, imgBooks}, warn: true},
	}

	ids := map[string]string{}
	for _, tc := range cases {
		ids[tc.name] = runContainer(t, "map-"+tc.name, tc.run...)
	}
	all := make([]string, 0, len(ids))
	for _, id := range ids {
		all = append(all, id)
	}
	ips := containerIPs(t, all...)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctr := "map-" + tc.name
			ip := ips[ids[tc.name]]
			eventually(t, 10*time.Second, ctr+" answered as configured", func() error {
				for name, ports := range tc.srv {
					qname := name + ".service." + testZone
					var wantSRV []string
					for _, p := range ports {
						wantSRV = append(wantSRV, srvKey(cname(ctr), p))
					}
					ms, err := ask(s.DNS, qname, dns.TypeSRV)
					if err != nil {
						return err
					}
					if err := sameSet(qname+" SRV", srvRecords(ms), wantSRV); err != nil {
						return err
					}
					if strings.HasPrefix(name, "_") {
						continue
					}
					ma, err := ask(s.DNS, qname, dns.TypeA)
					if err != nil {
						return err
					}
					// Exactly one A record, however many ports: an RRset has no duplicates.
					if got := aRecords(ma); !slices.Equal(got, []string{ip}) {
						return fmt.Errorf("%s A: %v, want [%s]", qname, got, ip)
					}
				}
				for _, name := range tc.nx {
					for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
						if err := rcodeIs(s.DNS, name+".service."+testZone, qt, dns.RcodeNameError); err != nil {
							return err
						}
					}
				}
				if tc.ignored {
					return containerIs(s.DNS, ctr, "")
				}
				return containerIs(s.DNS, ctr, ip)
			})
			if tc.warn {
				eventually(t, 5*time.Second, "a WARN line naming "+namePrefix+ctr, func() error {
					if line := logLineWith(s, "WARN", ctr); line == "" {
						return errors.New("no such line in svcdns's log")
					}
					return nil
				})
				t.Logf("svcdns: %s", logLineWith(s, "WARN", ctr))
			} else if line := logLineWith(s, "WARN", ctr); line != "" {
				t.Errorf("WARN line for a container with valid names: %s", line)
			}
		})
	}
	// The ignored containers carry svcdns-test-ignored: docker ps without
	// them must equal the catalog.
	if err := catalogMatchesDockerPS(s, true); err != nil {
		t.Error(err)
	}
	if n, err := metricSum(s, "svcdns_watcher_rejected_names_total"); err != nil || n < 2 {
		t.Errorf("svcdns_watcher_rejected_names_total = %v (%v), want at least 2 (two containers with invalid names)", n, err)
	}
}

// ---- 7. a burst ----

// 50 containers started concurrently, then 25 replaced while 25 more
// start, then all removed: at each quiet point the catalog is docker ps and
// the service answers every running instance.
func TestDockerBurst(t *testing.T) {
	s := startWatching(t, "")
	const (
		n        = 50
		parallel = 10
		svc      = "burst.service." + testZone
	)
	t.Cleanup(func() {
		if ids := dockerLines("ps", "-aq", "--filter", "name="+namePrefix+"burst-"); len(ids) > 0 {
			_, _ = dockerCmd(append([]string{"rm", "-f", "-v"}, ids...)...)
		}
	})
	// each runs fn(i) for i in [from, to), parallel at a time, and returns
	// the first error.
	each := func(from, to int, fn func(i int) error) error {
		sem := make(chan struct{}, parallel)
		errs := make(chan error, to-from)
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs <- fn(i)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
	ids := make([]string, 2*n)
	start := func(i int) error {
		id, err := dockerCmd("run", "-d", "--name", fmt.Sprintf("%sburst-%03d", namePrefix, i), "--label", testLabel,
			"--label", "SERVICE_NAME=burst", imgFakesvc)
		ids[i] = id
		return err
	}
	remove := func(i int) error {
		_, err := dockerCmd("rm", "-f", "-v", ids[i])
		return err
	}
	// quiet checks a quiet point: the catalog is docker ps, and the service
	// answers the running containers in [from, to).
	quiet := func(what string, began time.Time, from, to int) {
		t.Helper()
		var running []string
		for i := from; i < to; i++ {
			running = append(running, ids[i])
		}
		var wantA, wantSRV []string
		if len(running) > 0 {
			ips := containerIPs(t, running...)
			for i := from; i < to; i++ {
				wantA = append(wantA, ips[ids[i]])
				wantSRV = append(wantSRV, srvKey(cname(fmt.Sprintf("burst-%03d", i)), 8080))
			}
		}
		docker := time.Since(began)
		eventually(t, 30*time.Second, what+": catalog = docker ps", func() error { return catalogMatchesDockerPS(s, true) })
		eventually(t, 10*time.Second, what+": answers", func() error { return serviceIs(s.DNS, svc, wantA, wantSRV) })
		t.Logf("%s: docker took %v; catalog equal to docker ps and %d instances answered %v after the last docker command returned",
			what, docker.Round(time.Millisecond), len(wantA), (time.Since(began) - docker).Round(time.Millisecond))
	}

	began := time.Now()
	if err := each(0, n, start); err != nil {
		t.Fatal(err)
	}
	quiet(fmt.Sprintf("%d started, %d at a time", n, parallel), began, 0, n)

	began = time.Now()
	if err := each(0, n, func(i int) error {
		if i%2 == 0 {
			return remove(i / 2) // 0..24 go
		}
		return start(n + i/2) // 50..74 come
	}); err != nil {
		t.Fatal(err)
	}
	quiet(fmt.Sprintf("%d removed while %d started", n/2, n/2), began, n/2, n+n/2)

	began = time.Now()
	if err := each(n/2, n+n/2, remove); err != nil {
		t.Fatal(err)
	}
	quiet(fmt.Sprintf("all %d removed", n), began, 0, 0)
}
