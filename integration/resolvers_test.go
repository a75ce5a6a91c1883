//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Resolvers in front of svcdns: unbound with a stub-zone for the zone and
// a reverse zone, dnsmasq with server=/local/, CoreDNS's forward. Each
// gets no root hints and no upstream but svcdns, and answers on loopback
// only.

// The instances every resolver test registers: web (2 instances) and big
// (30, whose SRV answer does not fit a UDP reply), all in 10.77.0.0/16.
const resolverSubnet = "10.77.0.0/16"

func seedResolverTests(t *testing.T, s *svcdns) {
	t.Helper()
	s.register(t, "web-1", apiInstance{Service: "web", Address: "10.77.1.1", Port: 8080})
	s.register(t, "web-2", apiInstance{Service: "web", Address: "10.77.1.2", Port: 8081})
	for i := 1; i <= 30; i++ {
		s.register(t, fmt.Sprintf("big-%d", i), apiInstance{Service: "big", Address: fmt.Sprintf("10.77.2.%d", i), Port: 9000 + i})
	}
}

// digCase is one question through a resolver and what must come back.
type digCase struct {
	name, qtype string
	args        []string // more dig options
	status      string
	answer      []string // rrKeys of the answer; nil = must be empty
	additional  []string // rrKeys of the additional section; nil = not checked
	tc          bool
	count       int // answer records, when answer is not listed
}

func checkDig(t *testing.T, tool, server string, cases []digCase) {
	t.Helper()
	for _, c := range cases {
		args := append([]string{c.name, c.qtype}, c.args...)
		r := runDig(t, tool, server, args...)
		what := strings.Join(args, " ")
		if r.Status != c.status {
			t.Errorf("%s: status %s, want %s\n%s", what, r.Status, c.status, r.Out)
			continue
		}
		if r.Has("tc") != c.tc {
			t.Errorf("%s: TC=%v, want %v\n%s", what, r.Has("tc"), c.tc, r.Out)
		}
		switch {
		case c.count > 0:
			if len(r.Answer) != c.count {
				t.Errorf("%s: %d answers, want %d\n%s", what, len(r.Answer), c.count, r.Out)
			}
		case c.answer == nil && !c.tc:
			if len(r.Answer) != 0 {
				t.Errorf("%s: answer %v, want none", what, rrKeys(r.Answer))
			}
		case c.answer != nil:
			if got := rrKeys(r.Answer); !slices.Equal(got, keys(c.answer...)) {
				t.Errorf("%s: answer\n got  %q\n want %q", what, got, keys(c.answer...))
			}
		}
		if c.additional != nil {
			var got []string
			for _, k := range rrKeys(r.Additional) {
				if !strings.Contains(k, " OPT") {
					got = append(got, k)
				}
			}
			if !slices.Equal(got, keys(c.additional...)) {
				t.Errorf("%s: additional\n got  %q\n want %q", what, got, keys(c.additional...))
			}
		}
	}
}

// forwarderCases are what a forwarding resolver must pass through: A,
// SRV with its additional addresses, NXDOMAIN, NODATA, and a truncated
// UDP answer that the client completes over TCP.
func forwarderCases() []digCase {
	return []digCase{
		{name: "web.service.local", qtype: "A", status: "NOERROR",
			answer: []string{"web.service.local. A 10.77.1.1", "web.service.local. A 10.77.1.2"}},
		{name: "_web._tcp.service.local", qtype: "SRV", status: "NOERROR",
			answer:     []string{"_web._tcp.service.local. SRV 8080 web-1.container.local.", "_web._tcp.service.local. SRV 8081 web-2.container.local."},
			additional: []string{"web-1.container.local. A 10.77.1.1", "web-2.container.local. A 10.77.1.2"}},
		{name: "nosuch.service.local", qtype: "A", status: "NXDOMAIN"},
		{name: "web.service.local", qtype: "AAAA", status: "NOERROR"},
		{name: "big.service.local", qtype: "SRV", args: []string{"+ignore", "+notcp"}, status: "NOERROR", tc: true},
		{name: "big.service.local", qtype: "SRV", args: []string{"+tcp"}, status: "NOERROR", count: 30},
	}
}

