package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// A session's goroutines (event reader, sync, inspects) and timers all end
// with Run.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// barrierID names a container that never exists. An event for it, once
// inspected, proves that every event queued before it has been applied: one
// goroutine applies the queue in order.
var barrierID = ctrID(999_999)

type harness struct {
	t      *testing.T
	e      *engine
	cat    *catalog.Catalog
	w      *Watcher
	reg    *prometheus.Registry
	logs   *testutil.LogBuffer
	cancel context.CancelFunc
	done   chan error
}

// newHarness makes a watcher on a fake engine; change cfg or the tunables
// before start.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, e: newEngine(), cat: catalog.New(), reg: prometheus.NewRegistry(), logs: &testutil.LogBuffer{}}
	cfg.Catalog = h.cat
	cfg.Node = testNode
	cfg.AdvertiseIP = testAdvertise
	cfg.Registerer = h.reg
	cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := newWatcher(cfg, h.e.api())
	if err != nil {
		t.Fatal(err)
	}
	w.tunables.backoffMin, w.tunables.backoffMax = time.Millisecond, 4*time.Millisecond
	w.tunables.retryMin, w.tunables.retryMax = time.Millisecond, 4*time.Millisecond
	w.endpoint.quiet = 100 * time.Millisecond
	h.w = w
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.w.Run(ctx) }()
	h.t.Cleanup(func() {
		if err := h.stop(); err != nil {
			h.t.Error(err)
		}
		if h.t.Failed() {
			h.t.Logf("watcher log:\n%s", h.logs)
		}
	})
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() error {
	if h.done == nil {
		return nil
	}
	h.cancel()
	select {
	case err := <-h.done:
		h.done = nil
		if err != nil {
			return fmt.Errorf("Run returned %v, want nil", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("Run did not return after cancel")
	}
}

// waitFor polls cond; a deadline only turns a hang into a failure.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; catalog: %q; status %+v; pending %d", what, h.view(), h.w.Status(), h.w.pending.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) waitSynced() {
	h.t.Helper()
	h.waitFor("first sync", h.w.Synced)
}

// view renders the node's Docker containers: their names sorted, "(down)"
// for those not passing, "[n]" when a container has n != 1 instances, and
// any instance left without its container.
func (h *harness) view() string {
	ctrs, err := h.cat.Containers(catalog.SourceDocker, testNode)
	if err != nil {
		h.t.Fatal(err)
	}
	insts, err := h.cat.Instances(catalog.SourceDocker, testNode)
	if err != nil {
		h.t.Fatal(err)
	}
	per := map[string]int{}
	for _, i := range insts {
		per[i.ContainerID]++
	}
	var parts []string
	for _, c := range ctrs {
		s := c.Name
		if !c.Passing {
			s += "(down)"
		}
		if n := per[c.ID]; n != 1 {
			s += fmt.Sprintf("[%d]", n)
		}
		delete(per, c.ID)
		parts = append(parts, s)
	}
	for id := range per {
		parts = append(parts, "orphan:"+shortID(id))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func (h *harness) wantView(want string) {
	h.t.Helper()
	if got := h.view(); got != want {
		h.t.Fatalf("catalog %q, want %q", got, want)
	}
}

// barrier returns once every event emitted before it has been applied.
func (h *harness) barrier() {
	h.t.Helper()
	// Settled first: nothing pending, no overflow waiting to be taken, no
	// sync under way or due. An overflow would refuse the barrier's event
	// (the resync that follows covers the containers it lists, and the
	// barrier is none), and a sync, which runs beside the event loop, may
	// be the one that repairs what an overflow lost.
	h.waitFor("nothing pending", func() bool { return h.w.pending.Load() == 0 && !h.w.syncing.Load() })
	n := h.e.inspected(barrierID)
	if err := h.e.emit(events.ContainerEventType, "start", barrierID); err != nil {
		h.t.Fatal(err)
	}
	// Inspects run side by side, so the barrier's own inspect is not
	// enough: nothing may be waiting or in flight either. Every event
	// emitted before the barrier was taken from the queue no later than it.
	h.waitFor("barrier event", func() bool { return h.e.inspected(barrierID) > n && h.w.pending.Load() == 0 })
}

// event emits a container event and waits until it is applied.
func (h *harness) event(action, id string) {
	h.t.Helper()
	if err := h.e.emit(events.ContainerEventType, action, id); err != nil {
		h.t.Fatal(err)
	}
	h.barrier()
}

func (h *harness) metric(c prometheus.Collector) float64 { return promtest.ToFloat64(c) }

// TestEventSequence applies the events of a container's life, one at a
// time, and checks the catalog after each: the event only says which
// container to look at, the inspect says what is true.
func TestEventSequence(t *testing.T) {
	h := newHarness(t, Config{})
	a, b, x := newCtr(1, "a"), newCtr(2, "b"), newCtr(3, "x")
	b.State.Health = &container.Health{Status: container.Starting}
	h.e.run(a)
	h.e.run(b)
	h.e.run(x)
	h.e.mutate(x.ID, func(c *container.InspectResponse) { c.State.Running = false; c.State.Status = container.StateExited })
	c := newCtr(4, "c")

	// Status is read concurrently with everything below (go test -race).
	stopReader := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stopReader:
				return
			default:
				_ = h.w.Status()
				_ = h.w.Synced()
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	defer func() { close(stopReader); readers.Wait() }()

	h.start()
	h.waitSynced()
	h.wantView("a b(down)")

	steps := []struct {
		name   string
		change func()
		event  func() error
		want   string
		check  func(t *testing.T)
	}{
		{name: "start c", change: func() { h.e.run(c) },
			event: func() error { return h.e.emit(events.ContainerEventType, "start", c.ID) }, want: "a b(down) c"},
		{name: "die a", change: func() {
			h.e.mutate(a.ID, func(c *container.InspectResponse) { c.State.Running = false; c.State.Status = container.StateExited })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "die", a.ID) }, want: "b(down) c"},
		{name: "b turns healthy", change: func() {
			h.e.mutate(b.ID, func(c *container.InspectResponse) { c.State.Health.Status = container.Healthy })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "health_status: healthy", b.ID) }, want: "b c"},
		{name: "pause c", change: func() {
			h.e.mutate(c.ID, func(c *container.InspectResponse) { c.State.Paused = true; c.State.Status = container.StatePaused })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "pause", c.ID) }, want: "b c(down)"},
		{name: "unpause c", change: func() {
			h.e.mutate(c.ID, func(c *container.InspectResponse) { c.State.Paused = false; c.State.Status = container.StateRunning })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "unpause", c.ID) }, want: "b c"},
		{name: "rename c to d", change: func() {
			h.e.mutate(c.ID, func(c *container.InspectResponse) { c.Name = "/d" })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "rename", c.ID) }, want: "b d",
			check: func(t *testing.T) {
				if old, _ := h.cat.ContainersByTarget("c"); len(old) != 0 {
					t.Fatal("old name still answered")
				}
				inst, err := h.cat.Instance(c.ID + ":8080/tcp")
				if err != nil || inst.ContainerName != "d" {
					t.Fatalf("instance target not renamed: %+v, %v", inst, err)
				}
			}},
		{name: "b joins a second network", change: func() {
			h.e.mutate(b.ID, func(c *container.InspectResponse) {
				c.NetworkSettings.Networks["backend"] = &network.EndpointSettings{IPAddress: "10.9.0.2", IPPrefixLen: 24}
			})
		}, event: func() error {
			return h.e.emit(events.NetworkEventType, "connect", "netid-backend", "container", b.ID, "name", "backend", "type", "bridge")
		}, want: "b d",
			check: func(t *testing.T) {
				inst, err := h.cat.Instance(b.ID + ":8080/tcp")
				if err != nil || addrsStr(inst.Addrs) != "backend/10.9.0.2/24,bridge/172.17.0.4/16" {
					t.Fatalf("addresses after connect: %+v, %v", inst, err)
				}
			}},
		{name: "a starts again", change: func() { h.e.run(a) },
			event: func() error { return h.e.emit(events.ContainerEventType, "start", a.ID) }, want: "a b d"},
		{name: "destroy d (inspect: not found)", change: func() {
			h.e.set(func(m map[string]*container.InspectResponse) { delete(m, c.ID) })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "destroy", c.ID) }, want: "a b"},
		{name: "a lying die event changes nothing", change: func() {},
			event: func() error { return h.e.emit(events.ContainerEventType, "die", a.ID) }, want: "a b"},
		{name: "a start event for a stopped container adds nothing", change: func() {},
			event: func() error { return h.e.emit(events.ContainerEventType, "start", x.ID) }, want: "a b"},
		{name: "stop b, with only a kill event", change: func() {
			h.e.mutate(b.ID, func(c *container.InspectResponse) { c.State.Running = false; c.State.Status = container.StateExited })
		}, event: func() error { return h.e.emit(events.ContainerEventType, "kill", b.ID) }, want: "a"},
		{name: "events about other things are ignored", change: func() {},
			event: func() error {
				if err := h.e.emit(events.NetworkEventType, "destroy", "netid-backend"); err != nil {
					return err
				}
				return h.e.emit(events.ContainerEventType, "start", "not-a-container-id")
			}, want: "a"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change()
			if err := s.event(); err != nil {
				t.Fatal(err)
			}
			h.barrier()
			h.wantView(s.want)
			if s.check != nil {
				s.check(t)
			}
		})
	}
	if _, lists := h.e.counts(); lists != 1 {
		t.Errorf("%d lists, want 1: events alone kept the catalog", lists)
	}
	if n := h.e.inspected("not-a-container-id"); n != 0 {
		t.Errorf("an invalid container id was inspected")
	}
	st := h.w.Status()
	if !st.Connected || !st.Synced || st.Resyncs != 1 || st.Repairs != 0 || st.Events == 0 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	if got := h.metric(h.w.met.events.WithLabelValues("health_status")); got != 1 {
		t.Errorf("health_status events counted %v, want 1", got)
	}
	if got := h.metric(h.w.met.connected); got != 1 {
		t.Errorf("connected gauge %v", got)
	}
	for _, want := range []string{`msg="container added" container=c`, `msg="container removed" container=a`, `msg="container updated" container=d`} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// TestStartBetweenSubscribeAndList: a container that starts after the
