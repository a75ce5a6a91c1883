package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is a backend that counts the connections made to it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

// fallbackFunc is a RoundTripper that records what reached it.
type fallbackFunc func(*http.Request) (*http.Response, error)

func (f fallbackFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newH1 is an h1Transport to addr whose fallback fails the test.
func newH1(t *testing.T, addr string, mods ...func(*h1Transport)) *h1Transport {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	h := &h1Transport{
		addr: addr, dial: d.DialContext, maxIdle: 4, idleTimeout: time.Minute, headerTimeout: time.Minute,
		fallback: fallbackFunc(func(r *http.Request) (*http.Response, error) {
			t.Errorf("%s %s went to the fallback transport", r.Method, r.URL)
			return nil, errors.New("fallback")
		}),
	}
	for _, m := range mods {
		m(h)
	}
	t.Cleanup(h.closeIdle)
	return h
}

// send makes a request to h's instance and returns status and body read
// to the end (the connection goes back to the pool).
func send(t *testing.T, h *h1Transport, req *http.Request) (int, string, error) {
	t.Helper()
	resp, err := h.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func newReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r) // GetBody set for a strings.Reader
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func idleCount(h *h1Transport) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.idle)
}

// Keep-alive: requests one after another share one connection; each
// response's own asking decides whether it is kept (Connection: close,
// HTTP/1.0 without keep-alive), and so does the request's.
func TestH1KeepAlive(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(w http.ResponseWriter)
		reqClose  bool
		wantConns int64 // for 3 requests
	}{
		{name: "kept", respond: func(w http.ResponseWriter) { io.WriteString(w, "ok") }, wantConns: 1},
		{name: "empty body kept", respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }, wantConns: 1},
		{name: "chunked kept", respond: func(w http.ResponseWriter) {
			io.WriteString(w, "o")
			http.NewResponseController(w).Flush()
			io.WriteString(w, "k")
		}, wantConns: 1},
		{name: "response Connection: close", respond: func(w http.ResponseWriter) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "ok")
		}, wantConns: 3},
		{name: "request Connection: close", reqClose: true, respond: func(w http.ResponseWriter) { io.WriteString(w, "ok") }, wantConns: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { tt.respond(w) })
			h := newH1(t, addrOf(s))
			for i := range 3 {
				req := newReq(t, http.MethodGet, s.URL+"/x", "")
				req.Close = tt.reqClose
				if _, _, err := send(t, h, req); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if n := conns.Load(); n != tt.wantConns {
				t.Errorf("%d connections for 3 requests, want %d", n, tt.wantConns)
			}
		})
	}
}

