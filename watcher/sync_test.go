package watcher

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// hangInspects makes every inspect of id from now on wait until release
// (or its context ends); started is closed when the first one begins.
// release may be called more than once.
func (h *harness) hangInspects(id string) (started <-chan struct{}, release func()) {
	begun, free := make(chan struct{}), make(chan struct{})
	var beginOnce, freeOnce sync.Once
	h.e.mu.Lock()
	prev := h.e.beforeInspect
	h.e.beforeInspect = func(ctx context.Context, got string) error {
		if got == id {
			beginOnce.Do(func() { close(begun) })
			select {
			case <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if prev != nil {
			return prev(ctx, got)
		}
		return nil
	}
	h.e.mu.Unlock()
	return begun, func() { freeOnce.Do(func() { close(free) }) }
}

// wait returns once ch is closed; the harness's deadline turns a hang
// into a failure.
func (h *harness) wait(what string, ch <-chan struct{}) {
	h.t.Helper()
	h.waitFor(what, func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	})
}

// emitNow emits a container event without waiting for it to be applied
// (a barrier would wait for nothing pending, not for the sync).
func (h *harness) emitNow(action, id string, attrs ...string) {
	h.t.Helper()
	if err := h.e.emit(events.ContainerEventType, action, id, attrs...); err != nil {
		h.t.Fatal(err)
	}
}

func exited(c *container.InspectResponse) {
	c.State.Running, c.State.Status = false, container.StateExited
}

// TestEventsApplyDuringSync: a full sync runs beside the event loop, so
// while one of its inspects hangs (a daemon holding it, up to the 30 s
// call timeout), a container that dies leaves the answers at once, not
// when the sync ends.
func TestEventsApplyDuringSync(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := newCtr(1, "a"), newCtr(2, "b")
	h.e.run(a)
	h.e.run(b)
	h.start()
	h.waitSynced()
	h.wantView("a b")

	started, release := h.hangInspects(a.ID)
	defer release()
	h.e.breakStream(io.EOF) // the reconnect's full sync inspects a, which hangs
	h.wait("the sync's inspect of a", started)
	h.e.mutate(b.ID, exited)
	h.emitNow("die", b.ID)
	h.waitFor("b gone while the sync's inspect of a hangs", func() bool { return h.view() == "a" })
	if st := h.w.Status(); st.Resyncs != 1 {
		t.Fatalf("status %+v: the sync ended while a's inspect hangs", st)
	}

	release()
	h.waitFor("the reconnect's sync", func() bool { st := h.w.Status(); return st.Resyncs == 2 && st.Connected })
	h.barrier()
	h.wantView("a") // the sync read b running; the die after it wins
}

// TestSyncEventRaces: events that reach the watcher while a full sync is
// under way (its list done, one inspect hanging) win over what the sync
// read before them; what the sync read after them is written.
func TestSyncEventRaces(t *testing.T) {
	tests := []struct {
		name string
		// beforeCut changes the engine while the stream is cut: no event
		// reaches the watcher, the reconnect's list sees it.
		beforeCut func(h *harness, b, c *container.InspectResponse)
		// hangB makes b's inspects hang too, from before the cut.
		hangB bool
		// during runs while the sync's inspect of a hangs; it waits until
		// its events are applied.
		during   func(h *harness, r race)
		want     string
		wantAddr string // b's addresses at the end, when set
	}{
		{
			name: "die after its inspect",
			during: func(h *harness, r race) {
				h.wait("b's inspect", r.bRead)
				h.e.mutate(r.b.ID, exited)
				h.emitNow("die", r.b.ID)
				h.waitFor("b gone", func() bool { return h.view() == "a c" })
			},
			want: "a c",
		},
		{
			name:  "die before its inspect",
			hangB: true,
			during: func(h *harness, r race) {
				h.wait("b's inspect", r.bStarted)
				h.e.mutate(r.b.ID, exited)
				h.emitNow("die", r.b.ID)
				h.waitFor("b gone", func() bool { return h.view() == "a c" })
				r.bRelease() // b's inspect now reads it exited
			},
			want: "a c",
		},
		{
			name: "restart after its inspect, on a new address",
			during: func(h *harness, r race) {
				h.wait("b's inspect", r.bRead)
				h.e.mutate(r.b.ID, func(c *container.InspectResponse) {
					c.NetworkSettings.Networks["bridge"].IPAddress = "172.17.9.9"
				})
				h.emitNow("die", r.b.ID)
				h.emitNow("start", r.b.ID)
				h.waitFor("b's new address", func() bool { return h.addrsOf("b") == "bridge=172.17.9.9/16" })
			},
			want:     "a b c",
			wantAddr: "bridge=172.17.9.9/16",
		},
		{
			name:      "start after the list that did not have it",
			beforeCut: func(h *harness, _, c *container.InspectResponse) { h.e.mutate(c.ID, exited) },
			during: func(h *harness, r race) {
				n := h.e.inspected(r.c.ID) // the list did not have c: the sync does not inspect it
				h.e.run(r.c)
				h.emitNow("start", r.c.ID)
				h.waitFor("c's start applied", func() bool { return h.e.inspected(r.c.ID) > n && h.w.pending.Load() == 0 })
			},
			want: "a b c",
		},
		{
			name: "a new container after the list",
			beforeCut: func(h *harness, _, c *container.InspectResponse) {
				h.e.set(func(m map[string]*container.InspectResponse) { delete(m, c.ID) })
			},
			during: func(h *harness, _ race) {
				d := newCtr(4, "d")
				h.e.run(d)
				h.emitNow("start", d.ID)
				h.waitFor("d added", func() bool { return strings.Contains(h.view(), "d") })
			},
			want: "a b d",
		},
		{
			name: "stop signal after its inspect",
			during: func(h *harness, r race) {
				h.wait("b's inspect", r.bRead)
				h.emitNow("kill", r.b.ID, "signal", "15")
				h.waitFor("b drained", func() bool { return strings.Contains(h.view(), "b(down)") })
			},
			want: "a b(down) c",
		},
		{
			name:      "removed before the list, no event",
			beforeCut: func(h *harness, b, _ *container.InspectResponse) { h.e.mutate(b.ID, exited) },
			during:    func(*harness, race) {},
			want:      "a c", // the sync still repairs what no event told
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a, b, c := newCtr(1, "a"), newCtr(2, "b"), newCtr(3, "c")
			for _, x := range []*container.InspectResponse{a, b, c} {
				h.e.run(x)
			}
			h.start()
			h.waitSynced()
			h.wantView("a b c")

			started, release := h.hangInspects(a.ID)
			defer release()
			r := race{b: b, c: c, bRead: h.inspectedOnce(b.ID)}
			if tt.hangB {
				r.bStarted, r.bRelease = h.hangInspects(b.ID)
				defer r.bRelease()
			}
			if tt.beforeCut != nil {
				tt.beforeCut(h, b, c)
			}
			h.e.breakStream(io.EOF)
			h.wait("the sync's inspect of a", started)
			tt.during(h, r)
			if st := h.w.Status(); st.Resyncs != 1 {
				t.Fatalf("status %+v: the sync ended while a's inspect hangs", st)
			}
			release()
			h.waitFor("the reconnect's sync", func() bool { st := h.w.Status(); return st.Resyncs == 2 && st.Connected })
			h.barrier()
			h.wantView(tt.want)
			if tt.wantAddr != "" {
				if got := h.addrsOf("b"); got != tt.wantAddr {
					t.Errorf("b at %s, want %s", got, tt.wantAddr)
				}
			}
		})
	}
}

