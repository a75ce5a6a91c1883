package watcher

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Reasons for a full sync, the reason label of resyncs_total.
const (
	syncConnect  = "connect"
	syncPeriodic = "periodic"
	syncOverflow = "overflow"
	syncNetworks = "networks" // a network list that failed worked again, and changed what spans hosts
)

// fullSync lists the host's containers, inspects them, and makes the
// catalog equal to what it found, in one transaction. It keeps its
// progress when inspects fail: the containers it inspected are written,
// the ones it could not inspect keep what the catalog has for them and are
// retried through q. Only a failed list fails the sync (and changes
// nothing).
func (w *Watcher) fullSync(ctx context.Context, q *queue, st *store, reason string) error {
	st.flush() // the turn's writes come before the list, which supersedes them
	began := time.Now()
	w.refreshNetworks(ctx, q) // before the inspects, which map containers with them
	// Why empty the queue now, before listing: the list below sees every
	// container as it is after the events queued so far. Events that arrive
	// from here on stay queued and are applied after the replace, so a
	// container that dies between its inspect and the replace is inspected
	// again and removed right after (re-inspect after insert,
	// weaveworks/weave#821).
	forgot := q.reset()
	// A container sent its stop signal is still running, so the list has
	// it: its hold starts now, for the replace to apply.
	for _, h := range forgot.hints {
		if h.signal != 0 {
			st.drains.start(h.id, h.signal, time.Now())
		}
	}

	ids, err := w.docker.list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.endpoint.failed(classify(err))
			q.restore(forgot) // events go on being applied until a list succeeds
		}
		return err
	}
	w.endpoint.succeeded()
	inspected, failed, err := w.inspectAll(ctx, ids)
	if err != nil {
		return err
	}
	res, err := st.replace(inspected, failed, reason)
	if err != nil {
		return err
	}
	st.observe(forgot.since) // the replace wrote what their events changed
	for _, id := range failed {
		q.retry(id, time.Time{})
	}
	// Held containers are looked at again when their hold ends, also those
	// held in an earlier session, whose queue is gone.
	for id, d := range st.drains.holds(time.Now()) {
		q.recheck(id, d)
	}
	w.synced(res, reason, began, len(failed))
	return nil
}

// refreshNetworks lists the host's networks, for the inspects that follow,
// and writes them to the catalog. A failed list fails no sync and keeps
// the networks known before. A refused, dropped, timed-out or 5xx list is
// the endpoint struggling: told by its two lines (endpoint) and retried
// through q with backoff, like a failed inspect. Any other failure (a
// read-only socket proxy that does not allow /networks answers 403:
// containers on networks that span hosts are then answered as on local
// ones) is logged once until a list works again, and tried again at the
// next full sync or network event.
//
// remap reports a list that worked after a failed one and changed which
// networks span hosts: the containers inspected meanwhile were mapped
// with the networks known before, and want a full sync.
func (w *Watcher) refreshNetworks(ctx context.Context, q *queue) (remap bool) {
	nets, err := w.docker.networks(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if f := classify(err); f.overloaded() {
			w.endpoint.failed(f)
			w.netsRetries++
			d := backoff(w.netsRetries, w.tunables.retryMin, w.tunables.retryMax)
			q.retryNetworks(d)
			w.log.Debug("docker network list failed, retrying; the networks listed before are kept", "delay", d.Round(time.Millisecond), "err", err)
			return false
		}
		if !w.netsFailing {
			w.log.Warn("docker network list failed: containers on networks that span hosts (overlays) are answered as on local ones until it works", "err", err)
		}
		w.netsFailing = true
		return false
	}
	w.endpoint.succeeded()
	failedBefore := w.netsFailing || w.netsRetries > 0
	w.netsFailing, w.netsRetries = false, 0
	var spanning []string
	for _, n := range nets {
		if n.SpansHosts {
			spanning = append(spanning, n.Name)
		}
	}
	slices.Sort(spanning)
	level := slog.LevelDebug
	if !slices.Equal(spanning, w.spanning) {
		level = slog.LevelInfo
		w.spanning = spanning
		remap = failedBefore
	}
	w.log.Log(ctx, level, "docker networks listed", "networks", len(nets), "spanning_hosts", spanning)
	if _, err := w.store.cat.ReplaceNetworks(nets); err != nil {
		w.log.Error("store docker networks", "err", err) // convertNetworks keeps out what the catalog refuses
	}
	return remap
}

