package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

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

// Status is a snapshot of the watcher's state, for /healthz.
type Status struct {
	Connected bool // the event stream is up and the catalog synced from it
	Synced    bool // a full list has been applied at least once
	LastSync  time.Time
	Events    uint64 // Docker events received
	Resyncs   uint64 // full lists applied, the first included
	Repairs   uint64 // containers a resync (not the first sync) had to add, remove or update
	LastError string // why the last connection failed or ended; "" while connected
}

// Defaults and bounds.
const (
	defaultResync      = time.Minute
	defaultBackoffMin  = 250 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
	defaultMaxQueue    = 4096 // containers waiting for a re-inspect; past it, a full resync
	inspectConcurrency = 8    // inspects in flight after events
	// syncConcurrency is the inspects in flight during a full sync. A sync
	// of 10,000 containers is 10,000 inspects; the daemon serves each on
	// its own goroutine and takes only that container's lock, so 32 keep a
	// many-core daemon busy and ride out the few containers whose lock is
	// held by a stop or rm (100 ms and more) without holding up the rest,
	// while svcdns holds at most 32 connections (file descriptors on both
	// ends) and the daemon 32 requests, not thousands. Past the cores on
	// both ends more buys nothing: on 2 cores 8 and 64 sync as fast.
	syncConcurrency = 32
	callTimeout     = 30 * time.Second // per list or inspect; the event stream has none
	warnRepeat      = time.Minute      // an identical connection error is logged at WARN once per this
)

// Reasons for a full sync, the reason label of resyncs_total.
const (
	syncConnect  = "connect"
	syncPeriodic = "periodic"
	syncOverflow = "overflow"
)

// Watcher keeps the catalog's Docker containers of one node equal to the
// running containers of one Docker host: it lists them, follows the event
// stream, and lists again after every reconnect and every Resync.
//
// Run is called once; Status and Synced are safe to call from any goroutine
// at any time.
type Watcher struct {
	cat       *catalog.Catalog
	docker    dockerAPI
	log       *slog.Logger
	met       *metrics
	node      string
	filters   []labelFilter
	convOpts  convertOptions
	resync    time.Duration
	running   atomic.Bool
	tunables  tunables
	loopState // owned by the goroutine running Run

	// pending counts the containers the refresher is inspecting or will
	// inspect; 0 once every event read so far is stored.
	pending atomic.Int64
	synced  atomic.Bool // Status().Synced, without the lock

	mu     sync.Mutex
	status Status
}

// tunables are constants that tests shrink.
type tunables struct {
	backoffMin, backoffMax time.Duration
	maxQueue               int
}

// loopState is what only Run's goroutine reads and writes.
type loopState struct {
	known    map[string]summary // the containers this watcher stored, for log lines
	reported map[string]string  // container id -> problems already logged
	// staged and afterWrite are the session loop's writes of this turn
	// (stage, flush).
	staged     []catalog.Change
	afterWrite []func(error)
	syncs      int
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
	return &Watcher{
		cat:      cfg.Catalog,
		docker:   api,
		log:      log,
		met:      m,
		node:     node,
		filters:  lf,
		convOpts: convertOptions{Node: node, AdvertiseIP: adv},
		resync:   cmp.Or(cfg.Resync, defaultResync),
		tunables: tunables{backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax, maxQueue: defaultMaxQueue},
		loopState: loopState{
			known:    make(map[string]summary),
			reported: make(map[string]string),
		},
	}, nil
}

// Synced reports whether a full list of the Docker host has been applied at
// least once. It stays true while Docker is away: the catalog then serves
// what it last saw.
//
// The DNS server asks on every query, so this is one atomic load.
func (w *Watcher) Synced() bool { return w.synced.Load() }

// Status returns a snapshot of the watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
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
	defer w.closeIdle()

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

