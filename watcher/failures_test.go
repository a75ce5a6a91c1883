package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/errdefs"
)

// Failures as the Docker client reports them, one per cause.
var causeErrs = map[string]error{
	causeRefused: fmt.Errorf("error during connect: dial unix /var/run/docker.sock: %w", syscall.ECONNREFUSED),
	causeTimeout: fmt.Errorf("inspect: %w", context.DeadlineExceeded),
	causeServer:  errdefs.System(errors.New("Error response from daemon: injected")),
	causeOther:   errdefs.InvalidParameter(errors.New("Error response from daemon: bad request")),
}

func TestClassify(t *testing.T) {
	for cause, err := range causeErrs {
		if got := classify(err); got.cause != cause {
			t.Errorf("%v: cause %q, want %q", err, got.cause, cause)
		}
	}
	for _, err := range []error{syscall.EAGAIN, io.ErrUnexpectedEOF, syscall.ECONNRESET} {
		if got := classify(fmt.Errorf("wrapped: %w", err)); got.cause != causeRefused {
			t.Errorf("%v: cause %q, want refused", err, got.cause)
		}
	}
	if classify(causeErrs[causeOther]).overloaded() || !classify(causeErrs[causeServer]).overloaded() {
		t.Error("overloaded wrong")
	}
}

// TestLimiterAIMD: the rule the README states. Halved once per round of
// overloaded failures, never below 1; one slot more per round of
// successes, never above max; other failures change nothing.
func TestLimiterAIMD(t *testing.T) {
	var seen []int
	l := newLimiter(32, func(n int) { seen = append(seen, n) })
	ctx := context.Background()
	acquire := func(n int) []uint64 {
		t.Helper()
		rounds := make([]uint64, n)
		for i := range n {
			r, err := l.acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rounds[i] = r
		}
		return rounds
	}
	// 32 in flight fail in one burst: one halving, not 32.
	for _, r := range acquire(32) {
		l.release(r, overloaded)
	}
	if got := l.current(); got != 16 {
		t.Fatalf("after a burst of 32 refusals: %d, want 16", got)
	}
	for want := 8; want >= 1; want /= 2 {
		l.release(acquire(1)[0], overloaded)
		if got := l.current(); got != want {
			t.Fatalf("after the next round's refusal: %d, want %d", got, want)
		}
	}
	l.release(acquire(1)[0], overloaded)
	if got := l.current(); got != 1 {
		t.Fatalf("below 1: %d", got)
	}
	l.release(acquire(1)[0], neutral)
	if got := l.current(); got != 1 {
		t.Fatalf("a neutral outcome moved the limit to %d", got)
	}
	// Additive increase: a round of successes at limit n adds one.
	for want := 2; want <= 5; want++ {
		for range want - 1 {
			l.release(acquire(1)[0], answered)
		}
		if got := l.current(); got != want {
			t.Fatalf("after a round of successes: %d, want %d", got, want)
		}
	}
	for range 2000 {
		l.release(acquire(1)[0], answered)
	}
	if got := l.current(); got != 32 {
		t.Fatalf("after many successes: %d, want the max 32", got)
	}
	if seen[0] != 32 || seen[1] != 16 {
		t.Errorf("gauge saw %v", seen[:2])
	}

	// acquire waits for a free slot and gives up with ctx.
	l = newLimiter(1, nil)
	r := acquire(1)[0]
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past the limit: %v", err)
	}
	go l.release(r, answered)
	if _, err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
}

// failN makes the next n inspects of id fail with err; others pass.
func (e *engine) failN(id string, n int, err error) {
	var mu sync.Mutex
	e.beforeInspect = func(ctx context.Context, got string) error {
		mu.Lock()
		defer mu.Unlock()
		if got != id || n == 0 {
			return nil
		}
		n--
		return err
	}
}

