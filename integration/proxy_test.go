//go:build integration

package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
)

// dockerProxy is a unix-socket proxy in front of the Docker socket that a
// test stops (closing every open connection, the event stream included) and
// starts again, and that records every request passing through it. It can
// also misbehave as a busy endpoint does: drop every n-th new connection
// (RefuseEvery), or answer container inspects with HTTP 500 (FailInspects).
type dockerProxy struct {
	Path     string // the proxy's socket; svcdns gets --docker-host unix://<Path>
	upstream string

	refuseEvery  atomic.Int64 // 0: none; n: every n-th accepted connection is closed at once
	failInspects atomic.Bool
	accepted     atomic.Int64
	refused      atomic.Int64 // connections dropped by RefuseEvery
	failed       atomic.Int64 // inspects answered 500

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	reqs  []string // "METHOD /path?query"
	wg    sync.WaitGroup
}

// newDockerProxy returns a stopped proxy for the local Docker socket; it is
// stopped at cleanup.
func newDockerProxy(t testing.TB) *dockerProxy {
	t.Helper()
	// Not t.TempDir: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", namePrefix+"proxy-")
	if err != nil {
		t.Fatal(err)
	}
	p := &dockerProxy{
		Path:     filepath.Join(dir, "docker.sock"),
		upstream: "/var/run/docker.sock",
		conns:    map[net.Conn]bool{},
	}
	t.Cleanup(func() {
		p.Stop()
		os.RemoveAll(dir)
	})
	return p
}

// Host is the --docker-host value for the proxy.
func (p *dockerProxy) Host() string { return "unix://" + p.Path }

// Start listens on Path.
func (p *dockerProxy) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	_ = os.Remove(p.Path)
	ln, err := net.Listen("unix", p.Path)
	if err != nil {
		t.Fatalf("docker proxy: %v", err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
}

// Stop closes the listener and every connection, as a daemon that went
// away would, and removes the socket.
func (p *dockerProxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	_ = os.Remove(p.Path)
}

// RefuseEvery makes the proxy close every n-th new connection as soon as
// it is accepted, before any answer; 0 stops it.
func (p *dockerProxy) RefuseEvery(n int) { p.refuseEvery.Store(int64(n)) }

// FailInspects makes the proxy answer GET /containers/{id}/json with HTTP
// 500 instead of forwarding it, while on.
func (p *dockerProxy) FailInspects(on bool) { p.failInspects.Store(on) }

// Faults returns the connections refused and the inspects failed so far.
func (p *dockerProxy) Faults() (refused, failed int64) { return p.refused.Load(), p.failed.Load() }

// Conns is the number of open client connections.
func (p *dockerProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Requests returns every request seen so far.
func (p *dockerProxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reqs...)
}

func (p *dockerProxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if n := p.refuseEvery.Load(); n > 0 && p.accepted.Add(1)%n == 0 {
			p.refused.Add(1)
			c.Close()
			continue
		}
		up, err := net.Dial("unix", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(c, up)
			p.drop(c, up)
		}()
		go func() {
			defer p.wg.Done()
			p.forward(c, up)
			p.drop(c, up)
		}()
	}
}

// forward reads the client's requests one by one, records them and writes
// them upstream.
func (p *dockerProxy) forward(c, up net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.reqs = append(p.reqs, req.Method+" "+req.URL.RequestURI())
		p.mu.Unlock()
		if p.failInspects.Load() && inspectPath.MatchString(req.URL.Path) {
			// The client sends the next request on this connection only
			// after reading this answer, so nothing from upstream
			// interleaves with it.
			p.failed.Add(1)
			body := `{"message":"injected by the test proxy"}`
			if _, err := fmt.Fprintf(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
				return
			}
			continue
		}
		if err := req.Write(up); err != nil {
			return
		}
	}
}

// inspectPath is GET /containers/{id}/json, with or without the API version.
var inspectPath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/[0-9a-f]{64}/json$`)

func (p *dockerProxy) track(c, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil { // stopped meanwhile
		c.Close()
		up.Close()
		return false
	}
	p.conns[c], p.conns[up] = true, true
	return true
}

func (p *dockerProxy) drop(c, up net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Close()
	up.Close()
	delete(p.conns, c)
	delete(p.conns, up)
}

var _ = errors.New
