package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/bufpool"
	"github.com/svcdns/svcdns/internal/httpstatus"
)

// Config configures a Proxy. The zero value of each field but Catalog is
// its default.
type Config struct {
	Catalog *catalog.Catalog // required
	// Zone is the DNS zone of the <service>.service.<zone> host names;
	// "" = "local".
	Zone string
	// Node is this svcdns node: its instances are reached at their
	// container address on a bridge (never an overlay's, which the host
	// cannot route to), else at their published one; other nodes'
	// instances at their published address only.
	Node string
	// Published reaches this node's instances at their published address
	// too, where they have one (--address-mode host).
	Published bool
	// ConnectTimeout bounds connecting to an instance; 0 = 5s.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for an instance's response headers
	// once the request is sent; 0 = 60s.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections, to clients and to
	// instances, idle this long; 0 = 30s. Keep it below the instances'
	// own keep-alive timeout.
	IdleTimeout time.Duration
	// MaxRetryBody is the largest request body buffered so that the
	// request can be retried on another instance; 0 = 64 KiB.
	MaxRetryBody int64
	// Logger gets route changes at INFO and conflicts at WARN; nil =
	// discard. Requests are never logged.
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil = metrics not registered
}

// Defaults of Config.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultHeaderTimeout  = 60 * time.Second
	DefaultIdleTimeout    = 30 * time.Second
	DefaultMaxRetryBody   = 64 << 10
	// MaxHeaderBytes is the most a request's header may hold (431 past
	// it), Go's own default.
	MaxHeaderBytes = http.DefaultMaxHeaderBytes
	// readHeaderTimeout bounds a client's request header (slowloris).
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
	// maxAttempts bounds the instances one request is tried on.
	maxAttempts = 4
	// maxIdlePerInstance bounds the idle connections kept to one
	// instance. Go's default of 2 makes a dial per request under load,
	// and TIME_WAIT piles up.
	maxIdlePerInstance = 256
)

// Proxy is the HTTP reverse proxy, an http.Handler. It is safe for
// concurrent use; Run keeps its table up to date.
type Proxy struct {
	cfg     Config
	cat     *catalog.Catalog
	log     *slog.Logger
	met     *metrics
	dialer  *net.Dialer // every backend's transport dials with it
	bufPool bufpool.Pool
	builder builder
	tbl     atomic.Pointer[table]
	errLog  *slogWriter
}

var _ http.Handler = (*Proxy)(nil)

// New checks cfg and returns a Proxy with the catalog's current routes.
func New(cfg Config) (*Proxy, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("proxy: no catalog")
	}
	if cfg.Zone == "" {
		cfg.Zone = "local"
	}
	cfg.Zone = strings.TrimSuffix(strings.ToLower(cfg.Zone), ".")
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxRetryBody == 0 {
		cfg.MaxRetryBody = DefaultMaxRetryBody
	}
	if cfg.ConnectTimeout < 0 || cfg.HeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxRetryBody < 0 {
		return nil, errors.New("proxy: negative timeout or body size")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg: cfg, cat: cfg.Catalog, log: cfg.Logger, met: met,
		builder: builder{zone: cfg.Zone, node: cfg.Node, published: cfg.Published},
		errLog:  &slogWriter{log: cfg.Logger},
	}
	p.dialer = &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	p.builder.transport = p.transportFor
	p.rebuild()
	return p, nil
}

// transportFor makes the transport of one backend: its connections are
// the backend's alone (see backend), dialed by backend.dial. Plain
// HTTP/1.1 requests go over h1Transport's own, the rest (upgrades, large
// bodies) through an http.Transport.
func (p *Proxy) transportFor(be *backend) *h1Transport {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return be.dial(ctx, p.dialer, network, addr)
	}
	return &h1Transport{
		addr:          be.addr,
		dial:          dial,
		headerTimeout: p.cfg.HeaderTimeout,
		idleTimeout:   p.cfg.IdleTimeout,
		maxIdle:       maxIdlePerInstance,
		fallback:      p.httpTransport(dial),
	}
}

// httpTransport is net/http's transport with the proxy's settings, for
// what h1Transport does not send itself.
func (p *Proxy) httpTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		// Never HTTP_PROXY from the environment: instances are local.
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerInstance,
		IdleConnTimeout:       p.cfg.IdleTimeout,
		ResponseHeaderTimeout: p.cfg.HeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// Accept-Encoding passes through as the client sent it.
		DisableCompression: true,
	}
}

// Run rebuilds the route table after every catalog change until ctx is
// done; it returns nil then.
func (p *Proxy) Run(ctx context.Context) error {
	defer p.closeIdle()
	idx := p.tbl.Load().index
	for {
		next, err := p.cat.Wait(ctx, idx)
		if err != nil {
			return nil //nolint:nilerr // ctx done: a clean stop
		}
		idx = next
		p.rebuild()
	}
}

