//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The Docker watcher's tests (issue 3) whose clients are containers started
// with --dns: svcdns listens on port 53 of the default bridge's gateway (or
// runs as a container itself), and Go's resolver (testapps/resolve) and
// busybox nslookup find services through their ordinary resolv.conf.

// resolveLine is one line that testapps/resolve prints.
type resolveLine struct {
	Query string   `json:"query"`
	Type  string   `json:"type"`
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
	SRV   []struct {
		Target string   `json:"target"`
		Port   int      `json:"port"`
		Addrs  []string `json:"addrs"`
		Body   string   `json:"body"`
	} `json:"srv"`
	Error string `json:"error"`
	Tries int    `json:"tries"`
}

// runResolve runs testapps/resolve in a client container with the docker
// run options opts and the resolve arguments args, and returns its lines
// by query.
func runResolve(t *testing.T, name string, opts []string, args ...string) (map[string]resolveLine, string) {
	t.Helper()
	out, err := runClient(t, name, slices.Concat(opts, []string{imgResolve}, args)...)
	lines := map[string]resolveLine{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		var r resolveLine
		if jerr := json.Unmarshal([]byte(l), &r); jerr != nil {
			t.Fatalf("resolve printed %q: %v (run: %v)", l, jerr, err)
		}
		lines[r.Query] = r
	}
	if err != nil {
		t.Errorf("resolve %s: %v", strings.Join(args, " "), err)
	}
	return lines, out
}

// srvOf turns a resolve SRV result into "target:port" keys and a map from
// target to its addresses.
func srvOf(r resolveLine) ([]string, map[string][]string) {
	var keys []string
	addrs := map[string][]string{}
	for _, s := range r.SRV {
		tgt := strings.ToLower(s.Target)
		keys = append(keys, srvKey(tgt, s.Port))
		addrs[tgt] = s.Addrs
	}
	return keys, addrs
}

var (
	reBusyboxSRV  = regexp.MustCompile(`service = (\d+) (\d+) (\d+) (\S+)`)
	reBusyboxAddr = regexp.MustCompile(`(?m)^Address:\s+(\S+)\s*$`)
)

// busyboxLookup runs busybox nslookup (with -type=qtype unless it is "")
// in a client container; it returns the addresses of the answer (not the
// server's own line, which carries a port) and the SRV records as
// "target.:port".
func busyboxLookup(t *testing.T, name string, opts []string, qtype, qname string) (addrs, srv []string, out string) {
	t.Helper()
	args := []string{"nslookup"}
	if qtype != "" {
		args = append(args, "-type="+qtype)
	}
	out, err := runClient(t, name, slices.Concat(opts, []string{imgBusybox}, args, []string{qname})...)
	if err != nil {
		// busybox exits 1 when one of the A/AAAA pair has no answer; what it
		// printed is what counts.
		out += "\n" + err.Error()
	}
	for _, m := range reBusyboxAddr.FindAllStringSubmatch(out, -1) {
		if a, err := netip.ParseAddr(m[1]); err == nil {
			addrs = append(addrs, a.String())
		}
	}
	for _, m := range reBusyboxSRV.FindAllStringSubmatch(out, -1) {
		srv = append(srv, strings.ToLower(strings.TrimSuffix(m[4], "."))+".:"+m[3])
	}
	slices.Sort(addrs)
	slices.Sort(srv)
	return addrs, srv, out
}

// allowHost is an --allow value for svcdns on the bridge gateway: the
// defaults, and this host's own addresses. The host's queries to the
// gateway leave through lo with the gateway as source, which Docker's
// MASQUERADE rule (-s <bridge subnet> ! -o docker0) rewrites to the host's
// primary address; that is not in the private ranges on every host (here
// it may be a public or TEST-NET address).
func allowHost(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	list := []string{"loopback", "private", "docker"}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			list = append(list, p.Addr().Unmap().String())
		}
	}
	return strings.Join(list, ",")
}

func haveBusyboxImage() bool {
	_, err := os.Stat(busyboxPath)
	return err == nil
}

// ---- 2. ordinary resolvers in containers ----

