package watcher

import (
	"context"
	"sync"
	"time"
)

// refresher inspects the containers the queue hands out, up to limit at
// a time (and each inside a slot of the watcher's limiter), so one slow
// inspect (during docker rm -f the daemon holds it for 100 ms and more)
// never holds up the others. It only inspects: the
// session's goroutine takes the results from done and stores them, so the
// catalog has one writer for events.
//
// dispatch, finish and inFlight run on the session's goroutine; the
// inspects run on goroutines of their own, which wait ends.
type refresher struct {
	q        *queue
	inspect  func(ctx context.Context, id string) (mapped, error)
	limit    int
	inflight int
	// beforeStart runs on the session's goroutine before each inspect
	// starts, so what it publishes counts that inspect; may be nil.
	beforeStart func()
	done        chan inspectResult // buffered to limit: an inspect never blocks on sending
	wg          sync.WaitGroup
}

// inspectResult is one finished inspect: the mapped container, or why not.
type inspectResult struct {
	id    string
	m     mapped
	err   error
	since time.Time // the earliest event it covers arrived; set by finish
}

func newRefresher(q *queue, limit int, inspect func(context.Context, string) (mapped, error)) *refresher {
	return &refresher{q: q, inspect: inspect, limit: limit, done: make(chan inspectResult, limit)}
}

// dispatch starts inspects for queued ids while there is a free slot.
func (r *refresher) dispatch(ctx context.Context) {
	for r.inflight < r.limit {
		id, ok := r.q.get()
		if !ok {
			return
		}
		r.inflight++
		if r.beforeStart != nil {
			r.beforeStart()
		}
		r.wg.Go(func() {
			m, err := r.inspect(ctx, id)
			r.done <- inspectResult{id: id, m: m, err: err}
		})
	}
}

// finish frees res's slot and reports whether res is to be stored: a
// stale one (an event named its container after the inspect started) is
// not, and its container is queued again. A fresh one gets its since.
func (r *refresher) finish(res *inspectResult) (store bool) {
	r.inflight--
	var stale bool
	res.since, stale = r.q.done(res.id)
	return !stale
}

// wait returns once every inspect has ended; the caller cancels their
// context first.
func (r *refresher) wait() { r.wg.Wait() }
