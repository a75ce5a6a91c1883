package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// session is one connection: subscribe, then apply events until the
// stream ends or ctx is done, while full syncs (list, inspect, replace:
// sync.go) and network lists (netlist.go) run beside the loop, the first
// sync at once. Nothing else ends it: a failed inspect is retried on its
// own, a failed list is tried again with backoff, and the stream stays.
// synced reports whether a list was applied. The error is never nil.
func (w *Watcher) session(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	q := newQueue(w.tunables.maxQueue, w.tunables.retryMin, w.tunables.retryMax)
	st := w.store
	ref := newRefresher(q, inspectConcurrency, w.inspect)
	ref.beforeStart = func() { w.publishPending(q, st) }

	// Why subscribe before listing: a container that starts after the list
	// but before the subscription would otherwise stay unknown until the
	// next resync. Subscribed first, its start event is applied whatever
	// the list saw; if the list saw it too, applying it again changes
	// nothing.
	stream := w.docker.subscribe(ctx, time.Now())
	streamDone := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { streamDone <- w.readEvents(ctx, &stream, q) })
	defer func() {
		cancel() // ends the stream, the reader, a sync and the inspects in flight
		wg.Wait()
		ref.wait()
		q.close()
		st.flush() // a session that ends mid-turn still writes what it found
		w.publishPending(nil, st)
	}()

	rs := newResync(w.resync, w.tunables.retryMin, w.tunables.retryMax)
	defer rs.stop()
	nl := newNetLister(w.docker.networks, &wg)
	syncDone := make(chan syncRun, 1) // one sync at a time: its send never blocks
	w.startSync(ctx, rs, nl)
	for {
		select {
		case <-ctx.Done():
			return synced, ctx.Err()
		case err := <-streamDone:
			if errors.Is(err, io.EOF) {
				err = errors.New("closed by the daemon")
			}
			return synced, fmt.Errorf("docker event stream: %w", err)
		case <-rs.timer.C:
			w.startSync(ctx, rs, nl)
		case res := <-nl.done:
			remap := w.finishNetworks(ctx, q, nl, res)
			switch {
			case rs.netsFor != 0:
				// A sync waits for a list: it maps every container with
				// the newest.
				w.readSyncAfter(ctx, q, rs, res.n, &wg, syncDone)
			case remap:
				rs.soon(syncNetworks) // containers mapped while the list failed
			}
		case run := <-syncDone:
			synced = w.finishSync(ctx, q, st, rs, run, w.listing(q, nl)) || synced
		case res := <-ref.done:
			w.finishAll(ctx, q, ref, st, res, w.listing(q, nl))
		case <-q.ready:
			if q.takeNetworks() {
				nl.request(ctx)
			}
			hints, overflow := q.takeHints()
			if overflow {
				w.log.Warn("docker event queue overflowed, resyncing", "max", w.tunables.maxQueue)
				rs.soon(syncOverflow)
			}
			for _, h := range hints {
				switch {
				case h.gone:
					// A container an event said stopped running leaves the
					// answers now, not when its inspect returns; the inspect
					// then decides (a restarted container comes straight back).
					st.remove(h.id, "stopped", q.takeSince(h.id))
				case h.signal != 0:
					// One sent its stop signal leaves them too, until it
					// exits or its hold ends (drain.go).
					if hold, ok := st.drain(h.id, h.signal); ok {
						q.recheck(h.id, hold)
					}
				}
			}
		}
		// The end of a turn: what it found goes to the catalog in one write.
		st.flush()
		lens := w.publishPending(q, st)
		w.syncing.Store(rs.running || rs.due || lens.overflow || nl.inFlight)
		w.endpoint.settle(lens.pending > 0 || lens.networks || nl.inFlight || rs.failures > 0 || rs.running)
		ref.dispatch(ctx)
	}
}

// startSync starts the full sync that rs has due with a network list,
// which the sync's inspects map containers with; readSyncAfter starts
// the rest once the list is applied.
func (w *Watcher) startSync(ctx context.Context, rs *resync, nl *netLister) {
	if rs.running {
		return // finishSync starts the one asked for meanwhile
	}
	rs.running, rs.due = true, false
	rs.run = syncRun{reason: rs.reason, began: time.Now()}
	rs.netsFor = nl.request(ctx)
}

// readSyncAfter starts the container list and the inspects of the sync
// under way, if it waits for network list n (or an earlier one), on a
// goroutine of its own (readSync), so that the loop goes on applying
// events meanwhile; finishSync gets the result from done.
func (w *Watcher) readSyncAfter(ctx context.Context, q *queue, rs *resync, n uint64, wg *sync.WaitGroup, done chan<- syncRun) {
	if rs.netsFor == 0 || n < rs.netsFor {
		return
	}
	rs.netsFor = 0
	run := rs.run
	run.listedAt = q.track()
	wg.Go(func() { done <- w.readSync(ctx, q, run) })
}

// finishSync applies a full sync's result and schedules the next: the
// periodic one after a success, the same one after a backoff when the list
// failed, at once when one was asked for while it ran. ok reports a
// success.
func (w *Watcher) finishSync(ctx context.Context, q *queue, st *store, rs *resync, run syncRun, listing bool) (ok bool) {
	defer q.untrack()
	rs.running = false
	if ctx.Err() != nil {
		return false
	}
	var (
		res    replaceResult
		failed int
		err    = run.err
	)
	if err == nil {
		res, failed, err = w.applySync(q, st, run, listing)
	}
	if err != nil {
		d := rs.failed()
		w.log.Debug("docker list failed, trying again", "reason", run.reason, "attempt", rs.failures, "delay", d.Round(time.Millisecond), "err", err)
		if run.reason == syncConnect {
			w.setDisconnected(err.Error())
		}
		return false
	}
	w.synced(res, run.reason, run.began, failed)
	if run.reason == syncConnect {
		w.setConnected()
	}
	rs.succeeded()
	return true
}

