package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

// Config configures a Watcher. The zero value of each field but Catalog is
// its default.
type Config struct {
	Catalog    *catalog.Catalog
	DockerHost string // "" = DOCKER_HOST or the local socket
	Node       string // owner of the containers in the catalog; "" = os.Hostname()
	// AdvertiseIP is the host's address, answered for ports published on
	// 0.0.0.0 / :: and for host-network containers. Zero = detect it (see
	// detectAdvertiseIP); if that fails such ports are answered with the
	// container's address only and host-network containers are left out.
	AdvertiseIP netip.Addr
	// Filters are Docker label filters ("label=env=prod", "label=key"); a
	// container must match all of them. Other filter kinds are refused.
	Filters    []string
	Resync     time.Duration // full list-and-replace interval; 0 = 1 minute
	Logger     *slog.Logger  // nil = discard
	Registerer prometheus.Registerer
}

// Status is a snapshot of the watcher's state. /healthz reports it as its
// "docker" object, in these JSON names; it is an httpapi.DockerStatus.
type Status struct {
	Connected bool      `json:"connected"` // the event stream is up and the catalog synced from it
	Synced    bool      `json:"synced"`    // a full list has been applied at least once
	LastSync  time.Time `json:"last_sync,omitzero"`
	Events    uint64    `json:"events"`               // Docker events received
	Resyncs   uint64    `json:"resyncs"`              // full lists applied, the first included
	Repairs   uint64    `json:"repairs"`              // containers a resync (not the first sync) had to add, remove or update
	LastError string    `json:"last_error,omitempty"` // why the last connection failed or ended; "" while connected
	// LastRepair is the last resync that had to change the catalog; nil
	// until one does.
	LastRepair *Repair `json:"last_repair,omitempty"`
	// InspectFailures counts the inspects that failed, by cause: refused
	// (no connection, or dropped before an answer), timeout, server_error
	// (HTTP 5xx), other.
	InspectFailures map[string]uint64 `json:"inspect_failures,omitempty"`
	// RetriesPending is the containers whose inspect failed, waiting for
	// their retry.
	RetriesPending int `json:"retries_pending"`
	// InspectConcurrency is the inspects allowed in flight now, between 1
	// and 32: halved when the endpoint refuses, times out or answers 5xx,
	// grown back by one per round of successes.
	InspectConcurrency int `json:"inspect_concurrency"`
}

// Health reports whether a full list has been applied and whether the
// event stream is up: what decides /healthz's status.
func (s Status) Health() (synced, connected bool) { return s.Synced, s.Connected }

// Defaults and bounds.
const (
	defaultResync      = time.Minute
	defaultBackoffMin  = 250 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
	defaultMaxQueue    = 4096 // containers waiting for a re-inspect; past it, a full resync
	inspectConcurrency = 8    // inspects in flight after events, at most
	// maxInspects is the most inspects in flight, the limiter's ceiling
	// (limit.go). A sync of 10,000 containers is 10,000 inspects; the
	// daemon serves each on its own goroutine and takes only that
	// container's lock, so 32 keep a many-core daemon busy and ride out the
	// few containers whose lock is held by a stop or rm (100 ms and more)
	// without holding up the rest, while svcdns holds at most 32
	// connections (file descriptors on both ends) and the daemon 32
	// requests, not thousands. Past the cores on both ends more buys
	// nothing: on 2 cores 8 and 64 sync as fast.
	maxInspects = 32
	// A failed inspect or list is retried after a backoff from retryMin,
	// doubled per failure in a row, up to retryMax.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// recoverQuiet is how long the endpoint must go without a failure,
	// nothing waiting for a retry, before its recovery is logged.
	recoverQuiet = 2 * time.Second
	callTimeout  = 30 * time.Second // per list or inspect; the event stream has none
	warnRepeat   = time.Minute      // an identical connection error is logged at WARN once per this
)

// Watcher keeps the catalog's Docker containers of one node equal to the
// running containers of one Docker host: it lists them, follows the event
// stream, and lists again after every reconnect and every Resync.
//
// Run is called once; Status and Synced are safe to call from any goroutine
// at any time.
type Watcher struct {
	docker   *daemon
	log      *slog.Logger
	met      *metrics
	resync   time.Duration
	running  atomic.Bool
	tunables tunables
	store    *store // owned by the goroutine running Run
	// netsFailing and spanning are the last network list's outcome and
	// the names of the networks spanning hosts it found, netsRetries the
	// lists failed in a row as an overloaded endpoint fails; owned by the
	// goroutine running Run.
	netsFailing bool
	netsRetries int
	spanning    []string

	limit    *limiter
	endpoint *endpoint

	// pending counts the containers the refresher is inspecting or will
	// inspect (retries included); 0 once every event read so far is
	// stored.
	pending  atomic.Int64
	retrying atomic.Int64 // Status().RetriesPending
	// syncing is whether a full sync is under way or due, the queue
	// overflowed (a sync follows), or a network list is in flight;
	// published at the end of each loop turn, for tests that wait until
	// the watcher has settled.
	syncing atomic.Bool
	ready   atomic.Bool // Status().Synced, without the lock

	mu     sync.Mutex
	status Status
}