// A client container started with --dns <gateway> resolves
// books-ms.service.local A and SRV through its own resolver, on the
// default bridge (straight to svcdns) and on a user-defined network (through
// Docker's embedded DNS, which forwards to svcdns).
func TestDockerClientResolvers(t *testing.T) {
	requireDocker(t)
	gw, addr := dockerDNSAddr(t)
	s := startWatching(t, addr, "--allow", allowHost(t))
	userNet := createNetwork(t, "clients")

	const svc = "books-ms.service." + testZone
	ids := []string{runContainer(t, "books-1", imgBooks), runContainer(t, "books-2", imgBooks)}
	ips := containerIPs(t, ids...)
	var wantA, wantSRV []string
	byTarget := map[string]string{} // target -> address
	hosts := map[string]string{}    // target -> fakesvc's reply (the hostname)
	for i, id := range ids {
		tgt := cname(fmt.Sprintf("books-%d", i+1))
		wantA = append(wantA, ips[id])
		wantSRV = append(wantSRV, srvKey(tgt, 8080))
		byTarget[tgt] = ips[id]
		hosts[tgt] = hostname(t, id)
	}
	eventually(t, 5*time.Second, "books-ms answered from the host", func() error { return serviceIs(s.DNS, svc, wantA, wantSRV) })

	cases := []struct {
		name    string
		network string // "" = the default bridge
		fetch   bool   // also GET / from each instance (reachable from this network)
	}{
		{"default bridge", "", true},
		{"user network via embedded DNS", userNet, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []string{"--dns", gw.String()}
			if tc.network != "" {
				opts = append(opts, "--network", tc.network)
			}
			args := []string{"-retry", "10s", "-min", "2"}
			if tc.fetch {
				args = append(args, "-fetch")
			}
			began := time.Now()
			res, out := runResolve(t, "client-go", opts, append(args, "A="+svc, "SRV="+svc)...)
			t.Logf("Go resolver in a container: %v for the run (%s)", time.Since(began).Round(time.Millisecond), strings.TrimSpace(out))
			a := res["A="+svc]
			if err := sameSet("Go resolver A", a.Addrs, wantA); err != nil || a.Error != "" {
				t.Errorf("%v (error %q)", err, a.Error)
			}
			sr := res["SRV="+svc]
			keys, addrs := srvOf(sr)
			if err := sameSet("Go resolver SRV", keys, wantSRV); err != nil || sr.Error != "" {
				t.Errorf("%v (error %q)", err, sr.Error)
			}
			for tgt, ip := range byTarget {
				if got := addrs[tgt]; !slices.Equal(got, []string{ip}) {
					t.Errorf("Go resolver: SRV target %s resolves to %v, want [%s]", tgt, got, ip)
				}
			}
			if tc.fetch {
				for _, s := range sr.SRV {
					if want := hosts[strings.ToLower(s.Target)]; s.Body != want {
						t.Errorf("GET http://%s:%d/ through SRV: %q, want %q (the instance's hostname)", s.Target, s.Port, s.Body, want)
					}
				}
			}

			if !haveBusyboxImage() {
				t.Logf("no %s: busybox nslookup not tried", busyboxPath)
				return
			}
			got, _, out := busyboxLookup(t, "client-bb", opts, "", svc)
			if err := sameSet("busybox nslookup A", got, wantA); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
			_, srv, out := busyboxLookup(t, "client-bb", opts, "srv", svc)
			if err := sameSet("busybox nslookup SRV", srv, wantSRV); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
			t.Logf("busybox nslookup in a container: A %v, SRV %v", got, srv)
		})
	}
}

// ---- 4b. several networks, auto address mode ----

// An instance on networks A and B: in --address-mode auto a client on A
// gets its address on A, a client on B its address on B, for the service
// and for the SRV target alike.
func TestDockerMultiNetworkAutoMode(t *testing.T) {
	requireDocker(t)
	gw, addr := dockerDNSAddr(t)
	s := startWatching(t, addr, "--address-mode", "auto", "--allow", allowHost(t))
	netA := createNetwork(t, "net-a")
	netB := createNetwork(t, "net-b")

	id := runContainer(t, "mnet", "--network", netA, "--label", "SERVICE_NAME=mnet", imgBooks)
	mustDocker(t, "network", "connect", netB, id)
	ipA, ipB := containerIP(t, id, netA), containerIP(t, id, netB)
	t.Logf("mnet: %s on %s, %s on %s", ipA, netA, ipB, netB)
	eventually(t, 10*time.Second, "svcdns knows mnet on both networks", func() error {
		code, body, err := s.get("/v1/services/mnet")
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(string(body), `"`+ipA+`"`) || !strings.Contains(string(body), `"`+ipB+`"`) {
			return fmt.Errorf("GET /v1/services/mnet: %d %.500s", code, body)
		}
		return nil
	})

	const svc = "mnet.service." + testZone
	tgt := cname("mnet")
	cases := []struct {
		name, network string
		want          []string // the one address the client must get; nil = any one of the container's
	}{
		{"client on A", netA, []string{ipA}},
		{"client on B", netB, []string{ipB}},
		{"client on neither", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []string{"--dns", gw.String()}
			if tc.network != "" {
				opts = append(opts, "--network", tc.network)
			}
			res, out := runResolve(t, "client-mnet", opts, "-retry", "5s", "A="+svc, "SRV="+svc)
			a := res["A="+svc]
			_, targets := srvOf(res["SRV="+svc])
			if tc.want == nil {
				if len(a.Addrs) != 1 || (a.Addrs[0] != ipA && a.Addrs[0] != ipB) {
					t.Errorf("A %v, want one of %s, %s\n%s", a.Addrs, ipA, ipB, out)
				}
				return
			}
			if err := sameSet("A", a.Addrs, tc.want); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
			if got := targets[tgt]; !slices.Equal(got, tc.want) {
				t.Errorf("SRV target %s: %v, want %v\n%s", tgt, got, tc.want, out)
			}
		})
	}
	t.Run("disconnect from B", func(t *testing.T) {
		mustDocker(t, "network", "disconnect", netB, id)
		eventually(t, 10*time.Second, "svcdns forgets mnet's address on B", func() error {
			_, body, err := s.get("/v1/services/mnet")
			if err != nil {
				return err
			}
			if strings.Contains(string(body), `"`+ipB+`"`) {
				return fmt.Errorf("GET /v1/services/mnet still has %s: %.500s", ipB, body)
			}
			return nil
		})
		if err := serviceIs(s.DNS, svc, []string{ipA}, []string{srvKey(tgt, 8080)}); err != nil {
			t.Error(err)
		}
	})
}