// resync schedules a session's full syncs: the connect sync until one
// succeeds, then a periodic one every Resync, and one at once after an
// overflow; a sync whose list failed is due again after a backoff.
type resync struct {
	timer    *time.Timer
	every    time.Duration // between periodic syncs
	min, max time.Duration // the backoff of a failed one
	reason   string        // of the sync due, or running
	failures int           // lists failed in a row
	running  bool          // a sync is under way; the timer is stopped meanwhile
	netsFor  uint64        // the network list the sync under way waits for before it reads; 0 once it reads
	run      syncRun       // the sync under way, while it waits for netsFor
	due      bool          // a sync was asked for at once (soon), not yet started
	again    string        // the reason of a sync asked for while one ran; "" for none
}

func newResync(every, min, max time.Duration) *resync {
	r := &resync{timer: time.NewTimer(time.Hour), every: every, min: min, max: max, reason: syncConnect}
	r.timer.Stop()
	return r
}

// failed schedules the sync again after a backoff; a sync asked for
// meanwhile is that one (its list is as new).
func (r *resync) failed() time.Duration {
	r.failures++
	if r.again != "" && r.reason != syncConnect {
		r.reason = r.again
	}
	r.again = ""
	d := backoff(r.failures, r.min, r.max)
	r.reset(d)
	return d
}

// succeeded schedules the periodic sync, or one asked for meanwhile at
// once: its events may have come after the list that just ended.
func (r *resync) succeeded() {
	r.failures, r.reason = 0, syncPeriodic
	if again := r.again; again != "" {
		r.again = ""
		r.soon(again)
		return
	}
	r.reset(r.every)
}

// soon makes a sync due at once, for reason (unless the connect sync is
// still to succeed, which covers it); while a sync runs, once it ends.
func (r *resync) soon(reason string) {
	if r.running {
		r.again = reason
		return
	}
	if r.reason != syncConnect {
		r.reason = reason
	}
	r.due = true
	r.reset(0)
}

func (r *resync) reset(d time.Duration) { r.timer.Reset(d) }

func (r *resync) stop() { r.timer.Stop() }

// readEvents moves container ids from the event stream into q until the
// stream ends or ctx is done. Reading never waits on Docker calls, so the
// daemon does not drop events for a slow subscriber while the loop
// inspects.
func (w *Watcher) readEvents(ctx context.Context, s *eventStream, q *queue) error {
	for {
		ev, err := s.next(ctx)
		if err != nil {
			return err
		}
		if ev.id != "" {
			q.add(hint{id: ev.id, gone: ev.gone, signal: ev.signal})
		}
		if ev.networks {
			q.networksChanged()
		}
		// Counted after queueing: whoever sees the count sees the queue.
		w.met.events.WithLabelValues(ev.action).Inc()
		w.mu.Lock()
		w.status.Events++
		w.mu.Unlock()
	}
}

// finishAll handles res and every other result already waiting, so that
// their writes go to the catalog together.
func (w *Watcher) finishAll(ctx context.Context, q *queue, ref *refresher, st *store, res inspectResult, listing bool) {
	for {
		if ref.finish(&res) {
			w.refreshed(ctx, q, st, res, listing)
		}
		select {
		case res = <-ref.done:
		default:
			return
		}
	}
}

// refreshed stages what an inspect after an event found: the container
// and its instances, or its removal. A failed inspect is that container's
// problem: it is retried after a backoff, and the catalog keeps what it has
// for it meanwhile. So does one mapped with a network list that lacks one
// of the container's networks while a newer one is due (listing) or was
// applied since: the container is inspected again after it (netlist.go).
func (w *Watcher) refreshed(ctx context.Context, q *queue, st *store, res inspectResult, listing bool) {
	switch {
	case res.err == nil && w.needsNetworks(res.m, listing):
		q.forget(res.id)
		w.park(q, res.id, res.since, listing)
	case res.err == nil:
		q.forget(res.id)
		st.put(res.id, res.m, res.since)
	case errors.Is(res.err, errGone):
		q.forget(res.id)
		st.remove(res.id, "removed", res.since)
	case ctx.Err() != nil:
	default:
		d := q.retry(res.id, res.since)
		w.log.Debug("inspect failed, retrying", "id", shortID(res.id), "delay", d.Round(time.Millisecond), "err", res.err)
	}
}

// publishPending publishes how many containers are waiting for an
// inspect, being inspected, waiting for a retry, or inspected and not yet
// written; q nil publishes the end of a session.
func (w *Watcher) publishPending(q *queue, st *store) queueLens {
	var lens queueLens
	if q != nil {
		lens = q.lens()
	}
	n := int64(lens.pending + len(st.staged))
	w.pending.Store(n)
	w.retrying.Store(int64(lens.retrying))
	w.met.pending.Set(float64(n))
	w.met.retries.Set(float64(lens.retrying))
	w.met.queueLength.Set(float64(lens.waiting))
	return lens
}
