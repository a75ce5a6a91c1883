//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/internal/testutil"
)

// Helpers of the forwarding and hardening tests: the fake upstream
// (testapps/fakeupstream, built by TestMain), a svcdns process the test
// stops itself, DNS exchanges from a chosen source address, raw packets,
// and /metrics.

// What the fake upstream answers (see testapps/fakeupstream).
const (
	upstreamA    = "198.51.100.7"
	upstreamAAAA = "2001:db8::7"
	forgedA      = "203.0.113.66"
	upstreamTCN  = 40 // A records of a tc.… name over TCP
)

// fakeUpstream is one running fakeupstream process.
type fakeUpstream struct {
	Addr string // DNS, host:port
	HTTP string // the /count endpoint, host:port
	log  *testutil.LogBuffer
}

// startFakeUpstream runs the fake upstream on addr ("" = a free port of
// 127.0.0.1) with extra flags (-stall, -delay 1s, ...); it is stopped at
// cleanup.
func startFakeUpstream(t testing.TB, addr string, flags ...string) *fakeUpstream {
	t.Helper()
	if appsErr != nil {
		t.Fatalf("test apps: %v", appsErr)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := append([]string{"-addr", addr, "-http", "127.0.0.1:0"}, flags...)
	cmd := exec.Command(filepath.Join(binDir, "apps", "fakeupstream"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{log: &testutil.LogBuffer{Max: 4 << 20}}
	cmd.Stderr = u.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start fakeupstream: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for i := range 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("fakeupstream %v exited: %s", args, u.log)
			}
			if i == 0 {
				u.Addr = strings.TrimSpace(l)
			} else {
				u.HTTP = strings.TrimSpace(strings.TrimPrefix(l, "http "))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fakeupstream %v: no address after 10s: %s", args, u.log)
		}
	}
	return u
}

// upstreamCount is what /count reports.
type upstreamCount struct {
	Queries, UDP, TCP int
}

// Count returns the queries the fake upstream received so far.
func (u *fakeUpstream) Count(t testing.TB) upstreamCount {
	t.Helper()
	b, err := httpGet("http://" + u.HTTP + "/count")
	if err != nil {
		t.Fatalf("fakeupstream /count: %v", err)
	}
	var c upstreamCount
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("fakeupstream /count: %v: %s", err, b)
	}
	return c
}

// Questions returns the last questions the fake upstream received, one
// "proto name type" each.
func (u *fakeUpstream) Questions(t testing.TB) []string {
	t.Helper()
	b, err := httpGet("http://" + u.HTTP + "/questions")
	if err != nil {
		t.Fatalf("fakeupstream /questions: %v", err)
	}
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func httpGet(url string) ([]byte, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// newQuery is a query for name and qtype with RD set and, when edns > 0,
// an OPT advertising that size.
func newQuery(name string, qtype uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return m
}

// exchangeFrom sends m to server over network ("udp" or "tcp") from the
// local IP from ("" = any) and returns the reply and how long it took.
func exchangeFrom(network, from, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, time.Duration, error) {
	c := &dns.Client{Net: network, Timeout: timeout}
	if from != "" {
		ip := net.ParseIP(from)
		d := &net.Dialer{Timeout: timeout}
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		c.Dialer = d
	}
	began := time.Now()
	r, _, err := c.Exchange(m, server)
	return r, time.Since(began), err
}

// exchange is exchangeFrom any local address.
func exchange(network, server string, m *dns.Msg, timeout time.Duration) (*dns.Msg, time.Duration, error) {
	return exchangeFrom(network, "", server, m, timeout)
}

// answerStrings returns the answer section's data: addresses, MX hosts,
// TXT strings.
func answerStrings(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		case *dns.MX:
			out = append(out, strconv.Itoa(int(r.Preference))+" "+r.Mx)
		case *dns.TXT:
			out = append(out, strings.Join(r.Txt, " "))
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}

// rawUDP sends pkt to server from a fresh socket and returns the first
// datagram back, or nil when none came within wait.
func rawUDP(server string, pkt []byte, wait time.Duration) ([]byte, error) {
	c, err := net.Dial("udp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil, nil
		}
		return nil, err
	}
	return buf[:n], nil
}

// metricValue sums the samples of a metric on svcdns's /metrics whose
// labels contain every one of match (`kind="mismatch"`).
func metricValue(t testing.TB, httpAddr, name string, match ...string) float64 {
	t.Helper()
	b, err := httpGet("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	var sum float64
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric with this prefix
		}
		ok := true
		for _, m := range match {
			if !strings.Contains(rest, m) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("/metrics %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// startSvcdnsProc is startSvcdns for tests that stop svcdns themselves
// (SIGTERM under load): the same flags and start, and at cleanup only a
// kill if it still runs. The test reads s.exited and s.err.
func startSvcdnsProc(t testing.TB, flags ...string) *svcdns {
	t.Helper()
	s := launchSvcdns(t, "", flags)
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("svcdns log:\n%s", s.stderr)
		}
	})
	s.waitStarted(t)
	return s
}

// runSvcdnsOnce runs svcdns with exactly args and returns its output and
// exit error; it must exit within 10 s.
func runSvcdnsOnce(t testing.TB, args ...string) (string, error) {
	t.Helper()
	requireBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, svcdnsBin, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("svcdns %s still running after 10s:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err
}

// waitBindable waits until addr can be bound for UDP and TCP (another
// test's svcdns may still hold it), for at most d.
func waitBindable(t testing.TB, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		u, uerr := net.ListenPacket("udp", addr)
		if uerr == nil {
			u.Close()
		}
		l, terr := net.Listen("tcp", addr)
		if terr == nil {
			l.Close()
		}
		if uerr == nil && terr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not free after %v: udp %v, tcp %v", addr, d, uerr, terr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testNetns is a network namespace with a veth pair to the host: the host
// side has HostIP, the namespace side NSIP (a /30). It is deleted at
// cleanup, and a leftover of a crashed run is deleted first.
type testNetns struct {
	Name, HostIP, NSIP string
}

func newTestNetns(t testing.TB) *testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	n := &testNetns{Name: namePrefix + "fwd", HostIP: "10.253.77.1", NSIP: "10.253.77.2"}
	const hostIf, nsIf = "svt-fwd-h", "svt-fwd-n"
	ipCmd := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	_ = ipCmd("netns", "del", n.Name)
	_ = ipCmd("link", "del", hostIf)
	t.Cleanup(func() {
		_ = ipCmd("netns", "del", n.Name)
		_ = ipCmd("link", "del", hostIf)
	})
	for _, args := range [][]string{
		{"netns", "add", n.Name},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", n.Name},
		{"addr", "add", n.HostIP + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", n.Name, "addr", "add", n.NSIP + "/30", "dev", nsIf},
		{"-n", n.Name, "link", "set", nsIf, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// Exec runs a command inside the namespace (at most 20 s).
func (n *testNetns) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}