// TestInspectErrorRetried: an inspect after an event that fails, for any
// cause, is retried on its own with backoff; the event stream stays up, no
// full sync runs, the container keeps its answers meanwhile, and other
// containers' events go on.
func TestInspectErrorRetried(t *testing.T) {
	for cause, err := range causeErrs {
		t.Run(cause, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.w.tunables.retryMin, h.w.tunables.retryMax = 20*time.Millisecond, 40*time.Millisecond
			a, b := newCtr(1, "a"), newCtr(2, "b")
			h.e.run(a)
			h.start()
			h.waitSynced()
			// Three failures, then an inspect that waits for release: a's
			// answers are looked at while its retries fail, however slow
			// the machine (waiting for RetriesPending == 1 could catch the
			// last backoff, and the success land before the look).
			release := make(chan struct{})
			h.e.failN(a.ID, 3, err)
			failing := h.e.beforeInspect
			h.e.beforeInspect = func(ctx context.Context, id string) error {
				if err := failing(ctx, id); err != nil || id != a.ID {
					return err
				}
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			h.e.mutate(a.ID, func(c *container.InspectResponse) { c.State.Paused = true })
			if err := h.e.emit(events.ContainerEventType, "health_status: unhealthy", a.ID); err != nil {
				t.Fatal(err)
			}
			h.waitFor("a's three failed inspects", func() bool { return h.w.Status().InspectFailures[cause] == 3 })
			h.wantView("a") // known, kept
			close(release)
			h.e.run(b)
			h.event("start", b.ID) // waits for a's retries too: pending counts them
			h.wantView("a(down) b")
			st := h.w.Status()
			if got := h.e.inspected(a.ID); got != 5 {
				t.Errorf("a inspected %d times, want 5 (sync, 3 failures, success)", got)
			}
			if st.InspectFailures[cause] != 3 || h.metric(h.w.met.inspectErrors.WithLabelValues(cause)) != 3 {
				t.Errorf("failures %v, want 3 %s", st.InspectFailures, cause)
			}
			if streams, lists := h.e.counts(); streams != 1 || lists != 1 || !st.Connected || st.RetriesPending != 0 {
				t.Errorf("%d streams, %d lists, status %+v: want the first of each, connected", streams, lists, st)
			}
		})
	}
}

// TestSyncKeepsProgress: a full sync whose inspects fail for some
// containers writes the others; a failed container the catalog knows keeps
// its answers, one it does not know waits for its retry; a container the
// list no longer has goes. The retries then bring the catalog to Docker's
// state without another sync.
func TestSyncKeepsProgress(t *testing.T) {
	h := newHarness(t, Config{})
	h.w.tunables.retryMin, h.w.tunables.retryMax = 30*time.Millisecond, 30*time.Millisecond
	a, b, c, d, e := newCtr(1, "a"), newCtr(2, "b"), newCtr(3, "c"), newCtr(4, "d"), newCtr(5, "e")
	for _, x := range []*container.InspectResponse{a, b, c} {
		h.e.run(x)
	}
	h.start()
	h.waitSynced()
	h.wantView("a b c")

	release := make(chan struct{})
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id != a.ID && id != e.ID {
			return nil
		}
		select {
		case <-release:
			return nil
		default:
			return causeErrs[causeServer]
		}
	}
	h.e.set(func(m map[string]*container.InspectResponse) { delete(m, b.ID) })
	h.e.mutate(c.ID, func(x *container.InspectResponse) { x.State.Paused = true })
	h.e.mutate(a.ID, func(x *container.InspectResponse) { x.State.Paused = true })
	h.e.run(d)
	h.e.run(e)
	h.e.breakStream(io.EOF)
	h.waitFor("the reconnect's sync, a and e waiting for a retry", func() bool {
		st := h.w.Status()
		return st.Resyncs == 2 && st.Connected && st.RetriesPending == 2
	})
	h.wantView("a c(down) d") // a as it was; b gone; e not yet
	if st := h.w.Status(); st.Repairs != 3 {
		t.Errorf("status %+v, want 3 repairs (b, c, d)", st)
	}
	never(h, 50*time.Millisecond, func() string {
		if v := h.view(); v != "a c(down) d" {
			return "catalog " + v
		}
		return ""
	})
	close(release)
	h.barrier()
	h.wantView("a(down) c(down) d e")
	if st := h.w.Status(); st.Resyncs != 2 || st.RetriesPending != 0 {
		t.Errorf("status %+v, want no more syncs and nothing pending", st)
	}
}

// never fails h's test if check reports a problem within d.
func never(h *harness, d time.Duration, check func() string) {
	h.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if p := check(); p != "" {
			h.t.Fatal(p)
		}
	}
}