// subscription but before the list is in both; it is stored exactly once.
// One that dies between its inspect and the replace is removed after it.
func TestStartBetweenSubscribeAndList(t *testing.T) {
	h := newHarness(t, Config{})
	y := newCtr(2, "y")
	h.e.run(y)
	x := newCtr(1, "x")
	var hookErr error
	h.e.onList = func(n int) error {
		if n != 1 {
			return nil
		}
		h.e.run(x)
		hookErr = h.e.emit(events.ContainerEventType, "start", x.ID)
		return nil
	}
	h.e.afterInspect = func(id string) {
		if id != y.ID || h.e.inspected(y.ID) != 1 {
			return
		}
		// y answered "running"; it dies before the catalog is replaced.
		h.e.mutate(y.ID, func(c *container.InspectResponse) { c.State.Running = false; c.State.Status = container.StateExited })
		if err := h.e.emit(events.ContainerEventType, "die", y.ID); err != nil {
			panic(err)
		}
	}
	h.start()
	h.waitSynced()
	h.barrier()
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	h.wantView("x")
	if got, _ := h.cat.ContainersByTarget("x"); len(got) != 1 {
		t.Fatalf("%d containers named x", len(got))
	}
	if n := h.e.inspected(x.ID); n != 2 {
		t.Errorf("x inspected %d times, want 2 (list, then its event)", n)
	}
}