// An HTTP/1.0 answer without keep-alive ends its connection.
func TestH1HTTP10Closes(t *testing.T) {
	addr, conns := rawServer(t, func(n int, c net.Conn, br *bufio.Reader) bool {
		if _, err := http.ReadRequest(br); err != nil {
			return false
		}
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false
	})
	h := newH1(t, addr)
	for i := range 2 {
		if code, body, err := send(t, h, newReq(t, http.MethodGet, "http://"+addr+"/", "")); err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// rawServer serves with serve on each connection it accepts (n counts
// them from 1) until serve returns false, then closes the connection.
func rawServer(t *testing.T, serve func(n int, c net.Conn, br *bufio.Reader) bool) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			n := int(conns.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for serve(n, c, br) {
					select {
					case <-done:
						return
					default:
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &conns
}

// A kept connection that the instance closed as the request went out (it
// read the request and closed, no byte back): a replayable request goes
// again on a new connection, as http.Transport does; one that is not
// (POST) fails, for the proxy's own retry rules to decide.
func TestH1ServerClosesKeptConnection(t *testing.T) {
	tests := []struct {
		method, body string
		header       string
		wantOK       bool
	}{
		{method: http.MethodGet, wantOK: true},
		{method: http.MethodHead, wantOK: true},
		{method: http.MethodPost, body: "order-1"},
		{method: http.MethodPost, body: "order-1", header: "Idempotency-Key", wantOK: true},
		{method: http.MethodPut, body: "x"}, // idempotent, yet not replayed here (http.Transport's rule): the proxy retries it on another instance
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.header, func(t *testing.T) {
			addr, conns := rawServer(t, func(n int, c net.Conn, br *bufio.Reader) bool {
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return false
					}
					b, _ := io.ReadAll(req.Body)
					if n == 1 && i == 1 {
						return false // the second request on the first connection: closed unanswered
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b)+2, "ok"+string(b))
				}
			})
			h := newH1(t, addr)
			url := "http://" + addr + "/"
			if _, _, err := send(t, h, newReq(t, http.MethodGet, url, "")); err != nil {
				t.Fatal(err)
			}
			req := newReq(t, tt.method, url, tt.body)
			if tt.header != "" {
				req.Header.Set(tt.header, "k-1")
			}
			code, body, err := send(t, h, req)
			if !tt.wantOK {
				var f *failure
				if err == nil || !errors.As(err, &f) || !f.noResponse || f.nothingWritten {
					t.Fatalf("got %d %q %v, want a failure with no response, after the request was written", code, body, err)
				}
				if n := conns.Load(); n != 1 {
					t.Errorf("%d connections, want 1 (not sent again)", n)
				}
				return
			}
			want := "ok" + tt.body
			if tt.method == http.MethodHead {
				want = ""
			}
			if err != nil || code != 200 || body != want {
				t.Fatalf("got %d %q %v, want 200 %q on a new connection", code, body, err, want)
			}
			if n := conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

// An idle connection that the instance closed is found before use, and
// not used.
func TestH1PeerClosedIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var p idleProbe
	p.init(c)
	if p.closed() {
		t.Fatal("an open, quiet connection seen as closed")
	}
	if allocs := testing.AllocsPerRun(100, func() { p.closed() }); allocs != 0 {
		t.Errorf("%.0f allocations per peek, want 0", allocs)
	}
	sc.Close()
	eventuallyTrue(t, "the close seen", p.closed)
}

// A body not read to its end, then closed, closes its connection (it is
// not drained: it may never end), and the next request dials.
func TestH1BodyClosedEarly(t *testing.T) {
	stop := make(chan struct{})
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/endless" {
			io.WriteString(w, "ok")
			return
		}
		for {
			if _, err := io.WriteString(w, strings.Repeat("x", 1024)); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			default:
			}
		}
	})
	defer close(stop)
	h := newH1(t, addrOf(s))
	resp, err := h.RoundTrip(newReq(t, http.MethodGet, s.URL+"/endless", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := idleCount(h); n != 0 {
		t.Errorf("%d idle connections after an early close, want 0", n)
	}
	if code, body, err := send(t, h, newReq(t, http.MethodGet, s.URL+"/", "")); err != nil || code != 200 || body != "ok" {
		t.Fatalf("next request: %d %q %v", code, body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A streamed (chunked) response comes as it is written: the first chunk
// is read before the instance writes the second; read to its end, the
// connection is kept.
func TestH1Streamed(t *testing.T) {
	next := make(chan struct{})
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "first")
		http.NewResponseController(w).Flush()
		<-next
		fmt.Fprintln(w, "second")
	})
	h := newH1(t, addrOf(s))
	resp, err := h.RoundTrip(newReq(t, http.MethodGet, s.URL+"/", ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	close(next)
	if rest, err := io.ReadAll(br); string(rest) != "second\n" || err != nil {
		t.Errorf("rest %q, %v", rest, err)
	}
	resp.Body.Close()
	if n := idleCount(h); n != 1 {
		t.Errorf("%d idle connections after the stream's end, want 1", n)
	}
	if _, _, err := send(t, h, newReq(t, http.MethodGet, s.URL+"/", "")); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// A request whose context is cancelled, waiting for its response or
// reading its body, ends at once with the context's error, and its
// connection is closed.
func TestH1Cancelled(t *testing.T) {
	for _, during := range []string{"headers", "body"} {
		t.Run(during, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			release := make(chan struct{})
			defer close(release)
			s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
				if during == "body" {
					io.WriteString(w, "part")
					http.NewResponseController(w).Flush()
				}
				arrived <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			h := newH1(t, addrOf(s))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := newReq(t, http.MethodGet, s.URL+"/", "").WithContext(ctx)
			if during == "headers" {
				go func() {
					<-arrived
					cancel()
				}()
				if _, err := h.RoundTrip(req); !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
			} else {
				resp, err := h.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(resp.Body, make([]byte, 4)); err != nil {
					t.Fatal(err)
				}
				cancel()
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatal("the body of a cancelled request read to an end")
				}
			}
			if n := idleCount(h); n != 0 {
				t.Errorf("%d idle connections, want 0", n)
			}
		})
	}
}

// No response headers within the header timeout: a timeout error (the
// proxy answers 504 and does not retry), the connection closed.
func TestH1HeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	h := newH1(t, addrOf(s), func(h *h1Transport) { h.headerTimeout = 50 * time.Millisecond })
	_, err := h.RoundTrip(newReq(t, http.MethodGet, s.URL+"/", ""))
	if err == nil || !isTimeout(err) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if retryable(newReq(t, http.MethodGet, s.URL+"/", ""), err) {
		t.Error("a timed-out request is retryable")
	}
	if n := idleCount(h); n != 0 {
		t.Errorf("%d idle connections, want 0", n)
	}
}

// Informational responses go to the request's httptrace hook (which
// ReverseProxy forwards to the client), the final one is returned.
func TestH1Informational(t *testing.T) {
	s, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	})
	h := newH1(t, addrOf(s))
	var got []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
			got = append(got, code)
			return nil
		},
	})
	code, body, err := send(t, h, newReq(t, http.MethodGet, s.URL+"/", "").WithContext(ctx))
	if err != nil || code != 200 || body != "ok" {
		t.Fatalf("got %d %q %v", code, body, err)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints {
		t.Errorf("1xx seen %v, want [103]", got)
	}
}