// session is one connection: subscribe, list, replace, then apply events
// until the stream ends, a call fails or ctx is done. synced reports whether
// the list was applied. The error is never nil.
func (w *Watcher) session(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	q := newEventQueue(w.tunables.maxQueue, func(n int) { w.met.queueLength.Set(float64(n)) })

	// Why subscribe before listing: a container that starts after the list
	// but before the subscription would otherwise stay unknown until the
	// next resync. Subscribed first, its start event waits in the queue and
	// is applied after the list; if the list saw it too, applying it again
	// changes nothing.
	msgs, errs := w.docker.Events(ctx, eventOptions(time.Now()))
	streamDone := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		streamDone <- w.readEvents(ctx, msgs, errs, q)
	}()
	defer func() {
		cancel() // ends the stream and the reader
		wg.Wait()
		w.met.queueLength.Set(0)
	}()

	if err := w.fullSync(ctx, q, syncConnect); err != nil {
		return false, err
	}
	w.setConnected()
	defer w.flush() // a session that ends mid-turn still writes what it found

	ref := newRefresher(ctx, w)
	defer func() {
		cancel() // ends the inspects in flight at once
		ref.wait()
		w.pending.Store(0)
		w.met.pending.Set(0)
	}()
	tick := time.NewTicker(w.resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-streamDone:
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by the daemon")
			}
			return true, fmt.Errorf("docker event stream: %w", err)
		case <-tick.C:
			ref.invalidate()
			if err := w.fullSync(ctx, q, syncPeriodic); err != nil {
				return true, err
			}
		case d := <-ref.done:
			if err := ref.finishAll(d); err != nil {
				return true, err
			}
		case <-q.ready:
			ids, gone, overflow := q.take()
			if overflow {
				w.log.Warn("docker event queue overflowed, resyncing", "max", w.tunables.maxQueue)
				ref.invalidate()
				if err := w.fullSync(ctx, q, syncOverflow); err != nil {
					return true, err
				}
				continue
			}
			for _, id := range ids {
				// A container an event said stopped running leaves the
				// answers now, not when its inspect returns; the inspect
				// then decides (a restarted container comes straight back).
				if gone[id] {
					w.remove(id, "stopped")
				}
				ref.want(id)
			}
			if ref.takeOverflow() {
				w.log.Warn("docker event queue overflowed, resyncing", "max", w.tunables.maxQueue)
				if err := w.fullSync(ctx, q, syncOverflow); err != nil {
					return true, err
				}
			}
		}
		// The end of a turn: what it found goes to the catalog in one write.
		w.flush()
		ref.report()
	}
}

// readEvents moves container ids from the event stream into q until the
// stream ends or ctx is done. Reading never waits on Docker calls, so the
// daemon does not drop events for a slow subscriber while the apply loop
// inspects.
func (w *Watcher) readEvents(ctx context.Context, msgs <-chan events.Message, errs <-chan error, q *eventQueue) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-errs:
			if !ok || err == nil {
				return io.EOF
			}
			return err
		case m, ok := <-msgs:
			if !ok {
				msgs = nil // wait for the error
				continue
			}
			if id := eventContainer(m); id != "" {
				q.add(id, stoppedRunning(m))
			}
			// Counted after queueing: whoever sees the count sees the queue.
			w.met.events.WithLabelValues(actionLabel(string(m.Action))).Inc()
			w.mu.Lock()
			w.status.Events++
			w.mu.Unlock()
		}
	}
}

// fullSync lists the host's containers, inspects them, and makes the
// catalog equal to what it found, in one transaction.
func (w *Watcher) fullSync(ctx context.Context, q *eventQueue, reason string) error {
	w.flush() // the turn's writes come before the list, which supersedes them
	began := time.Now()
	// Why empty the queue now, before listing: the list below sees every
	// container as it is after the events queued so far. Events that arrive
	// from here on stay queued and are applied after the replace, so a
	// container that dies between its inspect and the replace is inspected
	// again and removed right after (re-inspect after insert,
	// weaveworks/weave#821).
	q.take()

	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	list, err := w.docker.ContainerList(lctx, listOptions(w.filters))
	cancel()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	inspected, err := w.inspectAll(ctx, list)
	if err != nil {
		return err
	}
	records := make([]catalog.ContainerRecord, 0, len(inspected))
	for _, m := range inspected {
		rec, skip := w.accept(m)
		if skip != "" {
			w.log.Debug("container not served", "container", m.name, "reason", skip)
			continue
		}
		records = append(records, rec)
	}
	slices.SortFunc(records, func(a, b catalog.ContainerRecord) int { return strings.Compare(a.Container.ID, b.Container.ID) })

	res, err := w.cat.ReplaceNode(catalog.SourceDocker, w.node, records)
	if err != nil {
		return fmt.Errorf("replace containers of node %s: %w", w.node, err)
	}
	first := w.syncs == 0
	w.syncs++
	w.logReplace(records, first, reason)

	now := time.Now()
	w.met.resyncs.WithLabelValues(reason).Inc()
	w.met.lastSync.Set(float64(now.UnixNano()) / 1e9)
	w.met.syncDuration.Observe(now.Sub(began).Seconds())
	repairs := 0
	if !first {
		repairs = res.Repairs()
		w.met.repairs.Add(float64(repairs))
	}
	w.mu.Lock()
	w.status.Synced = true
	w.synced.Store(true)
	w.status.LastSync = now
	w.status.Resyncs++
	w.status.Repairs += uint64(repairs)
	w.mu.Unlock()

	level := slog.LevelDebug
	switch {
	case res.Conflicts > 0:
		// Another node owns some of these containers: two svcdns nodes
		// are watching one Docker host under different --node names.
		level = slog.LevelWarn
	case reason != syncPeriodic || repairs > 0:
		level = slog.LevelInfo
	}
	w.log.Log(ctx, level, "docker containers synced", "reason", reason, "containers", len(records),
		"added", res.Added, "removed", res.Removed, "updated", res.Updated, "conflicts", res.Conflicts,
		"duration", now.Sub(began).Round(time.Microsecond))
	return nil
}

