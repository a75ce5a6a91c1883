package watcher

import (
	"context"
	"errors"
	"log/slog"
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

// A full sync lists the host's containers, inspects them, and makes the
// catalog equal to what it found, in one transaction. It runs in two
// halves so that events go on being applied while its inspects wait on the
// daemon (up to callTimeout each): readSync makes the Docker calls, on a
// goroutine of its own beside the session loop, once the network list the
// sync asked for has ended (netlist.go); applySync writes, on the loop,
// the only writer of containers.
//
// Why an event wins over the sync: the queue numbers events (queue.track),
// and the sync notes the number of the last one before its list and before
// each inspect. A container that had an event after the sync read it is
// left to the events: its die has already taken it out of the answers,
// its start already put it in, and its inspect (queued by that event)
// reads newer state than the sync's. applySync keeps what the catalog has
// for it. So a container the sync read running and that died since is not
// brought back, and one the list did not have but that started since is
// not removed. When the queue overflowed meanwhile, the events' inspects
// may be lost: those containers are queued again, and the overflow's own
// sync follows this one.
//
// Why a network created during the sync matters: the sync maps each
// container with the networks listed when its inspect returns. A
// container that joined the new network before the sync inspected it (its
// connect event is then older than the read) would be written as on a
// local network while it is on an overlay, until its next event. A read
// mapped with a network list that lacks one of the container's networks
// is therefore not written while a newer list is due, or once one that
// has it was applied: the container is inspected again after the list
// (needsNetworks, netlist.go), as events' inspects are.
//
// A sync keeps its progress when inspects fail: the containers it
// inspected are written, the ones it could not inspect keep what the
// catalog has for them and are retried through the queue. Only a failed
// list fails the sync (and changes nothing).

// syncRun is one full sync: what readSync found, for applySync.
type syncRun struct {
	reason   string
	began    time.Time
	listedAt uint64 // the queue's last event before the list
	listed   map[string]bool
	reads    []syncRead
	err      error // the list's, or ctx's
}

// syncRead is one inspect of a full sync.
type syncRead struct {
	id  string
	at  uint64 // the queue's last event before the inspect
	m   mapped
	err error
}

// readSync lists and inspects the host's containers; it runs beside the
// session loop and writes nothing. q numbers the events (q.track was
// called).
func (w *Watcher) readSync(ctx context.Context, q *queue, run syncRun) syncRun {
	ids, err := w.docker.list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.endpoint.failed(classify(err))
		}
		run.err = err
		return run
	}
	w.endpoint.succeeded()
	run.listed = make(map[string]bool, len(ids))
	for _, id := range ids {
		run.listed[id] = true
	}
	run.reads, run.err = w.inspectAll(ctx, ids, q)
	return run
}

// applySync writes what run read, on the session loop: the catalog's
// Docker containers become the inspected ones, but for those an event
// named after the sync read them (they keep what the events made of
// them), those whose inspect failed (they keep what the catalog has,
// and are retried) and those mapped with a network list that lacks one
// of their networks while a newer one is due (they keep it too, and are
// parked: netlist.go). The turn's staged writes go first.
func (w *Watcher) applySync(q *queue, st *store, run syncRun, listing bool) (res replaceResult, failed int, err error) {
	st.flush()
	var (
		inspected []mapped
		keep      []string // the catalog's record, if any, stays
		evented   []string // in keep for an event
		retry     []string
		parked    []string
	)
	for _, r := range run.reads {
		switch {
		case q.eventSince(r.id, r.at):
			evented = append(evented, r.id) // its events' inspect reads newer state
		case r.err == nil && w.needsNetworks(r.m, listing):
			keep = append(keep, r.id)
			parked = append(parked, r.id)
		case r.err == nil:
			inspected = append(inspected, r.m)
		case errors.Is(r.err, errGone):
			// Left out: removed.
		default:
			keep = append(keep, r.id)
			retry = append(retry, r.id)
		}
	}
	for _, id := range q.touchedSince(run.listedAt) {
		if !run.listed[id] {
			evented = append(evented, id) // started after the list, maybe
		}
	}
	keep = append(keep, evented...)
	res, err = st.replace(inspected, keep, run.reason)
	if err != nil {
		return replaceResult{}, 0, err
	}
	for _, id := range retry {
		q.retry(id, time.Time{})
	}
	for _, id := range parked {
		w.park(q, id, time.Time{}, listing)
	}
	// An event an overflow refused is inspected by no one: these are.
	q.requeueLost(evented)
	// Held containers are looked at again when their hold ends, also those
	// held in an earlier session, whose queue is gone.
	for id, d := range st.drains.holds(time.Now()) {
		q.recheck(id, d)
	}
	return res, len(retry), nil
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
// that inspected it. Each read notes q's last event before its inspect
// (0 when q is nil). err is only ctx's.
func (w *Watcher) inspectAll(ctx context.Context, ids []string, q *queue) ([]syncRead, error) {
	reads := make([]syncRead, len(ids))
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
				r := &reads[i]
				r.id = ids[i]
				if q != nil {
					// Before the inspect: an event counted after this may
					// be newer than what the inspect reads.
					r.at = q.eventSeq()
				}
				r.m, r.err = w.inspect(ctx, r.id)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return reads, nil
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
