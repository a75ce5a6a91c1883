//go:build integration

package integration

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// HAProxy's server-template fills server slots from DNS: from SRV answers
// (address and port, truncated answers included) or from A answers (the
// port fixed in the template).

// haproxy is one HAProxy process whose resolvers section points at svcdns.
type haproxy struct {
	*consumer
	sock string // the stats socket
}

// startHAProxy runs HAProxy with one resolvers section ("r": nameserver
// ns, which may carry tcp@, and accepted_payload_size payload; 0 leaves it
// out, so HAProxy announces its default, 512), resolving every 200 ms, and
// one listen section per template "name=<slots> <fqdn or fqdn:port>".
func startHAProxy(t testing.TB, ns string, payload int, templates ...string) *haproxy {
	t.Helper()
	bin := requireTool(t, "haproxy")
	dir := t.TempDir()
	h := &haproxy{sock: filepath.Join(dir, "stats.sock")}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
resolvers r
    nameserver svcdns %s
    timeout resolve 200ms
    timeout retry 200ms
    hold obsolete 0s
`, h.sock, ns)
	if payload > 0 {
		fmt.Fprintf(&cfg, "    accepted_payload_size %d\n", payload)
	}
	for _, tmpl := range templates {
		name, spec, _ := strings.Cut(tmpl, "=")
		fmt.Fprintf(&cfg, "listen %s\n    bind 127.0.0.1:%d\n    server-template s %s resolvers r init-addr none\n", name, freePort(t), spec)
	}
	conf := writeConfig(t, dir, "haproxy.cfg", cfg.String())
	h.consumer = startConsumer(t, "haproxy "+ns, bin, "-db", "-f", conf)
	eventually(t, 10*time.Second, "haproxy stats socket", func() error {
		h.running(t)
		_, err := unixCommand(h.sock, "show info")
		return err
	})
	return h
}

// held returns the "address:port" of every server of backend that holds an
// address from DNS, from the runtime API's `show servers state`.
func (h *haproxy) held(backend string) ([]string, error) {
	out, err := unixCommand(h.sock, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	var cols map[string]int
	var held []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "#" {
			cols = map[string]int{}
			for i, name := range f[1:] {
				cols[name] = i
			}
			continue
		}
		if cols == nil || len(f) < len(cols) {
			continue
		}
		addr, port := f[cols["srv_addr"]], f[cols["srv_port"]]
		if addr == "-" || addr == "0.0.0.0" || f[cols["srv_op_state"]] != "2" {
			continue // an empty slot: no address, in maintenance
		}
		held = append(held, net.JoinHostPort(addr, port))
	}
	if cols == nil {
		return nil, fmt.Errorf("show servers state %s: no header in %q", backend, out)
	}
	slices.Sort(held)
	return held, nil
}

// holds waits until backend holds exactly want.
func (h *haproxy) holds(t testing.TB, backend string, want []string) {
	t.Helper()
	eventually(t, 15*time.Second, "haproxy backend "+backend, func() error {
		h.running(t)
		got, err := h.held(backend)
		if err != nil {
			return err
		}
		return sameSet("servers held", got, want)
	})
}

// removedLines are HAProxy's log lines for a server that lost its SRV
// record: each one is a server dropped.
func (h *haproxy) removedLines() []string { return lines(h.Log(), "entry removed from SRV record") }

// HAProxy follows a service through scaling, deletion, re-registration
// and a TTL expiry, on an SRV name and on an A name.
func TestHAProxyFollowsChanges(t *testing.T) {
	s := startSvcdns(t, "", "--docker-host", "none")
	h := startHAProxy(t, s.DNS, 1232, "bysrv=10 _follow._tcp.service.local", "bya=10 follow.service.local:9999")
	inst := func(i int) apiInstance {
		return apiInstance{Service: "follow", Address: loopbackAddr(4, i), Port: 9000 + i}
	}
	id := func(i int) string { return fmt.Sprintf("follow-%d", i) }
	want := func(what string, ids ...int) {
		t.Helper()
		var srv, a []string
		for _, i := range ids {
			srv = append(srv, net.JoinHostPort(loopbackAddr(4, i), fmt.Sprint(9000+i)))
			a = append(a, net.JoinHostPort(loopbackAddr(4, i), "9999"))
		}
		began := time.Now()
		h.holds(t, "bysrv", srv)
		h.holds(t, "bya", a)
		t.Logf("%s: HAProxy holds %v after %v", what, ids, time.Since(began).Round(10*time.Millisecond))
	}

	for _, i := range []int{1, 2, 3} {
		s.register(t, id(i), inst(i))
	}
	want("3 instances", 1, 2, 3)
	for _, i := range []int{4, 5} {
		s.register(t, id(i), inst(i))
	}
	want("scaled to 5", 1, 2, 3, 4, 5)
	for _, i := range []int{3, 4, 5} {
		if code, body, _ := s.do(t, "DELETE", "/v1/instances/"+id(i), nil); code != 204 {
			t.Fatalf("DELETE %s: %d %s", id(i), code, body)
		}
	}
	want("scaled to 2 (3 deleted)", 1, 2)
	s.register(t, id(3), inst(3))
	want("3 registered again", 1, 2, 3)
	ephemeral := inst(6)
	ephemeral.TTL = "2s"
	s.register(t, id(6), ephemeral)
	want("6 registered with a 2s TTL", 1, 2, 3, 6)
	want("6 expired", 1, 2, 3)
}

// A 30-instance service: with the defaults of both (UDP; HAProxy announces
// 512 bytes, svcdns caps at 1232), and with the common
// accepted_payload_size 1232, the answer is truncated and HAProxy holds a
// stable subset, never dropping a server while the instances do not
// change; with the README's configurations (tcp@ nameserver, or a larger
// payload on both sides) it holds all 30.
func TestHAProxyLargeService(t *testing.T) {
	def := startSvcdns(t, "", "--docker-host", "none")
	large := startSvcdns(t, "", "--docker-host", "none", "--max-udp-size", "4096")
	var all []string
	for i := 1; i <= 30; i++ {
		inst := apiInstance{Service: "big-ms", Address: loopbackAddr(5, i), Port: 9000 + i}
		def.register(t, fmt.Sprintf("big-ms-%d", i), inst)
		large.register(t, fmt.Sprintf("big-ms-%d", i), inst)
		all = append(all, net.JoinHostPort(inst.Address, fmt.Sprint(inst.Port)))
	}
	const tmpl = "big=40 _big-ms._tcp.service.local"
	byDefault := startHAProxy(t, def.DNS, 0, tmpl)
	with1232 := startHAProxy(t, def.DNS, 1232, tmpl)
	overTCP := startHAProxy(t, "tcp@"+def.DNS, 65535, tmpl)
	largeUDP := startHAProxy(t, large.DNS, 4096, tmpl)

	overTCP.holds(t, "big", all)
	largeUDP.holds(t, "big", all)

	truncated := map[string]*haproxy{"HAProxy's default (512 bytes)": byDefault, "accepted_payload_size 1232": with1232}
	first := map[string][]string{}
	for what, h := range truncated {
		eventually(t, 10*time.Second, what+": HAProxy fills some servers", func() error {
			got, err := h.held("big")
			if err == nil && len(got) == 0 {
				err = fmt.Errorf("no server filled")
			}
			first[what] = got
			return err
		})
		if len(first[what]) >= 30 {
			t.Fatalf("%s holds all %d: the answer was not truncated, so this test proves nothing", what, len(first[what]))
		}
	}
	// 20 resolutions at 200 ms: no set may move.
	seen := map[string]map[string]bool{}
	never(t, 4*time.Second, "servers held with truncated answers", func() error {
		for what, h := range truncated {
			got, err := h.held("big")
			if err != nil {
				return err
			}
			if seen[what] == nil {
				seen[what] = map[string]bool{}
			}
			seen[what][strings.Join(got, " ")] = true
			if err := sameSet(what+": servers held", got, first[what]); err != nil {
				return err
			}
		}
		return nil
	})
	for what := range truncated {
		t.Logf("%s: %d of 30 servers held, 1 set over 4 s (%d sets seen)", what, len(first[what]), len(seen[what]))
		if n := len(slices.Collect(maps.Keys(seen[what]))); n != 1 {
			t.Errorf("%s: %d different server sets", what, n)
		}
	}
	for _, h := range []*haproxy{byDefault, with1232, overTCP, largeUDP} {
		if rm := h.removedLines(); len(rm) > 0 {
			t.Errorf("%s dropped servers while the instances did not change:\n%s", h.name, strings.Join(rm, "\n"))
		}
	}
}
