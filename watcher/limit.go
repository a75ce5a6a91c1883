package watcher

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limiter bounds the inspects in flight, the full sync's and the
// refresher's together, and adapts the bound to the endpoint by additive
// increase, multiplicative decrease (AIMD, as TCP does):
//
//   - it starts at max, the most a healthy daemon needs (maxInspects);
//   - an inspect that fails as an overloaded endpoint fails (a refused or
//     dropped connection, a timeout, a 5xx: outcome overloaded) halves it,
//     never below 1, once per round: the failures of inspects started
//     before the last decrease do not decrease it again, so 32 refusals
//     from one burst count as one;
//   - a round of successes (as many as the limit) adds one slot, up to
//     max.
//
// Other failures (a 4xx, a response it cannot decode) change nothing. The
// Docker client keeps max+1 idle connections (keepIdleConns), one per slot
// and one for the list, so at any limit every inspect reuses a connection
// once one is open: a proxy with a small listen backlog (socat's is 5) sees
// new connections only while the limit grows.
//
// Safe for concurrent use.
type limiter struct {
	mu       sync.Mutex
	max      int
	limit    int
	wins     int // successes since the limit last moved
	inflight int
	round    uint64        // raised by each decrease
	waiting  int           // acquires waiting for a slot
	changed  chan struct{} // closed and replaced when a slot frees, if anyone waits
	onChange func(limit int)
}

func newLimiter(max int, onChange func(int)) *limiter {
	l := &limiter{max: max, limit: max, changed: make(chan struct{}), onChange: onChange}
	if onChange != nil {
		onChange(max)
	}
	return l
}

// acquire waits for a free slot, or until ctx is done. round is for
// release.
func (l *limiter) acquire(ctx context.Context) (round uint64, err error) {
	for {
		l.mu.Lock()
		if l.inflight < l.limit {
			l.inflight++
			round = l.round
			l.mu.Unlock()
			return round, nil
		}
		ch := l.changed
		l.waiting++
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// outcome is how an inspect ended, for the limiter.
type outcome int

const (
	answered   outcome = iota // the daemon answered (not found included)
	overloaded                // refused, dropped, timed out or a 5xx
	neutral                   // another failure, or cancelled by svcdns
)

// release frees a slot taken in round and learns from how its inspect
// ended.
func (l *limiter) release(round uint64, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	before := l.limit
	switch {
	case o == answered && l.limit < l.max:
		if l.wins++; l.wins >= l.limit {
			l.limit++
			l.wins = 0
		}
	case o == overloaded && round == l.round:
		l.limit = max(1, l.limit/2)
		l.round++
		l.wins = 0
	}
	if l.waiting > 0 {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	if l.limit != before && l.onChange != nil {
		l.onChange(l.limit)
	}
}

// current is the number of inspects allowed in flight now.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// endpoint tells the story of the Docker endpoint's failures in two log
// lines: one WARN when requests start failing, one INFO when it has
// recovered, not one per attempt. Recovered means: nothing waits for a
// retry, a request succeeded since the last failure, and none failed for
// quiet after that, so an endpoint that fails now and then while the
// limiter probes upwards is one story, not a line pair per probe. Safe for
// concurrent use; stop ends its timer.
type endpoint struct {
	log   *slog.Logger
	limit *limiter
	quiet time.Duration

	mu       sync.Mutex
	failing  bool
	since    time.Time
	failures int
	okAfter  bool        // a request succeeded after the last failure
	check    *time.Timer // the recovery, due after quiet
	stopped  bool
}

// failed notes a failed request; the first of a failing period is logged.
func (e *endpoint) failed(f failure) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures++
	e.okAfter = false
	if e.check != nil {
		e.check.Stop()
		e.check = nil
	}
	if e.failing {
		return
	}
	e.failing, e.since = true, time.Now()
	e.log.Warn("docker endpoint failing requests: retrying each failed container with backoff, inspecting fewer at a time, keeping what is known",
		"cause", f.cause, "inspect_concurrency", e.limit.current(), "err", f.err)
}

// succeeded notes a request the daemon answered.
func (e *endpoint) succeeded() {
	e.mu.Lock()
	e.okAfter = true
	e.mu.Unlock()
}

// settle is called when the watcher has nothing more to do for now;
// retrying says whether containers or a list wait for a retry. Once
// nothing does, the recovery is logged after quiet without a failure.
func (e *endpoint) settle(retrying bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.failing || retrying || !e.okAfter || e.check != nil || e.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(e.quiet, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.check != t || e.stopped {
			return // a failure came since, or Run ended
		}
		e.check = nil
		e.log.Info("docker endpoint recovered: every failed request retried", "failures", e.failures,
			"duration", time.Since(e.since).Round(time.Millisecond), "inspect_concurrency", e.limit.current())
		e.failing, e.failures = false, 0
	})
	e.check = t
}

// stop ends a pending recovery check.
func (e *endpoint) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	if e.check != nil {
		e.check.Stop()
		e.check = nil
	}
}