// synced records a full sync in the metrics, the status and the log.
func (w *Watcher) synced(res replaceResult, reason string, began time.Time, failed int) {
	now := time.Now()
	w.met.resyncs.WithLabelValues(reason).Inc()
	w.met.lastSync.Set(float64(now.UnixNano()) / 1e9)
	w.met.syncDuration.Observe(now.Sub(began).Seconds())
	repairs := 0
	if !res.first {
		repairs = res.Repairs()
		w.met.repairs.Add(float64(repairs))
	}
	w.mu.Lock()
	w.status.Synced = true
	w.ready.Store(true)
	w.status.LastSync = now
	w.status.Resyncs++
	w.status.Repairs += uint64(repairs)
	if repairs > 0 {
		w.status.LastRepair = newRepair(now, reason, repairs, res.repaired)
	}
	w.mu.Unlock()

	level := slog.LevelDebug
	switch {
	case res.Conflicts > 0:
		// Another node owns some of these containers: two svcdns nodes
		// are watching one Docker host under different --node names.
		level = slog.LevelWarn
	case reason != syncPeriodic || repairs > 0 || failed > 0:
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, "docker containers synced", "reason", reason, "containers", res.containers,
		"added", res.Added, "removed", res.Removed, "updated", res.Updated, "conflicts", res.Conflicts,
		"inspect_failed", failed, "duration", now.Sub(began).Round(time.Microsecond))
}

// inspectAll inspects the listed containers, as many at a time as the
// limiter allows, up to maxInspects workers; each is mapped by the worker
// that inspected it. A container gone since the list is left out; one
// whose inspect failed is in failed. err is only ctx's.
func (w *Watcher) inspectAll(ctx context.Context, ids []string) (inspected []mapped, failed []string, err error) {
	out := make([]mapped, len(ids))
	state := make([]error, len(ids))
	// A few workers that take the next container in turn, not a goroutine
	// per container: each worker's stack grows once to the depth of an HTTP
	// round trip and a JSON decode, where 10,000 fresh goroutines would each
	// grow (and copy) theirs again.
	var (
		next int
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for range min(maxInspects, len(ids)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(ids) {
					return
				}
				out[i], state[i] = w.inspect(ctx, ids[i])
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for i, err := range state {
		switch {
		case err == nil:
			inspected = append(inspected, out[i])
		case !errors.Is(err, errGone):
			failed = append(failed, ids[i])
		}
	}
	return inspected, failed, nil
}

// inspect reads one container within a slot of the limiter, which learns
// from how it ended; a failure is counted by cause and told to the
// endpoint.
func (w *Watcher) inspect(ctx context.Context, id string) (mapped, error) {
	round, err := w.limit.acquire(ctx)
	if err != nil {
		return mapped{}, err
	}
	m, err := w.docker.inspect(ctx, id)
	switch {
	case err == nil, errors.Is(err, errGone):
		w.limit.release(round, answered)
		w.endpoint.succeeded()
	case ctx.Err() != nil:
		w.limit.release(round, neutral)
	default:
		f := classify(err)
		o := neutral
		if f.overloaded() {
			o = overloaded
		}
		w.limit.release(round, o)
		w.met.inspectErrors.WithLabelValues(f.cause).Inc()
		w.mu.Lock()
		w.status.InspectFailures[f.cause]++
		w.mu.Unlock()
		w.endpoint.failed(f)
	}
	return m, err
}