// TestReconnectRepairs: the stream drops, Docker is away for a while (the
// catalog serves what it had), containers change without any event reaching
// the watcher, and the reconnect's list repairs the catalog.
func TestReconnectRepairs(t *testing.T) {
	h := newHarness(t, Config{})
	a, b, c := newCtr(1, "a"), newCtr(2, "b"), newCtr(3, "c")
	h.e.run(a)
	h.e.run(b)
	h.start()
	h.waitSynced()
	h.wantView("a b")

	h.e.setDown(true)
	h.e.breakStream(io.ErrUnexpectedEOF)
	h.waitFor("disconnect", func() bool { return !h.w.Status().Connected })
	streams, _ := h.e.counts()
	h.waitFor("a failed reconnect", func() bool { s, _ := h.e.counts(); return s > streams })
	h.wantView("a b") // stale, not empty
	if st := h.w.Status(); !st.Synced || st.LastError == "" {
		t.Fatalf("status while away %+v", st)
	}

	h.e.mutate(a.ID, func(c *container.InspectResponse) { c.State.Running = false; c.State.Status = container.StateExited })
	h.e.run(c)
	h.e.mutate(b.ID, func(c *container.InspectResponse) { c.State.Paused = true })
	h.e.comeUp()
	h.waitFor("reconnect", func() bool { return h.w.Status().Connected })
	h.wantView("b(down) c")

	st := h.w.Status()
	if st.Resyncs != 2 || st.Repairs != 3 || st.LastError != "" {
		t.Errorf("status %+v, want 2 resyncs and 3 repairs (a removed, c added, b updated)", st)
	}
	// What the reconnect's resync repaired, by name, for the dashboard.
	wantRepaired := []RepairedContainer{{"a", RepairRemoved}, {"b", RepairUpdated}, {"c", RepairAdded}}
	if r := st.LastRepair; r == nil || r.Reason != syncConnect || r.Count != 3 || !slices.Equal(r.Containers, wantRepaired) ||
		r.More != 0 || !r.Time.Equal(st.LastSync) {
		t.Errorf("last repair %+v, want at the last sync, reason connect, 3 containers: %v", r, wantRepaired)
	}
	if got := h.metric(h.w.met.repairs); got != 3 {
		t.Errorf("repairs_total %v", got)
	}
	if got := h.metric(h.w.met.reconnects); got < 1 {
		t.Errorf("reconnects_total %v", got)
	}
	if !strings.Contains(h.logs.String(), "docker event stream lost") {
		t.Errorf("no log line for the lost stream")
	}

	// The new stream works.
	h.e.mutate(b.ID, func(c *container.InspectResponse) { c.State.Paused = false })
	h.event("unpause", b.ID)
	h.wantView("b c")
}

