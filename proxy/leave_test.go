package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingEcho is echo that also counts the requests it got.
func countingEcho(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %s", name, r.Method, r.URL.RequestURI(), b)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// countDials counts the proxy's dials to addr (connect attempts, made or
// not). Set before any register: the table's atomic swap orders it before
// any request.
func countDials(f *fixture, addr string) *atomic.Int64 {
	var n atomic.Int64
	f.p.dialer.Control = func(_, a string, _ syscall.RawConn) error {
		if a == addr {
			n.Add(1)
		}
		return nil
	}
	return &n
}

// An instance that leaves the catalog after the proxy picked it for a
// request, and before the proxy has a connection for that request, gets
// no request: a new dial to it is not even tried, and a keep-alive
// connection to it was closed when it left. The request goes to an
// instance still there, the one of the newest table when the one it was
// picked from has no other. The instance that leaves keeps running (a
// drain, or a deregistration through the API), so that a request sent to
// it would be answered, and seen.
func TestProxyInstanceLeavesBeforeDial(t *testing.T) {
	tests := []struct {
		name    string
		warm    bool // a keep-alive connection to the instance that leaves is idle in the pool
		replace bool // it is the route's only instance, and a new one replaces it
		alone   bool // it is the route's only instance, and none replaces it: 503
		method  string
		body    string
	}{
		{name: "GET, new connection", method: http.MethodGet},
		{name: "POST, new connection: never sent, so retried", method: http.MethodPost, body: "order-1"},
		{name: "GET, idle keep-alive connection", warm: true, method: http.MethodGet},
		{name: "POST, idle keep-alive connection", warm: true, method: http.MethodPost, body: "order-1"},
		{name: "only instance replaced", replace: true, method: http.MethodGet},
		{name: "only instance replaced, idle keep-alive connection", replace: true, warm: true, method: http.MethodPost, body: "order-1"},
		{name: "only instance gone, none replaces it", alone: true, method: http.MethodGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			leaving, got := countingEcho(t, "leaving")
			other := echo(t, "other")
			dials := countDials(f, addrOf(leaving))
			f.register("leaving", "s", addrOf(leaving), paths("/s"))
			if !tt.replace && !tt.alone {
				f.register("other", "s", addrOf(other), paths("/s"))
				backendOf(f, "other").inflight.Store(1) // the request picks leaving
			}
			var wantGot int64
			if tt.warm {
				if code, body := f.get("", "/s/warm"); code != http.StatusOK || !strings.HasPrefix(body, "leaving ") {
					t.Fatalf("warm-up request: %d %q, want leaving", code, body)
				}
				wantGot = 1
			}

			// GetConn runs on the request's goroutine once RoundTrip has
			// picked the instance, before the transport looks for a
			// connection: the instance leaves right there.
			left, dialsBefore := false, int64(0)
			trace := &httptrace.ClientTrace{GetConn: func(hostPort string) {
				if hostPort != addrOf(leaving) || left {
					return
				}
				left, dialsBefore = true, dials.Load()
				if tt.replace {
					f.register("other", "s", addrOf(other), paths("/s"))
				}
				f.deregister("leaving")
			}}
			req := httptest.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
				tt.method, "/s/x", strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			f.p.ServeHTTP(rec, req)

			if !left {
				t.Fatal("the request never went for a connection to leaving")
			}
			switch want := "other " + tt.method + " /s/x " + tt.body; {
			case tt.alone:
				if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "service s:") {
					t.Errorf("%d %q, want 503 naming service s", rec.Code, rec.Body.String())
				}
			case rec.Code != http.StatusOK || rec.Body.String() != want:
				t.Errorf("%d %q, want 200 %q", rec.Code, rec.Body.String(), want)
			}
			if n := got.Load(); n != wantGot {
				t.Errorf("the instance that left got %d requests, want %d (the warm-up only)", n, wantGot)
			}
			if n := dials.Load() - dialsBefore; n != 0 {
				t.Errorf("%d dials to the instance after it left, want none", n)
			}
		})
	}
}

// The proxy's connections to an instance that left are closed: the idle
// ones at once, the one serving a request when that request ends (it
// completes: a drain drops nothing). Without that they would wait for the
// idle timeout, and one might be reused for an instance that later comes
// at the same address. The second case has the instance leave while a
// request that picked it asks the transport for a connection, which
// undoes the transport's closing of the connections that become idle;
// the refused dial closes them again.
func TestProxyClosesConnectionsOfLeftInstance(t *testing.T) {
	for _, duringRequest := range []bool{false, true} {
		t.Run(fmt.Sprintf("during a request %t", duringRequest), func(t *testing.T) {
			testClosesConnections(t, duringRequest)
		})
	}
}

