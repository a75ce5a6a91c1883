package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/httpstatus"
)

// Config configures an API. The zero value of each field but Catalog is its
// default.
type Config struct {
	Catalog *catalog.Catalog // required
	// Token, when not "", is the bearer token that PUT and DELETE must carry
	// (Authorization: Bearer <token>). Reads never need it.
	Token string
	// Node owns the instances registered through the API; "" = os.Hostname().
	Node string
	// Gatherer is served at GET /metrics; nil = no /metrics endpoint (404).
	Gatherer prometheus.Gatherer
	// Queries returns the DNS queries answered so far by response code
	// ("NOERROR", "NXDOMAIN", ...), the dashboard's query rates are sampled
	// from it every 5 seconds; svcdns passes the DNS server's own counters
	// (svcdns_dns_queries_total). It must be cheap: nil = no rates.
	Queries func() map[string]float64
	// Registerer takes this package's own metrics (svcdns_http_* and
	// svcdns_catalog_*); nil = they are not registered anywhere.
	Registerer prometheus.Registerer
	// Docker reports the Docker watcher's state for /healthz; nil = svcdns
	// runs without Docker, and /healthz reports "ok" with "docker": null.
	Docker func() DockerStatus
	// Logger gets one line per registration change and a WARN per internal
	// error; reads are never logged. nil = discard.
	Logger *slog.Logger
	// MaxLongPolls bounds the blocking GET /v1/services/{name}?index=N
	// requests waiting at once; past it they get 429. 0 = 1024.
	MaxLongPolls int
	// Routes answers GET /v1/routes (the HTTP proxy's route table); nil =
	// the proxy is off, and the endpoint says so with a 404.
	Routes http.Handler
	// Now is the clock that TTL expiry times are computed from; nil =
	// time.Now. The catalog's expiry reaper must use the same clock.
	Now func() time.Time
	// Explain answers GET /v1/explain and the dashboard's "why this
	// answer" box; nil = 404.
	Explain ExplainFunc
	// PrometheusSD is which instances GET /v1/prometheus lists: SDLabels
	// ("" too) or SDAll.
	PrometheusSD string
	// MaxStreams bounds the GET /v1/events streams open at once; past it
	// they get 429. 0 = 256.
	MaxStreams int
	// Cluster lists the gossip cluster's nodes for GET /v1/nodes and
	// /healthz; nil = clustering is off (GET /v1/nodes answers 404).
	Cluster func() []Node
}

// DockerStatus is the Docker watcher's state. /healthz encodes the value
// itself as its "docker" object, so the fields are the watcher's to define
// and document (svcdns passes a watcher.Status), and reads from Health the
// two facts that decide the status: whether a full list of the Docker host
// has been applied, and whether the event stream is up.
//
// httpapi does not import the watcher (readers and sources of the catalog
// stay apart); cmd/svcdns passes func() httpapi.DockerStatus { return w.Status() }.
type DockerStatus interface {
	Health() (synced, connected bool)
}

// Limits of the API.
const (
	// MaxBodyBytes is the largest PUT body accepted; a larger one gets 413.
	MaxBodyBytes = 1 << 20
	// MaxWait is the longest a long poll blocks, and its default when
	// ?index is given without ?wait.
	MaxWait = 5 * time.Minute
	// MaxTags is the most tags one instance may carry.
	MaxTags = 32
	// MinTTL and MaxTTL bound the ttl of a registration.
	MinTTL = time.Second
	MaxTTL = 24 * time.Hour

	defaultMaxLongPolls = 1024
	shutdownTimeout     = 5 * time.Second
	indexHeader         = "X-Svcdns-Index"
)

// API is svcdns's HTTP API, an http.Handler. It is safe for concurrent use;
// Serve runs it on a listener with timeouts fit for the long poll.
type API struct {
	cat       *catalog.Catalog
	tokenSum  [sha256.Size]byte // sha256 of Config.Token, compared in constant time
	auth      bool
	node      string
	docker    func() DockerStatus
	cluster   func() []Node
	log       *slog.Logger
	met       *metrics
	now       func() time.Time
	polls     chan struct{} // one token per long poll in progress
	streams   chan struct{} // one token per event stream open
	feed      *feed
	rates     *rates
	explainer ExplainFunc
	sdAll     bool
	mux       *http.ServeMux
}

var _ http.Handler = (*API)(nil)