// closeIdle closes the idle connections to every backend. Run's
// goroutine, which owns the builder, calls it.
func (p *Proxy) closeIdle() {
	for _, be := range p.builder.backends {
		be.closeIdle()
	}
}

// rebuild makes the table anew from the catalog, wires the routes that
// changed, and swaps it in.
func (p *Proxy) rebuild() {
	old := p.tbl.Load()
	t, changed := p.builder.build(p.cat, old)
	var before *table
	if old != nil {
		before = old
	} else {
		before = &table{}
	}
	for _, k := range changed {
		r := t.byHost[k.host][k.prefix]
		if r == nil {
			continue
		}
		r.proxy = p
		r.met = p.met.route(k.String(), r.service)
		r.rp = &httputil.ReverseProxy{
			Rewrite:      r.rewrite,
			Transport:    r,
			BufferPool:   &p.bufPool,
			ErrorHandler: r.errorHandler,
			ErrorLog:     p.errLog.logger(),
		}
	}
	// Logged before the swap, so that whoever sees the new table also
	// finds its lines (a test, a user tailing the log).
	p.logChanges(before, t, changed)
	p.tbl.Store(t)
	if old != nil {
		close(old.next)
	}
}

// logChanges logs the routes that appeared, went or became conflicts,
// among the keys that changed.
func (p *Proxy) logChanges(old, t *table, changed []routeKey) {
	for _, k := range changed {
		o, r := old.byHost[k.host][k.prefix], t.byHost[k.host][k.prefix]
		switch {
		case r == nil:
			if o != nil && !o.byName {
				p.log.Info("proxy route removed", "route", k.String(), "service", o.service)
			}
			if o != nil {
				p.met.forget(k.String(), o.service)
			}
		case r.conflict != "" && (o == nil || o.conflict != r.conflict):
			p.log.Warn("proxy route conflict", "route", k.String(), "services", r.service, "detail", r.conflict)
		case r.conflict == "" && o != nil && o.conflict != "":
			p.log.Info("proxy route conflict resolved", "route", k.String(), "service", r.service)
		case o == nil && !r.byName:
			p.log.Info("proxy route added", "route", k.String(), "service", r.service, "instances", len(r.members))
		}
		if o != nil && r != nil && o.service != r.service {
			p.met.forget(k.String(), o.service)
		}
	}
}

// ServeHTTP sends r to an instance of its route, or answers 404 (no
// route) or 503 (a conflict, or no passing instance) with one line.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := p.tbl.Load()
	rt := t.match(hostOf(r.Host), r.URL.Path)
	if rt == nil {
		p.met.unrouted.Inc()
		http.Error(w, fmt.Sprintf("svcdns proxy: no route for host %q path %q", clip(r.Host), clip(r.URL.Path)), http.StatusNotFound)
		return
	}
	sw := &httpstatus.Writer{ResponseWriter: w}
	switch {
	case rt.conflict != "":
		http.Error(sw, "svcdns proxy: "+rt.conflict, http.StatusServiceUnavailable)
	case len(rt.members) == 0:
		http.Error(sw, fmt.Sprintf("svcdns proxy: service %s has no passing instance for route %s", rt.service, rt.key), http.StatusServiceUnavailable)
	default:
		if err := p.bufferBody(r); err != nil {
			http.Error(sw, "svcdns proxy: read request body: "+err.Error(), http.StatusBadRequest)
			break
		}
		rt.rp.ServeHTTP(sw, r)
	}
	rt.met.observe(sw.Status(), time.Since(start))
}

// bufferBody reads a small body of known length into memory, so that a
// failed attempt can be replayed on another instance (GetBody). Larger and
// chunked bodies stream through and are never retried.
func (p *Proxy) bufferBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 || r.ContentLength > p.cfg.MaxRetryBody {
		return nil
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return nil
}

// hostOf is a Host header lower-cased, without port or trailing dot.
func hostOf(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// Serve answers HTTP on ln until ctx is done, then shuts down, giving the
// requests in flight up to 5 seconds. It closes ln.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       p.cfg.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          p.errLog.logger(),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve proxy on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, stop := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer stop()
	err := srv.Shutdown(sctx)
	cancel() // ends upgraded (WebSocket) connections, which Shutdown does not track
	<-errc
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down proxy on %s: %w", ln.Addr(), err)
	}
	return nil
}

// slogWriter turns the log.Logger lines of net/http (a client's broken
// request, a copy error) into DEBUG lines: they are about one request.
type slogWriter struct {
	log  *slog.Logger
	once sync.Once
	l    *log.Logger
}

func (s *slogWriter) logger() *log.Logger {
	s.once.Do(func() { s.l = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug) })
	return s.l
}

// clip cuts a client's value for an error line.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
