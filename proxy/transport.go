package proxy

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// h1Transport sends plain HTTP/1.1 requests to one instance, on the
// goroutine that calls RoundTrip, over keep-alive connections of its own.
// It writes and reads with net/http's own wire code (Request.Write,
// ReadResponse); what it saves against http.Transport is the two
// goroutines per connection (readLoop, writeLoop) and the channel
// hand-offs of every request between them and the caller.
//
// What it does not do simply goes to fallback, net/http's Transport,
// unchanged: protocol upgrades (WebSocket), Expect headers (100-continue),
// requests with trailers, CONNECT, bodies that are not held in memory
// (GetBody: larger than MaxRetryBody, or of unknown length, which
// http.Transport writes while it reads the response) and any scheme but
// http.
//
// A connection is taken from the pool, most recently used first, once a
// non-blocking peek (one system call) finds it open and quiet, or dialed;
// it goes back to the pool when its response body has been read to its
// end, and is closed instead when the body is closed early, a read fails,
// either side asked for Connection: close (or HTTP/1.0 without
// keep-alive), or the request's context is done. A response's header is
// read up to maxHeaderBytes. A request that failed on a reused connection
// before any byte of a response came back is sent again on a new
// connection, once, when it is safe to (see retryFresh), as http.Transport
// does: the instance may have closed the idle connection just as the
// request went out.
//
// RoundTrip and closeIdle are safe for concurrent use.
type h1Transport struct {
	addr string // host:port of the instance
	// dial connects to addr; its errors keep their *net.OpError with Op
	// "dial", which the proxy's retries rely on.
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback http.RoundTripper
	// headerTimeout bounds writing a request and the wait for its
	// response headers; 0 = none.
	headerTimeout time.Duration
	// idleTimeout closes a connection idle this long; 0 = never.
	idleTimeout time.Duration
	maxIdle     int // idle connections kept at most
	// maxHeaderBytes bounds a response's header (each informational one
	// passed on has a bound of its own); 0 = 10 MiB, http.Transport's
	// default.
	maxHeaderBytes int64

	mu     sync.Mutex
	idle   []*h1Conn // most recently used last
	closed bool      // closeIdle was called: no connection is kept from now on
}

var _ http.RoundTripper = (*h1Transport)(nil)

// defaultMaxHeaderBytes is h1Transport.maxHeaderBytes when 0.
const defaultMaxHeaderBytes = 10 << 20

// errHeaderTooLarge: a response's header went past maxHeaderBytes.
var errHeaderTooLarge = errors.New("response header too large")

// RoundTrip sends req and returns its response; see h1Transport.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !plain(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		// Not sent: an idle connection taken now would only be closed.
		return nil, fmt.Errorf("send request: %w", err)
	}
	c, err := t.get(ctx, false)
	if err != nil {
		return nil, err
	}
	resp, err := c.roundTrip(req)
	if err == nil || !c.reused || !retryFresh(req, err) || ctx.Err() != nil {
		return resp, err
	}
	// The instance closed the kept connection as the request went out:
	// again on a connection of its own.
	if req.Body != nil && req.Body != http.NoBody {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		again := *req
		again.Body = body
		req = &again
	}
	if c, err = t.get(ctx, true); err != nil {
		return nil, err
	}
	return c.roundTrip(req)
}

// plain reports whether h1Transport sends req itself rather than the
// fallback transport.
func plain(req *http.Request) bool {
	h := req.Header
	return req.URL.Scheme == "http" && req.Method != http.MethodConnect && len(req.Trailer) == 0 &&
		(req.Body == nil || req.Body == http.NoBody || req.GetBody != nil) &&
		len(h["Upgrade"]) == 0 && len(h["Expect"]) == 0
}