// TestDaemonAbsentAtStart: no daemon is not fatal; the watcher retries,
// logs, and syncs when the daemon appears.
func TestDaemonAbsentAtStart(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.run(newCtr(1, "a"))
	h.e.setDown(true)
	h.start()
	h.waitFor("three attempts", func() bool { s, _ := h.e.counts(); return s >= 3 })
	if h.w.Synced() || h.view() != "" {
		t.Fatalf("synced without a daemon: %q", h.view())
	}
	if st := h.w.Status(); st.Connected || !strings.Contains(st.LastError, "Cannot connect") {
		t.Fatalf("status %+v", st)
	}
	h.e.comeUp()
	h.waitSynced()
	h.wantView("a")

	// One WARN for the repeated identical error, with attempt and delay;
	// the repeats go to DEBUG.
	var warns, debugs int
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if !strings.Contains(line, "docker unavailable") {
			continue
		}
		if !strings.Contains(line, "attempt=") || !strings.Contains(line, "delay=") {
			t.Errorf("retry line without attempt and delay: %s", line)
		}
		switch {
		case strings.Contains(line, "level=WARN"):
			warns++
		case strings.Contains(line, "level=DEBUG"):
			debugs++
		}
	}
	if warns != 1 || debugs < 1 {
		t.Errorf("%d WARN and %d DEBUG retry lines, want 1 and at least 1", warns, debugs)
	}
}