// race is what a case of TestSyncEventRaces acts on: containers b and c,
// and b's first inspect after the cut (the sync's).
type race struct {
	b, c     *container.InspectResponse
	bRead    <-chan struct{} // closed once it has read b
	bStarted <-chan struct{} // with hangB: closed once it hangs
	bRelease func()          // with hangB: ends b's hang
}

// inspectedOnce returns a channel closed once an inspect of id that
// starts from now on has read the container.
func (h *harness) inspectedOnce(id string) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	prev := h.e.afterInspect
	h.e.afterInspect = func(got string) {
		if prev != nil {
			prev(got)
		}
		if got == id {
			once.Do(func() { close(done) })
		}
	}
	return done
}

// TestQueueTracksEvents: while a sync tracks, the queue numbers each
// container's last event, overflow or not, and queues again what an
// overflow lost; untrack forgets them.
func TestQueueTracksEvents(t *testing.T) {
	q := newQueue(2, time.Millisecond, time.Millisecond)
	defer q.close()
	q.add(hint{id: "early"}) // before the sync: not tracked
	listed := q.track()
	q.add(hint{id: "a"})
	read := q.eventSeq()
	q.add(hint{id: "b", gone: true})
	q.add(hint{id: "c"})
	q.add(hint{id: "d"}) // past max: the queue overflows, d is still numbered
	if _, overflow := q.takeHints(); !overflow {
		t.Fatal("no overflow")
	}
	tests := []struct {
		id    string
		after uint64
		want  bool
	}{
		{"early", 0, false},
		{"a", listed, true},
		{"a", read, false},
		{"b", read, true},
		{"d", read, true},
		{"never", 0, false},
	}
	for _, tt := range tests {
		if got := q.eventSince(tt.id, tt.after); got != tt.want {
			t.Errorf("eventSince(%s, %d) = %t, want %t", tt.id, tt.after, got, tt.want)
		}
	}
	got := q.touchedSince(read)
	slices.Sort(got)
	if fmt.Sprint(got) != "[b c d]" {
		t.Errorf("touched since the read: %v", got)
	}
	// The overflow refused d: the ids the sync leaves to their events are
	// queued again.
	q.requeueLost([]string{"d"})
	if id, ok := q.get(); !ok || id != "d" {
		t.Errorf("handed out %q, %t after requeueLost, want d", id, ok)
	}
	q.untrack()
	if q.eventSince("b", 0) || len(q.touchedSince(0)) != 0 {
		t.Error("events still tracked after untrack")
	}
	q.track()
	q.requeueLost([]string{"e"}) // nothing lost since this track
	if id, ok := q.get(); ok {
		t.Errorf("handed out %q with nothing lost", id)
	}
}