// ---- 8. svcdns in a container ----

// svcdns runs as a container with the Docker socket mounted read-only; a
// client container started with --dns <its address> resolves books-ms.
func TestDockerSvcdnsContainer(t *testing.T) {
	requireDocker(t)
	const token = "svcdns-test-token"
	id := runContainer(t, "svcdns", "-v", "/var/run/docker.sock:/var/run/docker.sock:ro", imgSvcdns,
		"--docker-filter", testFilter, "--dns-addr", ":53", "--http-addr", "0.0.0.0:8053", "--http-token", token,
		"--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() {
			out, err := exec.Command("docker", "logs", "--tail", "200", id).CombinedOutput()
			t.Logf("svcdns container log (%v):\n%s", err, out)
		}
	})
	ip := containerIP(t, id, "bridge")
	dnsAddr := net.JoinHostPort(ip, "53")
	api := "http://" + net.JoinHostPort(ip, "8053")
	began := time.Now()
	eventually(t, 30*time.Second, "svcdns container answers DNS and /healthz 200", func() error {
		if state := mustDocker(t, "inspect", "--format", "{{.State.Status}}", id); state != "running" {
			t.Fatalf("svcdns container is %s, not running", state)
		}
		if _, err := ask(dnsAddr, testZone, dns.TypeSOA); err != nil {
			return err
		}
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(api + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz: %d", resp.StatusCode)
		}
		return nil
	})
	t.Logf("svcdns container ready %v after docker run returned", time.Since(began).Round(time.Millisecond))

	// The API is on a non-loopback address, so writes need the token.
	req, _ := http.NewRequest(http.MethodPut, api+"/v1/instances/x", strings.NewReader(`{"service":"x","address":"10.0.0.1","port":1}`))
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("PUT without the token: %d, want 401", resp.StatusCode)
		}
	}

	const svc = "books-ms.service." + testZone
	books := []string{runContainer(t, "books-1", imgBooks), runContainer(t, "books-2", imgBooks)}
	ips := containerIPs(t, books...)
	wantA := []string{ips[books[0]], ips[books[1]]}
	wantSRV := []string{srvKey(cname("books-1"), 8080), srvKey(cname("books-2"), 8080)}
	eventually(t, 10*time.Second, "books-ms answered by the svcdns container", func() error {
		return serviceIs(dnsAddr, svc, wantA, wantSRV)
	})

	opts := []string{"--dns", ip}
	res, out := runResolve(t, "client-go", opts, "-retry", "10s", "-min", "2", "-fetch", "A="+svc, "SRV="+svc)
	if err := sameSet("Go resolver A", res["A="+svc].Addrs, wantA); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	keys, _ := srvOf(res["SRV="+svc])
	if err := sameSet("Go resolver SRV", keys, wantSRV); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	for _, r := range res["SRV="+svc].SRV {
		if strings.HasPrefix(r.Body, "error") || r.Body == "" {
			t.Errorf("GET http://%s:%d/: %q", r.Target, r.Port, r.Body)
		}
	}
	if haveBusyboxImage() {
		got, _, out := busyboxLookup(t, "client-bb", opts, "", svc)
		if err := sameSet("busybox nslookup A", got, wantA); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}
