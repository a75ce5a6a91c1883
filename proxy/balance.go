package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
)

// errNoInstance: every instance of the route was tried, or there is none.
var errNoInstance = errors.New("no passing instance")

var _ http.RoundTripper = (*route)(nil)

// RoundTrip sends one request (ReverseProxy's outbound copy) to the
// route's least busy instance, and on a failure before any response byte
// to another one, when the request can be replayed (retryable). Each
// instance is tried at most once, and at most maxAttempts are. An
// instance that left since it was picked is skipped, or, when it leaves
// before the request has a connection to it, its dial fails (see
// backend.dial) and the request goes to another.
func (rt *route) RoundTrip(req *http.Request) (*http.Response, error) {
	var triedBuf [maxAttempts]*backend
	tried := triedBuf[:0]
	var lastErr error
	for len(tried) < maxAttempts {
		m, ok := rt.next(req.URL.Host, tried)
		if !ok {
			break
		}
		out := req
		if m.strip || len(tried) > 0 || req.URL.Host != m.b.addr {
			if out = rt.outbound(req, m, len(tried) > 0); out == nil {
				break // the body cannot be had again
			}
		}
		m.b.inflight.Add(1)
		resp, err := m.b.transport().RoundTrip(out)
		if err == nil {
			resp.Body = wrapBody(resp.Body, m.b)
			return resp, nil
		}
		m.b.inflight.Add(-1)
		lastErr = fmt.Errorf("instance %s at %s: %w", m.b.id, m.b.addr, err)
		rt.met.upstreamErrors.Inc()
		tried = append(tried, m.b)
		if !retryable(req, err) {
			return nil, lastErr
		}
		rt.met.retries.Inc()
	}
	if lastErr == nil {
		lastErr = errNoInstance
	}
	return nil, lastErr
}

// rewrite makes the outbound request: addressed to the least busy
// instance (RoundTrip finds it again by its address, so that the usual
// request is sent as ReverseProxy made it, with no copy), fresh
// X-Forwarded-For, -Host and -Proto (a client's own are not trusted), the
// client's Host header kept. The path is stripped in RoundTrip, per
// instance.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	if m, ok := rt.pick(nil); ok {
		pr.Out.URL.Host = m.b.addr
	}
	setXForwarded(pr)
}

// setXForwarded does what ProxyRequest.SetXForwarded does after Rewrite
// removed the client's X-Forwarded-* headers, with one allocation for the
// three values instead of one each (this runs on every request).
func setXForwarded(pr *httputil.ProxyRequest) {
	vals := make([]string, 3)
	vals[1] = pr.In.Host
	vals[2] = "http"
	if pr.In.TLS != nil {
		vals[2] = "https"
	}
	h := pr.Out.Header
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		vals[0] = ip
		h["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	h["X-Forwarded-Host"] = vals[1:2:2]
	h["X-Forwarded-Proto"] = vals[2:3:3]
}

// next is the instance of the next attempt: first the one rewrite
// addressed the request to (at addr), unless it left since; else the
// least busy one not tried, among the members of the route in the newest
// table: a failed attempt may have taken long enough (a dial given up
// when its instance left, or timed out) for instances to come and go.
func (rt *route) next(addr string, tried []*backend) (member, bool) {
	if len(tried) == 0 {
		if m, ok := rt.chosen(addr); ok {
			return m, true
		}
	}
	return rt.latest().pick(tried)
}

// chosen is the member that rewrite addressed the request to, while it is
// not gone.
func (rt *route) chosen(addr string) (member, bool) {
	for _, m := range rt.members {
		if m.b.addr == addr {
			return m, !m.b.isGone()
		}
	}
	return member{}, false
}

// latest is the route of rt's key in the newest table: rt itself while it
// did not change, and rt when the key has no route any more (its members
// are then all gone).
func (rt *route) latest() *route {
	if r := rt.proxy.tbl.Load().route(rt.key); r != nil {
		return r
	}
	return rt
}

// outbound is req addressed to m, with the route's prefix stripped when m
// asks for it; a retry gets a fresh copy of the body, nil when it has none.
func (rt *route) outbound(req *http.Request, m member, retry bool) *http.Request {
	out := *req
	u := *req.URL
	u.Host = m.b.addr
	if m.strip && rt.key.prefix != "/" {
		u.Path = stripPrefix(u.Path, rt.key.prefix)
		// The route matched the decoded path: the escaped one goes
		// only when it strips the same way, else it is made again
		// from the stripped path.
		if raw := u.RawPath; raw != "" {
			u.RawPath = ""
			if strings.HasPrefix(raw, rt.key.prefix) && (len(raw) == len(rt.key.prefix) || raw[len(rt.key.prefix)] == '/') {
				u.RawPath = stripPrefix(raw, rt.key.prefix)
			}
		}
	}
	out.URL = &u
	if retry && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil
		}
		body, err := req.GetBody()
		if err != nil {
			return nil
		}
		out.Body = body
	}
	return &out
}