func testClosesConnections(t *testing.T, duringRequest bool) {
	f := newFixture(t, func(c *Config) { c.IdleTimeout = time.Hour })
	var open atomic.Int64
	arrived, release := make(chan struct{}), make(chan struct{})
	leaving := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/s/hold" {
			close(arrived)
			<-release
		}
		fmt.Fprintf(w, "leaving %s", r.URL.Path)
	}))
	leaving.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	leaving.Start()
	t.Cleanup(leaving.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	f.register("leaving", "s", addrOf(leaving), paths("/s"))

	type result struct {
		code int
		body string
		err  error
	}
	held := make(chan result, 1)
	go func() {
		resp, err := f.srv.Client().Get(f.srv.URL + "/s/hold")
		if err != nil {
			held <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		held <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the held request never reached the instance")
	}
	// A second connection, idle in the proxy's pool once answered.
	if code, body := f.get("", "/s/idle"); code != http.StatusOK || body != "leaving /s/idle" {
		t.Fatalf("second request: %d %q", code, body)
	}

	if !duringRequest {
		f.deregister("leaving")
	} else {
		f.register("other", "s", addrOf(echo(t, "other")), paths("/s"))
		backendOf(f, "other").inflight.Store(5) // the request picks leaving
		left := false
		trace := &httptrace.ClientTrace{GetConn: func(hostPort string) {
			if hostPort == addrOf(leaving) && !left {
				left = true
				f.deregister("leaving")
			}
		}}
		req := httptest.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, "/s/x", nil)
		rec := httptest.NewRecorder()
		f.p.ServeHTTP(rec, req)
		if !left || rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "other ") {
			t.Fatalf("request during the leave: left %t, %d %q, want other", left, rec.Code, rec.Body.String())
		}
	}
	eventuallyTrue(t, "the idle connection closed, the busy one kept", func() bool { return open.Load() == 1 })
	close(release)
	if r := <-held; r.err != nil || r.code != http.StatusOK || r.body != "leaving /s/hold" {
		t.Errorf("the request in flight when the instance left: %d %q %v, want it completed", r.code, r.body, r.err)
	}
	eventuallyTrue(t, "the busy connection closed once its request ended", func() bool { return open.Load() == 0 })
}

// A backend's transport is made on its first request: a catalog of many
// instances, most never proxied to, holds no transport for them.
func TestTransportOnFirstRequest(t *testing.T) {
	f := newFixture(t)
	f.register("used", "s", addrOf(echo(t, "used")), paths("/s"))
	f.register("idle", "s", addrOf(echo(t, "idle")), paths("/s"))
	backendOf(f, "idle").inflight.Store(1) // the request picks used
	if code, body := f.get("", "/s"); code != http.StatusOK || !strings.HasPrefix(body, "used ") {
		t.Fatalf("%d %q, want used", code, body)
	}
	if backendOf(f, "used").tr.Load() == nil || backendOf(f, "idle").tr.Load() != nil {
		t.Errorf("transports: used %v, idle %v; want one for used only",
			backendOf(f, "used").tr.Load() != nil, backendOf(f, "idle").tr.Load() != nil)
	}
}

// An instance registered again under another service (same id, same
// address) is served by its new service's route. The rebuild gave the new
// service the instance's backend, then dropped the old service (left with
// no instance, it is dropped after the others; else in name order) and
// with it that backend: the new route held only a gone backend and
// answered 503 until its service changed again.
func TestProxyInstanceMovesService(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		stays    bool // the old service keeps another instance
	}{
		{from: "zz-old", to: "aa-new"},
		{from: "aa-old", to: "zz-new"},
		{from: "zz-old", to: "aa-new", stays: true}, // rebuilt after the new one
	} {
		t.Run(fmt.Sprintf("%s->%s,stays=%t", tc.from, tc.to, tc.stays), func(t *testing.T) {
			f := newFixture(t)
			be := echo(t, "moved")
			if tc.stays {
				f.register("y", tc.from, addrOf(echo(t, "other")), paths("/y"))
			}
			f.register("x", tc.from, addrOf(be), paths("/x"))
			if code, body := f.get("", "/x"); code != http.StatusOK {
				t.Fatalf("GET /x in %s: %d %s", tc.from, code, body)
			}
			f.register("x", tc.to, addrOf(be), paths("/x"))
			rt := f.p.tbl.Load().match("", "/x")
			if rt == nil || rt.service != tc.to || len(rt.members) != 1 {
				t.Fatalf("route /x after the move: %+v, want %s with one member", rt, tc.to)
			}
			if rt.members[0].b.isGone() {
				t.Errorf("the route's one backend is gone")
			}
			if code, body := f.get("", "/x"); code != http.StatusOK || !strings.HasPrefix(body, "moved ") {
				t.Errorf("GET /x in %s: %d %s, want 200 from the instance", tc.to, code, body)
			}
		})
	}
}
