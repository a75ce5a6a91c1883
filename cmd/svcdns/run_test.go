package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/internal/testutil"
)

// run, in process: it serves DNS and HTTP, and returns nil when its
// context ends, as on SIGTERM.
func TestRunServesAndStops(t *testing.T) {
	log := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	exited := make(chan struct{})
	go func() {
		runErr = run(ctx, []string{"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--docker-host", "none", "--upstream", "none"},
			env(), io.Discard, log)
		close(exited)
	}()
	started, cancelStart := context.WithTimeout(ctx, 10*time.Second)
	defer cancelStart()
	go func() {
		select {
		case <-exited:
			cancelStart()
		case <-started.Done():
		}
	}()
	m, err := log.WaitFor(started, testutil.StartedLine)
	if err != nil {
		select {
		case <-exited:
			t.Fatalf("run returned at start: %v\n%s", runErr, log)
		default:
			t.Fatalf("%v:\n%s", err, log)
		}
	}
	dnsAddr, httpAddr := m[1], m[2]

	req, _ := http.NewRequest(http.MethodPut, "http://"+httpAddr+"/v1/instances/web-1",
		strings.NewReader(`{"service":"web","address":"10.9.0.1","port":80}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	q := new(dns.Msg)
	q.SetQuestion("web.service.local.", dns.TypeA)
	// A failure timeout only (miekg's default is 2 s).
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	r, _, err := c.Exchange(q, dnsAddr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.9.0.1" {
		t.Fatalf("web.service.local: %v %v", r, err)
	}

	checkMetrics(t, httpAddr)
	checkExplain(t, httpAddr)

	cancel()
	select {
	case <-exited:
		if runErr != nil {
			t.Fatalf("run after cancel: %v, want nil (exit 0)", runErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of its context ending")
	}
	if !strings.Contains(log.String(), `msg="svcdns stopped"`) {
		t.Errorf("no stop line:\n%s", log)
	}
}

// A taken port ends run at once with one error naming the flag and the
// address.
func TestRunPortInUse(t *testing.T) {
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(t.Context(), []string{"--dns-addr", ln.LocalAddr().String(), "--http-addr", "127.0.0.1:0", "--docker-host", "none", "--upstream", "none"},
		env(), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--dns-addr "+ln.LocalAddr().String()) || !strings.Contains(err.Error(), "another program holds this port") {
		t.Fatalf("err %v, want the flag, the address and what to do", err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	err = run(t.Context(), []string{"--dns-addr", "127.0.0.1:0", "--http-addr", hl.Addr().String(), "--docker-host", "none", "--upstream", "none"},
		env(), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--http-addr") {
		t.Fatalf("err %v, want the HTTP listener named", err)
	}
}

// checkMetrics: the whole /metrics of a running svcdns passes promlint,
// and the query just asked is counted.
func checkMetrics(t *testing.T, httpAddr string) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	testutil.LintExposition(t, body)
	for _, want := range []string{
		`svcdns_dns_queries_total{rcode="NOERROR",type="A"} 1`,
		`svcdns_catalog_source_instances{passing="true",source="api"} 1`,
		"svcdns_dns_truncated_total 0",
		"svcdns_http_requests_total{",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// checkExplain: GET /v1/explain goes through the DNS handler.
func checkExplain(t *testing.T, httpAddr string) {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/v1/explain?name=web.service.local&type=A&client=10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`"rcode":"NOERROR"`, `"rule":"registered"`, `10.9.0.1`} {
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("explain: %d %s, want %s", resp.StatusCode, body, want)
		}
	}
}

// listenError's advice fits the flag and the port it is about.
func TestListenError(t *testing.T) {
	bind := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	tests := []struct {
		err        error
		flag, addr string
		want, not  string
	}{
		{bind(syscall.EADDRINUSE), "--dns-addr", ":53", "another program holds this port (often systemd-resolved or dnsmasq); stop it or choose another --dns-addr", ""},
		{bind(syscall.EADDRINUSE), "--http-addr", "127.0.0.1:8053", "another program holds this port; stop it or choose another --http-addr", "systemd-resolved"},
		{bind(syscall.EACCES), "--dns-addr", ":53", "CAP_NET_BIND_SERVICE, or choose a port above 1023 (--dns-addr 127.0.0.1:5353)", ""},
		{bind(syscall.EACCES), "--proxy-addr", ":80", "choose a port above 1023", "5353"},
		{bind(syscall.EADDRNOTAVAIL), "--dns-addr", "10.9.9.9:53", "no interface of this host has that address", ""},
	}
	for _, tc := range tests {
		got := listenError(tc.err, tc.flag, tc.addr).Error()
		if !strings.HasPrefix(got, tc.flag+" "+tc.addr+": ") || !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("listenError(%v, %s, %s) = %q, want it to say %q and not %q", tc.err, tc.flag, tc.addr, got, tc.want, tc.not)
		}
	}
}