// TestListFailureKeepsStream: a list that fails, at connect or in a
// periodic resync, is tried again with backoff on the same event stream,
// and events go on being applied meanwhile.
func TestListFailureKeepsStream(t *testing.T) {
	h := newHarness(t, Config{Resync: 20 * time.Millisecond})
	a, b := newCtr(1, "a"), newCtr(2, "b")
	h.e.run(a)
	var failing atomic.Bool
	h.e.onList = func(n int) error {
		if n == 1 || failing.Load() { // the connect sync's first try, then every list while failing
			return causeErrs[causeRefused]
		}
		return nil
	}
	h.start()
	h.waitFor("connected after the connect sync's retry", func() bool {
		st := h.w.Status()
		return st.Connected && st.LastError == ""
	})
	failing.Store(true)
	_, lists := h.e.counts()
	h.waitFor("two failed periodic lists", func() bool { _, n := h.e.counts(); return n >= lists+2 })
	h.e.run(b)
	h.event("start", b.ID)
	h.wantView("a b")
	failing.Store(false)
	h.waitFor("a periodic list again", func() bool { return h.w.Status().Resyncs >= 2 })
	if streams, _ := h.e.counts(); streams != 1 {
		t.Errorf("%d event streams, want 1", streams)
	}
	if st := h.w.Status(); !st.Connected || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	h.wantView("a b")
}

// TestInspectConcurrencyAdapts: an endpoint that refuses every inspect
// past 4 in flight (a socket proxy's small listen backlog): the limiter
// comes down, every container is served, and the story is two log lines.
func TestInspectConcurrencyAdapts(t *testing.T) {
	h := newHarness(t, Config{})
	const n, capacity = 200, 4
	var want []string
	for i := 1; i <= n; i++ {
		h.e.run(newCtr(i, fmt.Sprintf("c%03d", i)))
		want = append(want, fmt.Sprintf("c%03d", i))
	}
	var (
		mu             sync.Mutex
		inflight, most int
	)
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		if inflight >= capacity {
			return causeErrs[causeRefused]
		}
		inflight++
		most = max(most, inflight)
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // the daemon's work
		mu.Lock()
		inflight--
		return nil
	}
	h.start()
	h.waitSynced()
	h.barrier()
	h.wantView(strings.Join(want, " "))
	st := h.w.Status()
	if st.InspectFailures[causeRefused] == 0 || st.InspectConcurrency >= maxInspects || st.InspectConcurrency < 1 {
		t.Errorf("status %+v: want refusals and a limit below %d", st, maxInspects)
	}
	if streams, _ := h.e.counts(); streams != 1 {
		t.Errorf("%d event streams, want 1", streams)
	}
	h.waitFor("the recovery line", func() bool { return strings.Contains(h.logs.String(), "docker endpoint recovered") })
	logs := h.logs.String()
	if f, r := strings.Count(logs, "docker endpoint failing"), strings.Count(logs, "docker endpoint recovered"); f != 1 || r != 1 {
		t.Errorf("%d failing and %d recovered lines, want 1 each", f, r)
	}
	t.Logf("%d refusals, limit %d at the end, most in flight %d", st.InspectFailures[causeRefused], st.InspectConcurrency, most)
}

// TestQueueRetryBackoff: a container's failed inspects back off on their
// own, from retryMin doubling per failure in a row up to retryMax, each
// drawn from the upper half; another container's start at retryMin, and a
// success (forget) starts the container's again. A retry queues the id
// again once its backoff is over.
func TestQueueRetryBackoff(t *testing.T) {
	// Hours, not milliseconds: no timer may fire before lens() below
	// counts them all as retrying, however long a loaded machine stalls
	// this goroutine between the steps (100 ms once left 50 ms of room).
	const lo, hi = time.Hour, 8 * time.Hour
	q := newQueue(10, lo, hi)
	defer q.close()
	steps := []struct {
		id     string
		forget bool // forget id before the retry
		want   time.Duration
	}{
		{id: "a", want: lo},
		{id: "a", want: 2 * lo},
		{id: "b", want: lo},
		{id: "a", want: 4 * lo},
		{id: "a", want: hi},
		{id: "a", want: hi},
		{id: "b", want: 2 * lo},
		{id: "a", forget: true, want: lo},
	}
	for i, s := range steps {
		if s.forget {
			q.forget(s.id)
		}
		if d := q.retry(s.id, time.Time{}); d < s.want/2 || d > s.want {
			t.Errorf("step %d: retry %s after %v, want within [%v, %v]", i, s.id, d, s.want/2, s.want)
		}
	}
	if n := q.lens(); n.retrying != 2 || n.pending != 2 || n.waiting != 0 {
		t.Errorf("lens %+v, want a and b retrying", n)
	}

	q = newQueue(10, time.Millisecond, time.Millisecond)
	defer q.close()
	q.retry("c", time.Time{})
	<-q.ready
	for {
		if id, ok := q.get(); ok {
			if id != "c" {
				t.Fatalf("handed out %q, want c", id)
			}
			break
		}
		<-q.ready
	}
	if n := q.lens(); n.retrying != 0 || n.pending != 1 {
		t.Errorf("lens %+v after the retry came due: c processing, none retrying", n)
	}
}