// TestSyncEventsInterleaved: containers start and die while full syncs run
// back to back, their inspects taking a moment each; whenever every event
// sent so far is applied, the catalog equals the running containers, and
// no sync that read older state than an event takes it back afterwards.
func TestSyncEventsInterleaved(t *testing.T) {
	const n, ops, every = 20, 200, 10
	h := newHarness(t, Config{Resync: time.Millisecond})
	ctrs := make([]*container.InspectResponse, n)
	running := make([]bool, n)
	for i := range ctrs {
		ctrs[i] = newCtr(i+1, fmt.Sprintf("c%02d", i+1))
		if i%2 == 0 {
			h.e.run(ctrs[i])
			running[i] = true
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	h.e.beforeInspect = func(ctx context.Context, _ string) error {
		rmu.Lock()
		d := time.Duration(rnd.IntN(300)) * time.Microsecond
		rmu.Unlock()
		time.Sleep(d) // the daemon's work: syncs and events overlap
		return nil
	}
	want := func() string {
		var names []string
		for i, r := range running {
			if r {
				names = append(names, fmt.Sprintf("c%02d", i+1))
			}
		}
		return strings.Join(names, " ")
	}
	h.start()
	h.waitSynced()
	for op := 1; op <= ops; op++ {
		rmu.Lock()
		i := rnd.IntN(n)
		rmu.Unlock()
		if running[i] {
			h.e.mutate(ctrs[i].ID, exited)
			h.emitNow("die", ctrs[i].ID)
		} else {
			h.e.run(ctrs[i])
			h.emitNow("start", ctrs[i].ID)
		}
		running[i] = !running[i]
		if op%every == 0 {
			h.barrier()
			if got := h.view(); got != want() {
				t.Fatalf("after op %d: catalog %q, want %q", op, got, want())
			}
		}
	}
	syncs := h.w.Status().Resyncs
	h.waitFor("two more syncs", func() bool { return h.w.Status().Resyncs >= syncs+2 })
	h.wantView(want())
	t.Logf("%d syncs during %d events", h.w.Status().Resyncs, ops)
}

// TestSyncNetworkCreatedDuringSync: a network is created while a full sync
// runs (during its inspects, or while it lists the networks) and a
// container joins it; the sync inspects the container after the join,
// but maps it with the networks listed before (the next network list is
// still under way). That read is not written: the container's own
// inspect, after the new list, says it is on a network that spans hosts,
// and stays.
func TestSyncNetworkCreatedDuringSync(t *testing.T) {
	for _, during := range []string{"inspects", "network list"} {
		t.Run(during, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.e.addNetwork(bridgeID, "bridge", "bridge", "local", "172.17.0.0/16")
			a, db := newCtr(1, "a"), newCtr(2, "db")
			h.e.run(a)
			h.e.run(db)
			h.start()
			h.waitSynced()

			held, free := h.holdNetworkLists()
			defer close(free)
			started, release := h.hangInspects(a.ID) // the sync ends when the test says
			defer release()
			join := func() { // db joins ov2; its connect event is queued
				h.e.attach(db.ID, "ov2", ov2ID, "10.0.10.7", 24)
				n := h.w.Status().Events
				h.emitNetwork("connect", ov2ID, "container", db.ID)
				h.waitFor("the connect event queued", func() bool { return h.w.Status().Events > n })
			}
			create := func() {
				n := h.w.Status().Events
				h.emitNetwork("create", ov2ID)
				h.waitFor("the create event queued", func() bool { return h.w.Status().Events > n })
			}
			listing, listed := make(chan struct{}), make(chan struct{})
			h.e.mu.Lock()
			h.e.onList = func(n int) error {
				if n != 2 { // the reconnect's list
					return nil
				}
				if during == "network list" {
					h.e.addNetwork(ov2ID, "ov2", "overlay", "swarm", "10.0.10.0/24") // after the sync's network list read
					join()
					return nil
				}
				close(listing)
				<-listed
				return nil
			}
			h.e.mu.Unlock()
			h.e.breakStream(io.EOF)
			<-held // the sync's network list
			if during == "network list" {
				create()
				free <- struct{}{}
			} else {
				free <- struct{}{}
				h.wait("the reconnect's list", listing)
				h.e.addNetwork(ov2ID, "ov2", "overlay", "swarm", "10.0.10.0/24")
				create()
			}
			<-held // the list after the create event
			if during == "inspects" {
				join()
				close(listed) // the sync lists and inspects db now, after the join
			}
			h.wait("the sync's inspect of a", started)
			h.waitFor("the sync's inspect of db mapped", func() bool {
				h.w.limit.mu.Lock()
				defer h.w.limit.mu.Unlock()
				return h.e.inspected(db.ID) >= 2 && h.w.limit.inflight == 1 // a's alone
			})
			free <- struct{}{}
			want := "bridge=172.17.0.4/16, ov2=10.0.10.7/24 spans(" + ov2ID + ")"
			h.waitFor("db's inspect after the network list", func() bool { return h.addrsOf("db") == want })

			release()
			h.waitFor("the reconnect's sync", func() bool { st := h.w.Status(); return st.Resyncs == 2 && st.Connected })
			h.barrier()
			if got := h.addrsOf("db"); got != want {
				t.Errorf("db after the sync: %s, want %s", got, want)
			}
		})
	}
}

// holdNetworkLists makes the engine's network lists from now on wait: held
// gets a value as each begins, a send on free lets it go, and closing free
// lets every list go.
func (h *harness) holdNetworkLists() (held <-chan struct{}, free chan<- struct{}) {
	heldc, freec := make(chan struct{}), make(chan struct{})
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	h.e.beforeNetworks = func(ctx context.Context) error {
		select {
		case heldc <- struct{}{}:
		case <-freec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-freec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return heldc, freec
}

func (h *harness) emitNetwork(action, id string, attrs ...string) {
	h.t.Helper()
	if err := h.e.emit(events.NetworkEventType, action, id, attrs...); err != nil {
		h.t.Fatal(err)
	}
}