// What h1Transport does not send itself goes to the fallback transport,
// unchanged.
func TestH1Fallback(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*http.Request)
	}{
		{name: "upgrade", mod: func(r *http.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}},
		{name: "expect 100-continue", mod: func(r *http.Request) { r.Header.Set("Expect", "100-continue") }},
		{name: "trailers", mod: func(r *http.Request) { r.Trailer = http.Header{"X-Sum": nil} }},
		{name: "body not held", mod: func(r *http.Request) {
			r.Body, r.GetBody, r.ContentLength = io.NopCloser(strings.NewReader("big")), nil, -1
		}},
		{name: "connect", mod: func(r *http.Request) { r.Method = http.MethodConnect }},
		{name: "https", mod: func(r *http.Request) { r.URL.Scheme = "https" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fell *http.Request
			h := newH1(t, "127.0.0.1:1", func(h *h1Transport) {
				h.fallback = fallbackFunc(func(r *http.Request) (*http.Response, error) {
					fell = r
					return &http.Response{StatusCode: 299, Body: http.NoBody, Request: r}, nil
				})
				h.dial = func(context.Context, string, string) (net.Conn, error) {
					t.Error("h1Transport dialed itself")
					return nil, errors.New("no dial")
				}
			})
			req := newReq(t, http.MethodPost, "http://127.0.0.1:1/x", "body")
			tt.mod(req)
			resp, err := h.RoundTrip(req)
			if err != nil || resp.StatusCode != 299 || fell != req {
				t.Fatalf("got %v %v, want the fallback's answer to the same request", resp, err)
			}
		})
	}
}

// An upgrade through the proxy goes over the fallback transport and works
// both ways (TestProxyStreamsAndUpgrades); a plain request to the same
// instance takes the h1Transport's pool, not the fallback's.
func TestProxyPlainRequestsPooled(t *testing.T) {
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	f := newFixture(t)
	f.register("b", "s", addrOf(s), paths("/s"))
	for range 3 {
		if code, body := f.get("", "/s/x"); code != 200 || body != "ok" {
			t.Fatalf("%d %q", code, body)
		}
	}
	be := backendOf(f, "b")
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests one after another, want 1", n)
	}
	if n := idleCount(be.tr.Load()); n != 1 {
		t.Errorf("%d idle connections in the instance's pool, want 1", n)
	}
	// The instance leaves: its idle connection is closed.
	f.deregister("b")
	if n := idleCount(be.tr.Load()); n != 0 {
		t.Errorf("%d idle connections after the instance left, want 0", n)
	}
}