// stripPrefix removes prefix from path (matched at a segment boundary), and
// keeps the result absolute. A path that does not start with prefix (an
// escaped form of it) is left as it is.
func stripPrefix(path, prefix string) string {
	if len(path) < len(prefix) || path[:len(prefix)] != prefix {
		return path
	}
	rest := path[len(prefix):]
	if rest == "" || rest[0] != '/' {
		return "/" + rest
	}
	return rest
}

// pick returns the member with the fewest requests in flight among those
// not tried yet, ties broken at random (reservoir sampling: one pass).
func (rt *route) pick(tried []*backend) (member, bool) {
	var best member
	bestN, ties := int64(-1), 0
	for _, m := range rt.members {
		if isTried(tried, m.b) || m.b.isGone() {
			continue
		}
		n := m.b.inflight.Load()
		switch {
		case bestN < 0 || n < bestN:
			best, bestN, ties = m, n, 1
		case n == bestN:
			ties++
			if rand.IntN(ties) == 0 {
				best = m
			}
		}
	}
	return best, bestN >= 0
}

func isTried(tried []*backend, b *backend) bool {
	for _, t := range tried {
		if t == b {
			return true
		}
	}
	return false
}

// retryable reports whether a request that failed with err before any
// response byte may go to another instance: never when the client left or
// the instance was only slow to answer (it may be working on it); after a
// failed connect (refused, timed out: the instance never saw the request)
// when the body can be replayed; after any other failure (reset, closed)
// only when the method is idempotent too (RFC 9110 9.2.2).
func retryable(req *http.Request, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true // refused, timed out, or given up when the instance left
	}
	if errors.Is(err, context.Canceled) || isTimeout(err) {
		return false
	}
	return idempotent(req.Method)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// errorHandler answers a request that no instance answered: 503 when the
// route has no instance left to try (the last one tried left the catalog
// too), 504 when one was too slow, else 502; one line naming the
// service. A client that went away gets nothing.
func (rt *route) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		w.WriteHeader(499) // nginx's "client closed request", for the metrics only
		return
	}
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, errNoInstance), errors.Is(err, errInstanceLeft):
		code = http.StatusServiceUnavailable
	case isTimeout(err):
		code = http.StatusGatewayTimeout
	}
	rt.proxy.log.Debug("proxy request failed", "route", rt.key.String(), "service", rt.service, "code", code, "err", err)
	http.Error(w, fmt.Sprintf("svcdns proxy: service %s: %v", rt.service, err), code)
}

// wrapBody counts the request as in flight on b until its response body
// is closed (a streamed response is in flight until its end). A 101
// Switching Protocols body is the connection itself, which ReverseProxy
// needs as an io.ReadWriteCloser.
func wrapBody(body io.ReadCloser, b *backend) io.ReadCloser {
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &doneRWC{ReadWriteCloser: rwc, release: release{b: b}}
	}
	return &doneBody{ReadCloser: body, release: release{b: b}}
}

// release takes a request off its backend's in-flight count, once.
type release struct {
	b    *backend
	done bool
}

func (r *release) once() {
	if !r.done {
		r.done = true
		r.b.inflight.Add(-1)
	}
}

type doneBody struct {
	io.ReadCloser
	release
}

func (d *doneBody) Close() error {
	d.once()
	return d.ReadCloser.Close()
}

type doneRWC struct {
	io.ReadWriteCloser
	release
}

func (d *doneRWC) Close() error {
	d.once()
	return d.ReadWriteCloser.Close()
}
