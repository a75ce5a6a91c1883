package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// lockedBuffer collects the log of a run.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var reStarted = regexp.MustCompile(`msg="svcdns started".* dns=(\S+) http=(\S+)`)

// run, in process: it serves DNS and HTTP, and returns nil when its
// context ends, as on SIGTERM.
func TestRunServesAndStops(t *testing.T) {
	log := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--dns-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--docker-host", "none", "--upstream", "none"},
			env(), io.Discard, log)
	}()
	var m []string
	deadline := time.Now().Add(10 * time.Second)
	for m == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no start line:\n%s", log)
		}
		select {
		case err := <-done:
			t.Fatalf("run returned at start: %v\n%s", err, log)
		case <-time.After(10 * time.Millisecond):
		}
		m = reStarted.FindStringSubmatch(log.String())
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
	r, err := dns.Exchange(q, dnsAddr)
	if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.9.0.1" {
		t.Fatalf("web.service.local: %v %v", r, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v, want nil (exit 0)", err)
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