// failure is an error of one attempt on a connection, and how far the
// attempt got: http.Transport's distinctions, which retryFresh needs.
type failure struct {
	err error
	// nothingWritten: no byte of the request reached the connection.
	nothingWritten bool
	// noResponse: no byte of a response came back (the connection was
	// closed or reset, or the wait timed out).
	noResponse bool
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// retryFresh reports whether a request that failed on a reused connection
// may be sent again on a new one: when none of it was written, or when no
// byte of a response came back, the connection was closed (not timed out)
// and the request is replayable (http.Transport's rule: GET, HEAD,
// OPTIONS or TRACE, or an Idempotency-Key header, and a body it can have
// again).
func retryFresh(req *http.Request, err error) bool {
	var f *failure
	if !errors.As(err, &f) {
		return false
	}
	if f.nothingWritten {
		return true
	}
	if !f.noResponse || isTimeout(err) {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	h := req.Header
	return h["Idempotency-Key"] != nil || h["X-Idempotency-Key"] != nil
}

// get returns an idle connection, or a new one when there is none or
// fresh is set. An idle connection is checked before every reuse: its
// instance may have closed it (a keep-alive timeout shorter than ours, a
// restart), or sent bytes on it that would be read as the next response.
// It calls the request's httptrace GetConn hook first, as http.Transport
// does.
func (t *h1Transport) get(ctx context.Context, fresh bool) (*h1Conn, error) {
	if tr := httptrace.ContextClientTrace(ctx); tr != nil && tr.GetConn != nil {
		tr.GetConn(t.addr)
	}
	for !fresh {
		c := t.takeIdle()
		if c == nil {
			break
		}
		if c.usable() {
			return c, nil
		}
		c.close()
	}
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{t: t, conn: conn}
	c.br = bufio.NewReader(c)
	c.bw = bufio.NewWriter(c)
	c.probe.init(conn)
	return c, nil
}

// takeIdle takes the most recently used idle connection, nil when none.
func (t *h1Transport) takeIdle() *h1Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.idle)
	if n == 0 {
		return nil
	}
	c := t.idle[n-1]
	t.idle[n-1] = nil
	t.idle = t.idle[:n-1]
	c.isIdle = false
	return c
}