// TestQueueOverflow: more containers waiting for an inspect than the
// queue holds turn into a full resync instead.
func TestQueueOverflow(t *testing.T) {
	h := newHarness(t, Config{})
	h.w.tunables.maxQueue = 4
	h.start()
	h.waitSynced()

	release := make(chan struct{})
	var ctrs []*container.InspectResponse
	for i := 1; i <= 20; i++ {
		c := newCtr(i, fmt.Sprintf("c%d", i))
		ctrs = append(ctrs, c)
		h.e.run(c)
	}
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id == barrierID {
			return nil
		}
		select { // every container's inspect hangs: they pile up
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	before := h.w.Status().Events
	for _, c := range ctrs {
		if err := h.e.emit(events.ContainerEventType, "start", c.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.waitFor("events read", func() bool { return h.w.Status().Events >= before+20 })
	close(release)
	h.waitFor("overflow resync", func() bool { return h.metric(h.w.met.resyncs.WithLabelValues(syncOverflow)) >= 1 })
	h.barrier()
	h.wantView("c1 c10 c11 c12 c13 c14 c15 c16 c17 c18 c19 c2 c20 c3 c4 c5 c6 c7 c8 c9")
	if n := h.w.pending.Load(); n != 0 {
		t.Errorf("%d inspects pending after the resync", n)
	}
}

// TestEventsMergedPerContainer: a storm of events for one container while
// its inspect is slow costs one more inspect, not one per event.
func TestEventsMergedPerContainer(t *testing.T) {
	h := newHarness(t, Config{})
	a := newCtr(1, "a")
	a.State.Health = &container.Health{Status: container.Starting}
	h.e.run(a)
	h.start()
	h.waitSynced()
	h.wantView("a(down)")

	release := make(chan struct{})
	blocked := make(chan struct{})
	var once sync.Once
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id == a.ID {
			once.Do(func() { close(blocked); <-release })
		}
		return nil
	}
	n := h.e.inspected(a.ID)
	before := h.w.Status().Events
	for i := range 100 {
		status := []string{"unhealthy", "healthy"}[i%2]
		if i == 99 { // Docker changes the state, then tells
			h.e.mutate(a.ID, func(c *container.InspectResponse) { c.State.Health.Status = container.Healthy })
		}
		if err := h.e.emit(events.ContainerEventType, "health_status: "+status, a.ID); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-blocked
		}
	}
	h.waitFor("events read", func() bool { return h.w.Status().Events >= before+100 })
	close(release)
	h.barrier()
	h.wantView("a")
	if got := h.e.inspected(a.ID) - n; got != 2 {
		t.Errorf("a inspected %d times for 100 events, want 2 (the slow one, then one for all the events during it)", got)
	}
}

// TestSyncInspects: a full sync inspects every listed container exactly
// once, with maxInspects inspects in flight and never more, and leaves
// out a container removed between the list and its inspect.
func TestSyncInspects(t *testing.T) {
	h := newHarness(t, Config{})
	n := 3 * maxInspects
	var want []string
	for i := 1; i <= n; i++ {
		h.e.run(newCtr(i, fmt.Sprintf("c%03d", i)))
		if i != 7 {
			want = append(want, fmt.Sprintf("c%03d", i))
		}
	}
	var (
		mu               sync.Mutex
		inflight, most   int
		full             = make(chan struct{}) // closed once maxInspects are in flight
		fullOnce, goneID = sync.Once{}, ctrID(7)
	)
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id == goneID { // removed after the list
			h.e.set(func(m map[string]*container.InspectResponse) { delete(m, id) })
		}
		mu.Lock()
		inflight++
		most = max(most, inflight)
		if inflight == maxInspects {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		defer func() { mu.Lock(); inflight--; mu.Unlock() }()
		select { // hold every inspect until the limit is reached once
		case <-full:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.start()
	h.waitSynced()
	h.wantView(strings.Join(want, " "))
	mu.Lock()
	defer mu.Unlock()
	if most != maxInspects {
		t.Errorf("at most %d inspects in flight, want %d", most, maxInspects)
	}
	for i := 1; i <= n; i++ {
		if got := h.e.inspected(ctrID(i)); got != 1 {
			t.Errorf("container %d inspected %d times, want 1", i, got)
		}
	}
}

// TestFilters: only containers with the filter's labels are served, from
// the list and from events alike.
func TestFilters(t *testing.T) {
	h := newHarness(t, Config{Filters: []string{"label=env=prod"}})
	a, b := newCtr(1, "a", "env", "prod"), newCtr(2, "b", "env", "dev")
	h.e.run(a)
	h.e.run(b)
	h.start()
	h.waitSynced()
	h.wantView("a")
	h.event("start", b.ID)
	h.wantView("a")

	s := h.e.current()
	if got := s.opts.Filters.Get("label"); len(got) != 0 {
		t.Errorf("event subscription filters on labels %v: network events would be lost", got)
	}
	if !s.opts.Filters.ExactMatch("type", "network") || !s.opts.Filters.ExactMatch("type", "container") || !s.opts.Filters.ExactMatch("event", "health_status") {
		t.Errorf("event filters %v", s.opts.Filters)
	}
	if s.opts.Since == "" {
		t.Errorf("no since: events between the daemon's response and its subscription would be lost")
	}

	if _, err := newWatcher(Config{Catalog: catalog.New(), Node: "n", AdvertiseIP: testAdvertise, Filters: []string{"name=web"}}, h.e.api()); err == nil {
		t.Error("a non-label filter was accepted")
	}
}

// TestCancel: Run returns nil promptly when ctx is done, whatever it is
// doing, and closes its event stream.
func TestCancel(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness)
		reach func(h *harness)
	}{
		{name: "following events", setup: func(*harness) {}, reach: func(h *harness) { h.waitSynced() }},
		{name: "backing off", setup: func(h *harness) {
			h.e.setDown(true)
			h.w.tunables.backoffMin, h.w.tunables.backoffMax = time.Hour, time.Hour
		}, reach: func(h *harness) {
			h.waitFor("a failed attempt", func() bool { return h.w.Status().LastError != "" })
		}},
		{name: "inside an inspect", setup: func(h *harness) {
			h.e.run(newCtr(1, "a"))
			h.e.beforeInspect = func(ctx context.Context, id string) error { <-ctx.Done(); return ctx.Err() }
		}, reach: func(h *harness) {
			h.waitFor("the inspect", func() bool { return h.e.inspected(ctrID(1)) > 0 })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			tt.setup(h)
			h.start()
			tt.reach(h)
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			if s := h.e.current(); s != nil && s.ctx.Err() == nil {
				t.Error("event stream left open")
			}
			if h.w.Status().Connected {
				t.Error("still connected after Run returned")
			}
		})
	}
}

// TestRejectedNamesLoggedOnce: a bad label is one WARN and one count, not
// one per resync.
func TestRejectedNamesLoggedOnce(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.run(newCtr(1, "a", "SERVICE_NAME", "v1.books-ms"))
	h.start()
	h.waitSynced()
	h.event("start", ctrID(1))
	h.event("health_status: healthy", ctrID(1))
	h.wantView("a[0]")
	if got := strings.Count(h.logs.String(), "container name rejected"); got != 1 {
		t.Errorf("%d WARN lines, want 1", got)
	}
	if got := h.metric(h.w.met.rejected.WithLabelValues(reasonDotted)); got != 1 {
		t.Errorf("rejected_names_total{reason=dotted} %v, want 1", got)
	}
}

func TestMetricsLint(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.run(newCtr(1, "a"))
	h.start()
	h.waitSynced()
	h.event("start", ctrID(1))
	names := testutil.LintMetrics(t, h.reg)
	for _, want := range []string{
		"svcdns_watcher_connected", "svcdns_watcher_last_sync_timestamp_seconds", "svcdns_watcher_events_total",
		"svcdns_watcher_resyncs_total", "svcdns_watcher_event_queue_length", "svcdns_watcher_sync_duration_seconds",
		"svcdns_watcher_event_to_catalog_seconds", "svcdns_watcher_inspects_pending",
		"svcdns_watcher_inspect_errors_total", "svcdns_watcher_inspect_retries_pending", "svcdns_watcher_inspect_concurrency",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s missing from %v", want, names)
		}
	}
	if _, err := newMetrics(h.reg); err == nil {
		t.Error("registering twice did not fail")
	}
}