// unbound with stub-zones for the zone and a reverse zone of svcdns.
func TestUnboundStubZone(t *testing.T) {
	bin := requireTool(t, "unbound")
	s := startSvcdns(t, "", "--docker-host", "none", "--reverse-zones", resolverSubnet)
	seedResolverTests(t, s)
	dir := t.TempDir()
	// Root hints that lead nowhere: nothing outside the stub zones is
	// ever asked, and if it were, it would go to a loopback address.
	hints := writeConfig(t, dir, "root.hints", ". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 127.0.0.9\n")
	port := fmt.Sprint(freePort(t))
	stub := strings.Replace(s.DNS, ":", "@", 1)
	conf := writeConfig(t, dir, "unbound.conf", fmt.Sprintf(`server:
    interface: 127.0.0.1
    port: %s
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "%s"
    pidfile: "%s/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    log-servfail: yes
    outgoing-interface: 127.0.0.1
    do-ip6: no
    module-config: "iterator"
    root-hints: "%s"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    unblock-lan-zones: yes
    insecure-lan-zones: yes
stub-zone:
    name: "local."
    stub-addr: %s
stub-zone:
    name: "77.10.in-addr.arpa."
    stub-addr: %s
remote-control:
    control-enable: no
`, port, dir, dir, hints, stub, stub))
	u := startConsumer(t, "unbound", bin, "-d", "-c", conf)
	addr := "127.0.0.1:" + port
	u.answersDNS(t, addr, 10*time.Second)

	checkDig(t, "dig", addr, []digCase{
		{name: "web.service.local", qtype: "A", status: "NOERROR",
			answer: []string{"web.service.local. A 10.77.1.1", "web.service.local. A 10.77.1.2"}},
		{name: "_web._tcp.service.local", qtype: "SRV", status: "NOERROR",
			answer: []string{"_web._tcp.service.local. SRV 8080 web-1.container.local.", "_web._tcp.service.local. SRV 8081 web-2.container.local."}},
		{name: "nosuch.service.local", qtype: "A", status: "NXDOMAIN"},
		{name: "web.service.local", qtype: "AAAA", status: "NOERROR"},
		// Empty non-terminals, which a QNAME-minimising resolver walks.
		{name: "service.local", qtype: "A", status: "NOERROR"},
		{name: "_tcp.service.local", qtype: "A", status: "NOERROR"},
		{name: "container.local", qtype: "A", status: "NOERROR"},
		// The reverse zone.
		{name: "1.1.77.10.in-addr.arpa", qtype: "PTR", status: "NOERROR",
			answer: []string{"1.1.77.10.in-addr.arpa. PTR web-1.container.local."}},
		{name: "9.9.77.10.in-addr.arpa", qtype: "PTR", status: "NXDOMAIN"},
		{name: "1.77.10.in-addr.arpa", qtype: "PTR", status: "NOERROR"},
		{name: "77.10.in-addr.arpa", qtype: "SOA", status: "NOERROR", count: 1},
		// Asked again: now from unbound's cache.
		{name: "9.9.77.10.in-addr.arpa", qtype: "PTR", status: "NXDOMAIN"},
		{name: "web.service.local", qtype: "A", status: "NOERROR", count: 2},
	})
	for _, bad := range []string{"error:", "warning:", "SERVFAIL"} {
		if l := lines(u.Log(), bad); len(l) > 0 {
			t.Errorf("unbound complained:\n%s", strings.Join(l, "\n"))
		}
	}
}

// dnsmasq forwarding the zone to svcdns.
func TestDnsmasqForward(t *testing.T) {
	bin := requireTool(t, "dnsmasq")
	s := startSvcdns(t, "", "--docker-host", "none")
	seedResolverTests(t, s)
	host, svcPort, _ := strings.Cut(s.DNS, ":")
	port := fmt.Sprint(freePort(t))
	conf := writeConfig(t, t.TempDir(), "dnsmasq.conf", fmt.Sprintf(`port=%s
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
no-poll
user=root
pid-file=
log-facility=-
server=/local/%s#%s
`, port, host, svcPort))
	d := startConsumer(t, "dnsmasq", bin, "--keep-in-foreground", "--conf-file="+conf)
	addr := "127.0.0.1:" + port
	d.answersDNS(t, addr, 10*time.Second)
	checkDig(t, "dig", addr, forwarderCases())
}