// New checks cfg and returns an API, with its metrics registered on
// cfg.Registerer.
func New(cfg Config) (*API, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("httpapi: no catalog")
	}
	if cfg.MaxLongPolls < 0 || cfg.MaxStreams < 0 {
		return nil, fmt.Errorf("httpapi: max long polls %d, max streams %d: negative", cfg.MaxLongPolls, cfg.MaxStreams)
	}
	a := &API{
		cat:    cfg.Catalog,
		auth:   cfg.Token != "",
		node:   cfg.Node,
		docker: cfg.Docker, cluster: cfg.Cluster,
		log: cfg.Logger,
		now: cfg.Now,
		mux: http.NewServeMux(),

		explainer: cfg.Explain,
		sdAll:     cfg.PrometheusSD == SDAll,
	}
	if sd := cfg.PrometheusSD; sd != "" && sd != SDLabels && sd != SDAll {
		return nil, fmt.Errorf("httpapi: prometheus sd %q: want %s or %s", sd, SDLabels, SDAll)
	}
	if a.auth {
		a.tokenSum = sha256.Sum256([]byte(cfg.Token))
	}
	if a.node == "" {
		a.node, _ = os.Hostname()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	n := cfg.MaxLongPolls
	if n == 0 {
		n = defaultMaxLongPolls
	}
	a.polls = make(chan struct{}, n)
	a.streams = make(chan struct{}, cmp.Or(cfg.MaxStreams, defaultMaxStreams))
	a.feed = newFeed(cfg.Catalog, a.now)
	a.rates = newRates(cfg.Queries, a.now)
	met, err := newMetrics(cfg.Registerer, cfg.Catalog)
	if err != nil {
		return nil, err
	}
	a.met = met

	a.mux.HandleFunc("GET /v1/services", a.handleServices)
	a.mux.HandleFunc("GET /v1/services/{name}", a.handleService)
	a.mux.HandleFunc("GET /v1/containers", a.handleContainers)
	a.mux.HandleFunc("PUT /v1/instances/{id}", a.requireToken(a.handleRegister))
	a.mux.HandleFunc("DELETE /v1/instances/{id}", a.requireToken(a.handleDeregister))
	a.mux.HandleFunc("GET /healthz", a.handleHealth)
	a.mux.HandleFunc("GET /v1/nodes", a.handleNodes)
	a.mux.HandleFunc("GET /v1/events", a.handleEvents)
	a.mux.HandleFunc("GET /v1/dashboard", a.handleDashboardJSON)
	a.mux.HandleFunc("GET /v1/explain", a.handleExplain)
	a.mux.HandleFunc("GET /v1/prometheus", a.handlePrometheusSD)
	a.mux.HandleFunc("GET /{$}", a.handlePage)
	a.mux.Handle("GET /ui/", uiHandler())
	if cfg.Routes != nil {
		a.mux.Handle("GET /v1/routes", cfg.Routes)
	} else {
		a.mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "the HTTP proxy is off: start svcdns with --proxy-addr")
		})
	}
	if cfg.Gatherer != nil {
		a.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLogger{a.log},
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	return a, nil
}

// ServeHTTP routes r, answers unknown paths with 404 and wrong methods with
// 405 (both JSON), and counts the request under its route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &httpstatus.Writer{ResponseWriter: w}
	h, pattern := a.mux.Handler(r)
	route := routeOf(pattern)
	if pattern == "" {
		// The mux answers no match with text: ask it which of 404 and 405
		// it means (and which methods it allows), then answer in JSON.
		a.unrouted(sw, r, h)
	} else {
		a.mux.ServeHTTP(sw, r)
	}
	a.met.observe(sw.Status(), r.Method, route, time.Since(start))
}

// routeOf is the path part of a mux pattern ("GET /v1/services/{name}" →
// "/v1/services/{name}"): the route label of the metrics, never a raw path.
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

func (a *API) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &captureWriter{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.code == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: %s",
			clip(r.Method), clip(r.URL.Path), allow))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s; see GET /v1/services, /v1/containers, /healthz",
		clip(r.Method), clip(r.URL.Path)))
}

// requireToken wraps a write handler: when a token is configured the
// request must carry it as a bearer token, else 401.
func (a *API) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.auth {
			next(w, r)
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svcdns"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: writes need the header Authorization: Bearer <token>")
			return
		}
		// Hashing first makes the comparison constant-time in the length
		// of the token too.
		sum := sha256.Sum256([]byte(got))
		if !constantTimeEqual(sum, a.tokenSum) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svcdns", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong bearer token")
			return
		}
		next(w, r)
	}
}

// Serve answers HTTP on ln until ctx is done, then shuts down: long polls
// in progress return at once (with what they have), other requests get
// up to 5 seconds to finish. It returns nil after a clean shutdown, and an
// error when ln fails or the shutdown runs out of time. Serve closes ln.
func (a *API) Serve(ctx context.Context, ln net.Listener) error {
	// Every request's context derives from base, so cancelling it ends
	// the long polls that would otherwise hold Shutdown for minutes.
	base, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      MaxWait + time.Minute, // the longest long poll, and time to write its answer
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// The dashboard's change log and query rates run as long as the
	// server does.
	var bg sync.WaitGroup
	defer func() { cancel(); bg.Wait() }()
	bg.Go(func() { a.feed.run(base) })
	bg.Go(func() { a.rates.run(base) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	cancel()
	sctx, stop := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer stop()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed, once Shutdown has closed the listener
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down http server on %s: %w", ln.Addr(), err)
	}
	return nil
}

// setIndex sets the X-Svcdns-Index header.
func setIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set(indexHeader, strconv.FormatUint(idx, 10))
}

// captureWriter records what the mux's own 404 and 405 handlers write.
type captureWriter struct {
	header http.Header
	code   int
}

func (w *captureWriter) Header() http.Header         { return w.header }
func (w *captureWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *captureWriter) WriteHeader(code int)        { w.code = code }

// promLogger sends promhttp's errors (a collector failing) to the log.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("serve metrics", "err", fmt.Sprint(v...)) }