func TestBackoff(t *testing.T) {
	const lo, hi = 250 * time.Millisecond, 10 * time.Second
	for n := 1; n <= 40; n++ {
		want := min(lo<<min(n-1, 31), hi)
		for range 20 {
			if d := backoff(n, lo, hi); d < want/2 || d > want {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	id := ctrID(7)
	tests := []struct {
		name string
		msg  events.Message
		want event
	}{
		{"container event", events.Message{Type: events.ContainerEventType, Action: "die", Actor: events.Actor{ID: id}}, event{id: id, action: "die", gone: true}},
		//lint:ignore SA1019 the field older daemons fill
		{"deprecated id field", events.Message{Type: events.ContainerEventType, Action: "die", ID: id}, event{id: id, action: "die", gone: true}},
		{"docker stop's kill", events.Message{Type: events.ContainerEventType, Action: "kill", Actor: events.Actor{ID: id, Attributes: map[string]string{"signal": "15", "name": "web"}}}, event{id: id, action: "kill", signal: 15}},
		{"kill by name", events.Message{Type: events.ContainerEventType, Action: "kill", Actor: events.Actor{ID: id, Attributes: map[string]string{"signal": "SIGHUP"}}}, event{id: id, action: "kill", signal: 1}},
		{"kill without signal", events.Message{Type: events.ContainerEventType, Action: "kill", Actor: events.Actor{ID: id}}, event{id: id, action: "kill"}},
		{"health", events.Message{Type: events.ContainerEventType, Action: "health_status: healthy", Actor: events.Actor{ID: id}}, event{id: id, action: "health_status"}},
		{"network connect", events.Message{Type: events.NetworkEventType, Action: "connect", Actor: events.Actor{ID: "net", Attributes: map[string]string{"container": id}}}, event{id: id, action: "connect"}},
		{"network destroy", events.Message{Type: events.NetworkEventType, Action: "destroy", Actor: events.Actor{ID: "net"}}, event{action: "destroy", networks: true}},
		{"network create", events.Message{Type: events.NetworkEventType, Action: "create", Actor: events.Actor{ID: "net"}}, event{action: "create", networks: true}},
		{"container create", events.Message{Type: events.ContainerEventType, Action: "create", Actor: events.Actor{ID: id}}, event{action: "create"}},
		{"image event", events.Message{Type: events.ImageEventType, Action: "pull", Actor: events.Actor{ID: id}}, event{action: "other"}},
		{"short id", events.Message{Type: events.ContainerEventType, Action: "start", Actor: events.Actor{ID: id[:12]}}, event{action: "start"}},
		{"path in id", events.Message{Type: events.ContainerEventType, Action: "start", Actor: events.Actor{ID: "../../images/json"}}, event{action: "start"}},
	}
	for _, tt := range tests {
		if got := decodeEvent(tt.msg); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestQueue: ids are handed out once each, in order; an id named while
// it is processing waits until done, which reports its result stale; past
// max dirty ids the queue forgets them and reports an overflow.
func TestQueue(t *testing.T) {
	q := newQueue(3, time.Millisecond, time.Millisecond)
	stale := func(id string) bool { _, s := q.done(id); return s }
	for _, id := range []string{"a", "b", "a", "c", "b"} {
		q.add(hint{id: id, gone: id == "b"})
	}
	if hints, overflow := q.takeHints(); fmt.Sprint(hints) != "[{b true 0} {b true 0}]" || overflow {
		t.Fatalf("hints %v %t", hints, overflow)
	}
	var got []string
	for {
		id, ok := q.get()
		if !ok {
			break
		}
		got = append(got, id)
	}
	if fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("handed out %v", got)
	}
	q.add(hint{id: "a"}) // while a is processing
	if id, ok := q.get(); ok {
		t.Fatalf("handed out %s while it is processing", id)
	}
	if n := q.lens(); n.waiting != 0 || n.pending != 3 {
		t.Fatalf("lens %+v, want 0 waiting and 3 pending", n)
	}
	if !stale("a") || stale("b") {
		t.Fatal("a not stale or b stale")
	}
	if id, _ := q.get(); id != "a" {
		t.Fatalf("a not handed out again: %q", id)
	}
	q.done("a")
	q.done("c")
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		q.add(hint{id: id})
	}
	if _, overflow := q.takeHints(); !overflow {
		t.Fatal("no overflow")
	}
	if id, ok := q.get(); ok {
		t.Fatalf("handed out %s after the overflow", id)
	}
	if _, overflow := q.takeHints(); overflow {
		t.Fatal("overflow not cleared")
	}
	// An id is not handed out while a hint waits: the hint is acted on
	// first (TestRestartComesBack, where the order was left to a select).
	q.add(hint{id: "r", gone: true})
	if id, ok := q.get(); ok {
		t.Fatalf("handed out %s before its hint was taken", id)
	}
	q.takeHints()
	if id, _ := q.get(); id != "r" {
		t.Fatalf("handed out %q after the hint, want r", id)
	}
}

func TestNewNeedsCatalog(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a catalog succeeded")
	}
}

// BenchmarkFullSync: list, inspect and replace 500 containers through the
// fake engine (no Docker latency), i.e. the watcher's own cost of a resync.
func BenchmarkFullSync(b *testing.B) {
	e := newEngine()
	for i := 1; i <= 500; i++ {
		e.run(newCtr(i, fmt.Sprintf("c%d", i), "SERVICE_TAGS", "a,b"))
	}
	w, err := newWatcher(Config{Catalog: catalog.New(), Node: testNode, AdvertiseIP: testAdvertise}, e.api())
	if err != nil {
		b.Fatal(err)
	}
	q := newQueue(16, retryMin, retryMax)
	b.ReportAllocs()
	for b.Loop() {
		run := syncRun{reason: syncPeriodic, began: time.Now(), listedAt: q.track()}
		run = w.readSync(context.Background(), q, run)
		if run.err != nil {
			b.Fatal(run.err)
		}
		if _, _, err := w.applySync(q, w.store, run, false); err != nil {
			b.Fatal(err)
		}
		q.untrack()
	}
}

// TestStoppedLeavesAnswersAtOnce: a die event takes the container out of
// the answers before its inspect returns (during docker rm -f the daemon
// holds the inspect for 100 ms and more), and other containers' events in
// the same moment are not held up by that inspect.
func TestStoppedLeavesAnswersAtOnce(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := newCtr(1, "a"), newCtr(2, "b")
	h.e.run(a)
	h.start()
	h.waitSynced()
	h.wantView("a")

	release := make(chan struct{})
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id == a.ID {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	h.e.mutate(a.ID, func(c *container.InspectResponse) { c.State.Running, c.State.Status = false, container.StateExited })
	if err := h.e.emit(events.ContainerEventType, "die", a.ID); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a gone while its inspect blocks", func() bool { return h.view() == "" })
	h.e.run(b)
	if err := h.e.emit(events.ContainerEventType, "start", b.ID); err != nil {
		t.Fatal(err)
	}
	h.waitFor("b answered while a's inspect blocks", func() bool { return h.view() == "b" })
	close(release)
	h.barrier()
	h.wantView("b")
}

// TestRestartComesBack: die and start of a container merged in one batch
// (a restart policy) leave it answered: the inspect, not the event, decides.
func TestRestartComesBack(t *testing.T) {
	h := newHarness(t, Config{})
	a := newCtr(1, "a")
	h.e.run(a)
	h.start()
	h.waitSynced()
	release := make(chan struct{})
	blocked := make(chan struct{})
	var once sync.Once
	b := newCtr(2, "b")
	h.e.run(b)
	h.e.beforeInspect = func(ctx context.Context, id string) error {
		if id == b.ID {
			once.Do(func() { close(blocked); <-release })
		}
		return nil
	}
	if err := h.e.emit(events.ContainerEventType, "start", b.ID); err != nil { // an inspect in flight while a's events come
		t.Fatal(err)
	}
	<-blocked
	for _, action := range []string{"die", "start"} { // it runs again: the engine still says running
		if err := h.e.emit(events.ContainerEventType, action, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	h.barrier()
	h.wantView("a b")
}

// TestStatusJSON: /healthz encodes Status as its "docker" object, in these
// names (README's /healthz example).
func TestStatusJSON(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		st   Status
		want string
	}{
		{Status{}, `{"connected":false,"synced":false,"events":0,"resyncs":0,"repairs":0,"retries_pending":0,"inspect_concurrency":0}`},
		{Status{Connected: true, Synced: true, LastSync: t0, Events: 7, Resyncs: 2, Repairs: 1, InspectConcurrency: 32},
			`{"connected":true,"synced":true,"last_sync":"2025-03-01T12:00:00Z","events":7,"resyncs":2,"repairs":1,"retries_pending":0,"inspect_concurrency":32}`},
		{Status{Synced: true, LastSync: t0, Resyncs: 2, Repairs: 1, LastRepair: newRepair(t0, "periodic", 1, []RepairedContainer{{"web-1", RepairRemoved}})},
			`{"connected":false,"synced":true,"last_sync":"2025-03-01T12:00:00Z","events":0,"resyncs":2,"repairs":1,` +
				`"last_repair":{"time":"2025-03-01T12:00:00Z","reason":"periodic","count":1,"containers":[{"name":"web-1","action":"removed"}]},` +
				`"retries_pending":0,"inspect_concurrency":0}`},
		{Status{Synced: true, LastSync: t0, LastError: "connection refused", InspectFailures: map[string]uint64{"refused": 3, "timeout": 0}, RetriesPending: 2, InspectConcurrency: 4},
			`{"connected":false,"synced":true,"last_sync":"2025-03-01T12:00:00Z","events":0,"resyncs":0,"repairs":0,"last_error":"connection refused",` +
				`"inspect_failures":{"refused":3,"timeout":0},"retries_pending":2,"inspect_concurrency":4}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.st)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%+v encodes as\n %s\nwant\n %s", tt.st, b, tt.want)
		}
		if s, c := tt.st.Health(); s != tt.st.Synced || c != tt.st.Connected {
			t.Errorf("Health() = %t, %t", s, c)
		}
	}
}