// inspectAll inspects the listed containers, syncConcurrency at a time, and
// maps each as it arrives, so that mapping runs in parallel with the
// inspects and no full inspect response outlives its worker. A container
// gone since the list is left out; any other failure fails the sync, which
// never replaces the catalog with a partial view.
func (w *Watcher) inspectAll(ctx context.Context, list []container.Summary) ([]mapped, error) {
	out := make([]mapped, len(list))
	found := make([]bool, len(list))
	g, gctx := errgroup.WithContext(ctx)
	// A few workers that take the next container in turn, not a goroutine
	// per container: each worker's stack grows once to the depth of an HTTP
	// round trip and a JSON decode, where 10,000 fresh goroutines would each
	// grow (and copy) theirs again.
	var next atomic.Int64
	for range min(syncConcurrency, len(list)) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				id := list[i].ID
				ictx, cancel := context.WithTimeout(gctx, callTimeout)
				resp, err := w.docker.ContainerInspect(ictx, id)
				cancel()
				switch {
				case err == nil:
					out[i], found[i] = w.mapContainer(resp), true
				case cerrdefs.IsNotFound(err):
				default:
					if gctx.Err() == nil {
						w.met.inspectErrors.Inc()
					}
					return fmt.Errorf("inspect container %s: %w", id, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := out[:0]
	for i := range out {
		if found[i] {
			kept = append(kept, out[i])
		}
	}
	return kept, nil
}

// refresher inspects the containers that events named and stores what it
// finds, with one inspect at a time per container and up to
// inspectConcurrency in all, so one slow inspect (during docker rm -f the
// daemon holds it for 100 ms and more) never holds up the others. Results
// are stored by the session's goroutine, the only one that writes events to
// the catalog. An event for a container whose inspect is in flight makes
// that result stale: it is thrown away and the container inspected again,
// so the last result stored always comes from an inspect started after the
// last event.
//
// All methods but the inspect goroutines run on the session's goroutine.
type refresher struct {
	w        *Watcher
	ctx      context.Context
	inflight map[string]bool // id -> stale (an event came after its inspect started)
	waiting  []string        // ids waiting for a slot, in event order
	queued   map[string]bool
	overflow bool
	done     chan inspectDone // buffered: an inspect never blocks on sending
	wg       sync.WaitGroup
}

type inspectDone struct {
	id  string
	res inspectResult
}

func newRefresher(ctx context.Context, w *Watcher) *refresher {
	return &refresher{w: w, ctx: ctx, inflight: map[string]bool{}, queued: map[string]bool{},
		done: make(chan inspectDone, inspectConcurrency)}
}

// want asks for id to be inspected (again).
func (r *refresher) want(id string) {
	if _, ok := r.inflight[id]; ok {
		r.inflight[id] = true
		return
	}
	if !r.queued[id] {
		r.queued[id] = true
		r.waiting = append(r.waiting, id)
		if len(r.waiting) > r.w.tunables.maxQueue {
			r.overflow = true
		}
	}
	r.dispatch()
	r.report()
}

// report publishes how many containers are waiting, in flight, or
// inspected but not yet written.
func (r *refresher) report() {
	n := int64(len(r.inflight) + len(r.waiting) + len(r.w.staged))
	r.w.pending.Store(n)
	r.w.met.pending.Set(float64(n))
}

// takeOverflow reports whether more containers waited than the queue
// bound allows, and forgets them all: the full resync that follows covers
// them.
func (r *refresher) takeOverflow() bool {
	if !r.overflow {
		return false
	}
	r.overflow = false
	r.waiting, r.queued = nil, map[string]bool{}
	r.invalidate()
	r.report()
	return true
}

func (r *refresher) dispatch() {
	for len(r.inflight) < inspectConcurrency && len(r.waiting) > 0 {
		id := r.waiting[0]
		r.waiting = r.waiting[1:]
		delete(r.queued, id)
		r.inflight[id] = false
		r.wg.Go(func() {
			ictx, cancel := context.WithTimeout(r.ctx, callTimeout)
			defer cancel()
			resp, err := r.w.docker.ContainerInspect(ictx, id)
			r.done <- inspectDone{id: id, res: inspectResult{resp: resp, err: err}}
		})
	}
}

// finishAll handles d and every other result already waiting, so that
// their writes go to the catalog together.
func (r *refresher) finishAll(d inspectDone) error {
	for {
		if err := r.finish(d); err != nil {
			return err
		}
		select {
		case d = <-r.done:
		default:
			return nil
		}
	}
}

// finish stores one inspect's result, or inspects again if it is stale.
func (r *refresher) finish(d inspectDone) error {
	stale := r.inflight[d.id]
	delete(r.inflight, d.id)
	defer func() { r.dispatch(); r.report() }()
	if stale {
		r.want(d.id)
		return nil
	}
	return r.w.refresh(r.ctx, d.id, d.res)
}

// invalidate makes every inspect in flight stale: a full sync stores
// newer state, which their results must not overwrite.
func (r *refresher) invalidate() {
	for id := range r.inflight {
		r.inflight[id] = true
	}
}

// wait lets the inspects in flight end (the session's context is already
// cancelled, so they end at once).
func (r *refresher) wait() { r.wg.Wait() }

// stoppedRunning reports whether an event says its container no longer
// runs, so its answers can go before an inspect confirms it.
func stoppedRunning(m events.Message) bool {
	if m.Type != events.ContainerEventType {
		return false
	}
	switch m.Action {
	case events.ActionDie, events.ActionStop, events.ActionDestroy, events.ActionPause, events.ActionOOM:
		return true
	}
	return false
}

type inspectResult struct {
	resp container.InspectResponse
	err  error
}

// refresh stores what an inspect after an event found: the container and
// its instances, or nothing.
func (w *Watcher) refresh(ctx context.Context, id string, res inspectResult) error {
	resp, err := res.resp, res.err
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			w.remove(id, "removed")
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The state of id is unknown now; a reconnect lists everything again.
		w.met.inspectErrors.Inc()
		return fmt.Errorf("inspect container %s: %w", id, err)
	}
	rec, skip := w.record(resp)
	if skip != "" {
		w.remove(id, skip)
		return nil
	}
	// If the container stops after this inspect, its die event is already
	// on its way into the queue and removes it again: storing a state that
	// is a moment old is safe, trusting an event would not be.
	name := displayName(resp)
	w.stage(catalog.Change{Put: &rec}, func(err error) {
		if err != nil {
			// Only an invalid record fails here, a bug in convert; the
			// next resync tries again.
			w.log.Error("store container", "container", name, "err", err)
			return
		}
		w.noteStored(rec, "")
	})
	return nil
}

// record maps an inspected container to its catalog record, or says why it
// is not served. Rejected names are logged once per container.
func (w *Watcher) record(resp container.InspectResponse) (catalog.ContainerRecord, string) {
	return w.accept(w.mapContainer(resp))
}

// mapped is an inspected container and what it maps to, without the
// inspect response it came from.
type mapped struct {
	id   string // "" when the response had none
	name string // displayName, for log lines
	conv conversion
}

// mapContainer is the part of record that reads only resp and the
// watcher's configuration, which never changes after New: the full sync's
// inspect workers call it concurrently.
func (w *Watcher) mapContainer(resp container.InspectResponse) mapped {
	m := mapped{name: displayName(resp)}
	if resp.ContainerJSONBase != nil {
		m.id = resp.ID
	}
	var labels map[string]string
	if resp.Config != nil {
		labels = resp.Config.Labels
	}
	if !matchLabels(w.filters, labels) {
		m.conv.Skip = "excluded by the docker filters"
		return m
	}
	m.conv = convert(resp, w.convOpts)
	return m
}

// accept is the rest of record, on Run's goroutine: it logs the rejected
// names and returns the record, or why the container is not served.
func (w *Watcher) accept(m mapped) (catalog.ContainerRecord, string) {
	if m.conv.Skip != "" {
		return catalog.ContainerRecord{}, m.conv.Skip
	}
	w.report(m.id, m.name, m.conv.Problems)
	return m.conv.Record, ""
}

// report logs a container's rejected names, one WARN line each, and counts
// them, but only when they differ from what was last reported for it: a
// resync every minute must not repeat them.
func (w *Watcher) report(id, name string, probs []problem) {
	var b strings.Builder
	for _, p := range probs {
		b.WriteString(p.Reason)
		b.WriteByte(0)
		b.WriteString(p.Detail)
		b.WriteByte(0)
	}
	key := b.String()
	if w.reported[id] == key {
		return
	}
	if key == "" {
		delete(w.reported, id)
		return
	}
	w.reported[id] = key
	for _, p := range probs {
		w.met.rejected.WithLabelValues(p.Reason).Inc()
		w.log.Warn("container name rejected", "container", name, "id", shortID(id), "reason", p.Reason, "detail", p.Detail)
	}
}

// remove deletes a container and its instances from the catalog.
func (w *Watcher) remove(id, reason string) {
	w.stage(catalog.Change{Delete: id}, func(err error) {
		if err != nil {
			w.log.Error("delete container", "id", shortID(id), "err", err)
			return
		}
		delete(w.reported, id)
		if s, ok := w.known[id]; ok {
			delete(w.known, id)
			w.log.Info("container removed", "container", s.name, "id", shortID(id), "reason", reason)
		}
	})
}

// stage adds a change to the catalog write that ends the session loop's
// turn; then is called, in order, with its outcome. All the results and
// events found waiting in one turn are written in one transaction: in an
// event storm that is what keeps the catalog ahead of Docker (one write
// at a time, the catalog takes ~28k changes/s; in batches, twice that).
func (w *Watcher) stage(ch catalog.Change, then func(error)) {
	w.staged = append(w.staged, ch)
	w.afterWrite = append(w.afterWrite, then)
}

// flush writes what the turn staged.
func (w *Watcher) flush() {
	if len(w.staged) == 0 {
		return
	}
	_, errs := w.cat.Apply(w.staged)
	for k, then := range w.afterWrite {
		var err error
		if errs != nil {
			err = errs[k]
		}
		then(err)
	}
	clear(w.staged) // the records are the catalog's now; drop our references
	w.staged, w.afterWrite = w.staged[:0], w.afterWrite[:0]
}

// summary is what a log line says about a stored container.
type summary struct {
	name     string
	services string
	passing  bool
	addrs    string
}

func summarize(rec catalog.ContainerRecord) summary {
	c := rec.Container
	s := summary{name: cmp.Or(c.Name, shortID(c.ID)), passing: c.Passing}
	var svcs []string
	for _, inst := range rec.Instances {
		svcs = append(svcs, fmt.Sprintf("%s:%d/%s", inst.Service, inst.Port, inst.Protocol))
	}
	s.services = strings.Join(svcs, ",")
	var addrs []string
	for _, a := range c.Addrs {
		addrs = append(addrs, a.Network+"="+a.Prefix.Addr().String())
	}
	if c.HostIP.IsValid() {
		addrs = append(addrs, "host="+c.HostIP.String())
	}
	s.addrs = strings.Join(addrs, ",")
	return s
}

// noteStored logs a stored container if it is new or its answers changed.
// via is "" for an event, else the reason of the resync that repaired it.
func (w *Watcher) noteStored(rec catalog.ContainerRecord, via string) {
	id := rec.Container.ID
	s := summarize(rec)
	old, known := w.known[id]
	w.known[id] = s
	if known && old == s {
		return
	}
	msg := "container added"
	if known {
		msg = "container updated"
	}
	attrs := []any{"container", s.name, "id", shortID(id), "services", s.services, "passing", s.passing, "addrs", s.addrs}
	if via != "" {
		attrs = append(attrs, "resync", via)
	}
	w.log.Info(msg, attrs...)
}

// logReplace brings the known set in line with a full sync's records and
// logs what changed. The first sync logs one summary line, not a line per
// container.
func (w *Watcher) logReplace(records []catalog.ContainerRecord, first bool, reason string) {
	keep := make(map[string]bool, len(records))
	for _, rec := range records {
		keep[rec.Container.ID] = true
		if first {
			w.known[rec.Container.ID] = summarize(rec)
			continue
		}
		w.noteStored(rec, reason)
	}
	for id, s := range w.known {
		if !keep[id] {
			delete(w.known, id)
			w.log.Info("container removed", "container", s.name, "id", shortID(id), "reason", "not running", "resync", reason)
		}
	}
	for id := range w.reported {
		if !keep[id] {
			delete(w.reported, id)
		}
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

// closeIdle releases the client's idle connections when Run returns.
func (w *Watcher) closeIdle() {
	if c, ok := w.docker.(io.Closer); ok {
		_ = c.Close()
	}
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

func displayName(resp container.InspectResponse) string {
	if resp.ContainerJSONBase == nil {
		return ""
	}
	if n := strings.TrimPrefix(resp.Name, "/"); n != "" {
		if len(n) > maxShownName {
			n = n[:maxShownName] + "…"
		}
		return n
	}
	return shortID(resp.ID)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