// tunables are constants that tests shrink.
type tunables struct {
	backoffMin, backoffMax time.Duration // reconnects
	retryMin, retryMax     time.Duration // failed inspects and lists
	maxQueue               int
}

// New returns a watcher for cfg. It does not contact Docker: Run does, and
// keeps trying until the daemon answers.
func New(cfg Config) (*Watcher, error) {
	cli, err := newDockerClient(cfg.DockerHost)
	if err != nil {
		return nil, err
	}
	return newWatcher(cfg, cli)
}

func newWatcher(cfg Config, api dockerAPI) (*Watcher, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("watcher: no catalog")
	}
	lf, err := parseFilters(cfg.Filters)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	node := cfg.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("watcher: node name: %w", err)
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	adv := cfg.AdvertiseIP.Unmap()
	if !adv.IsValid() {
		if adv, err = detectAdvertiseIP(); err != nil {
			log.Warn("no advertise address: ports published on 0.0.0.0 are answered with container addresses, host-network containers are left out; set --advertise-ip", "err", err)
		} else {
			log.Info("advertise address detected", "ip", adv)
		}
	}
	lim := newLimiter(maxInspects, func(n int) { m.concurrency.Set(float64(n)) })
	return &Watcher{
		docker: &daemon{api: api, filters: lf, conv: convertOptions{Node: node, AdvertiseIP: adv}},
		log:    log,
		met:    m,
		resync: cmp.Or(cfg.Resync, defaultResync),
		tunables: tunables{backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax,
			retryMin: retryMin, retryMax: retryMax, maxQueue: defaultMaxQueue},
		store: &store{cat: cfg.Catalog, node: node, log: newChangelog(log, m.rejected), delay: m.eventDelay,
			drains: newDrainState(defaultDrainGrace)},
		limit:    lim,
		endpoint: &endpoint{log: log, limit: lim, quiet: recoverQuiet},
		status: Status{InspectFailures: map[string]uint64{
			causeRefused: 0, causeTimeout: 0, causeServer: 0, causeOther: 0,
		}},
	}, nil
}

// Synced reports whether a full list of the Docker host has been applied at
// least once. It stays true while Docker is away: the catalog then serves
// what it last saw.
//
// The DNS server asks on every query, so this is one atomic load.
func (w *Watcher) Synced() bool { return w.ready.Load() }

// Status returns a snapshot of the watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	st := w.status
	st.InspectFailures = maps.Clone(w.status.InspectFailures)
	w.mu.Unlock()
	st.RetriesPending = int(w.retrying.Load())
	st.InspectConcurrency = w.limit.current()
	return st
}

// Run follows the Docker host until ctx is done, then returns nil. A daemon
// that is absent or goes away is not an error: Run keeps the catalog as it
// is (stale answers beat none) and retries with capped exponential backoff
// and jitter, logging one line per attempt.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watcher: Run is already running")
	}
	defer w.running.Store(false)
	defer w.docker.close()
	defer w.endpoint.stop()

	var (
		attempt    int
		lastWarn   string
		lastWarnAt time.Time
	)
	for {
		began := time.Now()
		synced, err := w.session(ctx)
		if ctx.Err() != nil {
			w.setDisconnected("")
			return nil
		}
		w.setDisconnected(err.Error())
		// A connection that held for a while starts the backoff again; one
		// that drops right after each sync keeps backing off, so a broken
		// proxy does not turn into a full list every 250 ms.
		if synced && time.Since(began) >= w.tunables.backoffMax {
			attempt = 0
		}
		attempt++
		delay := backoff(attempt, w.tunables.backoffMin, w.tunables.backoffMax)

		msg := "docker unavailable, retrying"
		if synced {
			msg = "docker event stream lost, serving the last known containers until it is back"
		}
		level := slog.LevelWarn
		if now := time.Now(); err.Error() == lastWarn && now.Sub(lastWarnAt) < warnRepeat {
			level = slog.LevelDebug
		} else {
			lastWarn, lastWarnAt = err.Error(), now
		}
		w.log.Log(ctx, level, msg, "attempt", attempt, "delay", delay.Round(time.Millisecond), "err", err)

		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		w.met.reconnects.Inc()
	}
}

func (w *Watcher) setConnected() {
	w.met.connected.Set(1)
	w.mu.Lock()
	w.status.Connected = true
	w.status.LastError = ""
	w.mu.Unlock()
}

func (w *Watcher) setDisconnected(lastErr string) {
	w.met.connected.Set(0)
	w.mu.Lock()
	w.status.Connected = false
	w.status.LastError = lastErr
	w.mu.Unlock()
}

// backoff is the wait before attempt n (1, 2, …): min doubled per attempt,
// capped at max, then drawn from its upper half so that svcdns nodes that
// lost the same daemon do not retry in step.
func backoff(n int, min, max time.Duration) time.Duration {
	d := max
	if n < 32 {
		if x := min << (n - 1); x > 0 && x < max {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