// An instance that closes idle connections sooner than the proxy (here
// after 200 ms): its close is seen before the next request reuses the
// connection, however short the idle time, so that a POST, which is
// never sent again once written, goes out on a new connection.
func TestH1InstanceKeepAliveShorterThanProxy(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "ok"+string(b))
	}))
	s.Config.IdleTimeout = 200 * time.Millisecond
	var conns atomic.Int64
	closed := make(chan struct{}, 1)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closed <- struct{}{}
		}
	}
	s.Start()
	defer s.Close()
	h := newH1(t, addrOf(s))
	if _, _, err := send(t, h, newReq(t, http.MethodPost, s.URL+"/", "order-1")); err != nil {
		t.Fatal(err)
	}
	select { // the instance's keep-alive timeout closes the idle connection
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the instance kept the idle connection")
	}
	time.Sleep(100 * time.Millisecond) // idle 300 ms in all: the close reached the proxy's side
	code, body, err := send(t, h, newReq(t, http.MethodPost, s.URL+"/", "order-2"))
	if err != nil || code != 200 || body != "okorder-2" {
		t.Fatalf("POST after the instance closed the idle connection: %d %q %v", code, body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// Bytes an instance sends on a connection after its response (a body on a
// 204 or a HEAD answer, written late) are never read as the answer to the
// next request on it: the connection is dropped.
func TestH1BytesAfterResponse(t *testing.T) {
	sent := make(chan struct{})
	addr, conns := rawServer(t, func(n int, c net.Conn, br *bufio.Reader) bool {
		if _, err := http.ReadRequest(br); err != nil {
			return false
		}
		if n > 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
			return true
		}
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
		close(sent)
		_, _ = io.Copy(io.Discard, br) // a request sent on it anyway gets no answer of its own
		return false
	})
	h := newH1(t, addr)
	if code, _, err := send(t, h, newReq(t, http.MethodGet, "http://"+addr+"/", "")); err != nil || code != 204 {
		t.Fatalf("first request: %d %v", code, err)
	}
	<-sent
	time.Sleep(50 * time.Millisecond) // the stray bytes reached the proxy's side
	code, body, err := send(t, h, newReq(t, http.MethodGet, "http://"+addr+"/", ""))
	if err != nil || code != 200 || body != "fresh" {
		t.Fatalf("second request: %d %q %v, want 200 \"fresh\" on a new connection", code, body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A response header is read up to maxHeaderBytes, the informational ones
// passed on each with a limit of their own, as http.Transport does: a
// header without end fails rather than filling memory, and an instance
// may send as many 1xx responses (102 Processing) as it needs.
func TestH1ResponseHeaderLimit(t *testing.T) {
	tests := []struct {
		name     string
		response string
		wantErr  bool
	}{
		{name: "small", response: "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("x", 100) + "\r\nContent-Length: 2\r\n\r\nok"},
		{name: "over the limit", response: "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("x", 5000) + "\r\nContent-Length: 2\r\n\r\nok", wantErr: true},
		{name: "many 1xx under the limit each", response: strings.Repeat("HTTP/1.1 102 Processing\r\nX-Pad: "+strings.Repeat("x", 1000)+"\r\n\r\n", 8) +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := rawServer(t, func(n int, c net.Conn, br *bufio.Reader) bool {
				if _, err := http.ReadRequest(br); err != nil {
					return false
				}
				io.WriteString(c, tt.response)
				return true
			})
			h := newH1(t, addr, func(h *h1Transport) { h.maxHeaderBytes = 4096 })
			n1xx := 0
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(int, textproto.MIMEHeader) error { n1xx++; return nil },
			})
			code, body, err := send(t, h, newReq(t, http.MethodGet, "http://"+addr+"/", "").WithContext(ctx))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d %q, want an error", code, body)
				}
				return
			}
			if err != nil || code != 200 || body != "ok" {
				t.Fatalf("got %d %q %v", code, body, err)
			}
			if want := strings.Count(tt.response, " 102 "); n1xx != want {
				t.Errorf("%d 1xx responses passed on, want %d", n1xx, want)
			}
		})
	}
}

// A request whose client has already gone takes no idle connection (its
// context would close it at once): the pool keeps it.
func TestH1CancelledBeforeSend(t *testing.T) {
	s, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := newH1(t, addrOf(s))
	if _, _, err := send(t, h, newReq(t, http.MethodGet, s.URL+"/", "")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.RoundTrip(newReq(t, http.MethodGet, s.URL+"/", "").WithContext(ctx)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if n := idleCount(h); n != 1 {
		t.Errorf("%d idle connections, want 1", n)
	}
	if _, _, err := send(t, h, newReq(t, http.MethodGet, s.URL+"/", "")); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