// put keeps c for the next request, or closes it when the pool is full
// or closed.
func (t *h1Transport) put(c *h1Conn) {
	c.reused = true
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	c.isIdle = true
	t.idle = append(t.idle, c)
	if t.idleTimeout > 0 {
		// Reset under the lock: a timer set by an earlier put, running
		// late, can only close a connection that is idle.
		if c.idleTimer == nil {
			c.idleTimer = time.AfterFunc(t.idleTimeout, func() { t.expire(c) })
		} else {
			c.idleTimer.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// expire closes c when it is still idle: its idle timer fired.
func (t *h1Transport) expire(c *h1Conn) {
	t.mu.Lock()
	if !c.isIdle {
		t.mu.Unlock()
		return
	}
	for i, ic := range t.idle {
		if ic == c {
			t.idle = slices.Delete(t.idle, i, i+1)
			break
		}
	}
	c.isIdle = false
	t.mu.Unlock()
	c.close()
}

// closeIdle closes the idle connections, and every connection that
// becomes idle from now on (the instance left, or the proxy stops): the
// requests in flight complete. Later requests dial.
func (t *h1Transport) closeIdle() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	for _, c := range idle {
		c.isIdle = false
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// h1Conn is one connection to the instance, used by one request at a
// time.
type h1Conn struct {
	t    *h1Transport
	conn net.Conn
	br   *bufio.Reader // reads from the h1Conn, within readLimit
	bw   *bufio.Writer // writes to the h1Conn, which counts the bytes
	nw   int64         // bytes written to conn
	// readLimit is what may still be read from conn: a response header is
	// read within maxHeaderBytes, a body without limit.
	readLimit int64
	reused    bool // it served a request before
	probe     idleProbe

	// Under t.mu:
	isIdle    bool
	idleTimer *time.Timer
}

// Read reads from the connection within readLimit, as http.Transport's
// persistConn does: a header without end fails rather than filling memory.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.readLimit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > c.readLimit {
		p = p[:c.readLimit]
	}
	n, err := c.conn.Read(p)
	c.readLimit -= int64(n)
	return n, err
}

// Write writes to the connection and counts what it took, so that a
// failed write is known to have sent nothing (retryFresh).
func (c *h1Conn) Write(p []byte) (int, error) {
	n, err := c.conn.Write(p)
	c.nw += int64(n)
	return n, err
}

func (c *h1Conn) close() {
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	_ = c.conn.Close()
}

// roundTrip writes req and reads its response headers. Until the response
// body is done (h1Body), the request's context being done closes the
// connection.
func (c *h1Conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	resp, err := c.exchange(req)
	if err != nil {
		stop()
		c.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("send request: %w", ctx.Err())
		}
		return nil, err
	}
	b := &h1Body{c: c, stop: stop, keep: !resp.Close && !req.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	b.rc = resp.Body
	resp.Body = b
	return resp, nil
}

// exchange writes req and reads the response headers, within the header
// timeout, passing informational (1xx) responses to the request's
// httptrace hook, as http.Transport does (ReverseProxy forwards them):
// each one passed on resets the header limit, else all count against it.
func (c *h1Conn) exchange(req *http.Request) (*http.Response, error) {
	if d := c.t.headerTimeout; d > 0 {
		if err := c.conn.SetDeadline(time.Now().Add(d)); err != nil {
			return nil, &failure{err: err, nothingWritten: true, noResponse: true}
		}
	}
	nw := c.nw
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		return nil, &failure{err: fmt.Errorf("write request: %w", err), nothingWritten: c.nw == nw, noResponse: true}
	}
	limit := cmp.Or(c.t.maxHeaderBytes, defaultMaxHeaderBytes)
	c.readLimit = limit
	if _, err := c.br.Peek(1); err != nil {
		return nil, &failure{err: fmt.Errorf("read response: %w", noResponseErr(err)), noResponse: true}
	}
	var resp *http.Response
	for {
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			if c.readLimit <= 0 {
				err = fmt.Errorf("%w: over %d bytes", errHeaderTooLarge, limit)
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("read response: unexpected %s", resp.Status)
		}
		if tr := httptrace.ContextClientTrace(req.Context()); tr != nil && tr.Got1xxResponse != nil {
			if err := tr.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
			c.readLimit = limit
		}
	}
	c.readLimit = math.MaxInt64 // the body is not limited
	if c.t.headerTimeout > 0 {
		// The body may stream for as long as it takes.
		if err := c.conn.SetDeadline(time.Time{}); err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
	}
	return resp, nil
}

// noResponseErr is err, io.EOF made into io.ErrUnexpectedEOF: the
// instance closed the connection with no response.
func noResponseErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// h1Body is a response body from h1Transport: at its end the connection
// goes back to the pool (when keep allows), and closed early, or failed,
// it closes the connection. Close may be called while a Read runs on
// another goroutine: it ends that Read.
type h1Body struct {
	rc   io.ReadCloser // ReadResponse's body
	c    *h1Conn
	stop func() bool // stops the context's watch; false: it closed the connection
	keep bool        // neither side asked to close the connection
	done atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

// Close ends the body. Before its end, the connection is closed (not
// drained: the rest may be a stream without end); ReadResponse's body is
// not closed then, since closing it would drain it.
func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}

// finish gives the connection back (eof: the body was read to its end)
// or closes it, once.
func (b *h1Body) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	watched := b.stop()
	if eof && watched && b.keep && b.c.br.Buffered() == 0 {
		b.c.t.put(b.c)
		return
	}
	b.c.close()
}

// usable reports whether an idle connection can take a request: the
// instance has not closed it and sent nothing on it.
func (c *h1Conn) usable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return !c.probe.closed()
}