// CoreDNS's forward plugin, for the zone.
func TestCoreDNSForward(t *testing.T) {
	bin := requireCoreDNS(t)
	s := startSvcdns(t, "", "--docker-host", "none")
	seedResolverTests(t, s)
	port := fmt.Sprint(freePort(t))
	dir := t.TempDir()
	conf := writeConfig(t, dir, "Corefile", fmt.Sprintf("local:%s {\n    bind 127.0.0.1\n    forward . %s\n    errors\n}\n", port, s.DNS))
	c := startConsumer(t, "coredns", bin, "-conf", conf)
	addr := "127.0.0.1:" + port
	c.answersDNS(t, addr, 20*time.Second)
	checkDig(t, "dig", addr, forwarderCases())
}

// answersDNS waits until the resolver c answers on addr.
func (c *consumer) answersDNS(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, c.name+" answers", func() error {
		c.running(t)
		_, err := ask(addr, "web.service.local", dns.TypeA)
		return err
	})
}

var (
	corednsOnce sync.Once
	corednsBin  string
	corednsErr  error
)

// requireCoreDNS returns the CoreDNS binary scripts/coredns.sh builds (the
// one make bench compares with, shared in .cache/bench). `make test` builds
// it before the tests; a test run alone builds it here the first time. A
// build that fails skips the test locally and fails it under CI=true.
func requireCoreDNS(t testing.TB) string {
	t.Helper()
	corednsOnce.Do(func() { corednsBin, corednsErr = buildCoreDNS() })
	if corednsErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CoreDNS: %v", corednsErr)
		}
		t.Skipf("CoreDNS could not be built, skipped (under CI=true this fails): %v", corednsErr)
	}
	return corednsBin
}

func buildCoreDNS() (string, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "coredns.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/coredns.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// The reverse zone of a Docker network svcdns sees, with no flag: PTR of
// a container, NXDOMAIN with the zone's SOA for an unknown address, the
// SOA at the apex, all authoritative, over UDP and TCP.
func TestDockerNetworkReverseZone(t *testing.T) {
	s := startWatching(t, "")
	network := createNetwork(t, "reverse", "--subnet", "10.78.9.0/24")
	id := runContainer(t, "reverse-1", "--network", network, imgFakesvc)
	ptr, err := dns.ReverseAddr(containerIP(t, id, network))
	if err != nil {
		t.Fatal(err)
	}
	const apex = "9.78.10.in-addr.arpa."
	eventually(t, 10*time.Second, "PTR of the container", func() error {
		m, err := ask(s.DNS, ptr, dns.TypePTR)
		if err != nil {
			return err
		}
		if got := rrKeys(m.Answer); !slices.Equal(got, keys(ptr+" PTR "+cname("reverse-1"))) || !m.Authoritative {
			return fmt.Errorf("PTR %s: AA=%v %v", ptr, m.Authoritative, got)
		}
		return nil
	})
	for _, transport := range []string{"+notcp", "+tcp"} {
		r := runDig(t, "dig", s.DNS, "250.9.78.10.in-addr.arpa", "PTR", "+norec", transport)
		if r.Status != "NXDOMAIN" || !r.Has("aa") || len(r.Authority) != 1 || r.Authority[0].Header().Name != apex {
			t.Errorf("unknown address %s: %s AA=%v authority %v, want NXDOMAIN, AA and the SOA of %s", transport, r.Status, r.Has("aa"), r.Authority, apex)
		}
		r = runDig(t, "dig", s.DNS, apex, "SOA", "+norec", transport)
		if r.Status != "NOERROR" || !r.Has("aa") || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("apex SOA %s: %s AA=%v answer %v", transport, r.Status, r.Has("aa"), r.Answer)
		}
	}
}
