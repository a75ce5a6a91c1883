package watcher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"

	"github.com/svcdns/svcdns/catalog"
)

// ov3ID is a third network's id, for the tests that create several.
const ov3ID = "e6g8i0k2m4o6q8s0u2w4y6a8c"

// hangNetLists makes every network list from now on hold its answer (the
// networks as they were when it was sent) until release, or until its
// context ends; started is closed when the first one holds. release may
// be called more than once.
func (h *harness) hangNetLists() (started <-chan struct{}, release func()) {
	begun, free := make(chan struct{}), make(chan struct{})
	var beginOnce, freeOnce sync.Once
	h.e.mu.Lock()
	h.e.beforeNetList = func(ctx context.Context) error {
		beginOnce.Do(func() { close(begun) })
		select {
		case <-free:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.e.mu.Unlock()
	return begun, func() { freeOnce.Do(func() { close(free) }) }
}

func (e *engine) netListCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.netLists
}

// emitNet emits a network event without waiting for it to be applied.
func (h *harness) emitNet(action, netID string, attrs ...string) {
	h.t.Helper()
	if err := h.e.emit(events.NetworkEventType, action, netID, attrs...); err != nil {
		h.t.Fatal(err)
	}
}

// onBridge is c on the default bridge, as the network list names it.
func onBridge(c *container.InspectResponse) *container.InspectResponse {
	c.NetworkSettings.Networks["bridge"].NetworkID = bridgeID
	return c
}

// TestEventsApplyDuringNetworkList: a network list runs beside the event
// loop, so while the daemon holds one (up to the 30 s call timeout), a
// container that dies leaves the answers, and one that starts on a
// listed network comes in, before the list returns.
func TestEventsApplyDuringNetworkList(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.addNetwork(bridgeID, "bridge", "bridge", "local", "172.17.0.0/16")
	a, b, c := onBridge(newCtr(1, "a")), onBridge(newCtr(2, "b")), onBridge(newCtr(3, "c"))
	h.e.run(a)
	h.e.run(b)
	h.start()
	h.waitSynced()
	h.wantView("a b")

	started, release := h.hangNetLists()
	defer release()
	h.e.addNetwork(ov2ID, "backend", "bridge", "local", "172.20.0.0/16")
	h.emitNet("create", ov2ID)
	h.wait("the network list", started)
	h.e.mutate(b.ID, exited)
	h.emitNow("die", b.ID)
	h.waitFor("b gone while the network list hangs", func() bool { return h.view() == "a" })
	h.e.run(c)
	h.emitNow("start", c.ID)
	h.waitFor("c in while the network list hangs", func() bool { return h.view() == "a c" })
	if h.cat.Network(ov2ID) != nil {
		t.Fatal("the held network list was applied")
	}

	release()
	h.barrier()
	h.wantView("a c")
	if h.cat.Network(ov2ID) == nil {
		t.Error("the network list, once released, is not in the catalog")
	}
}

// TestJoinNetworkDuringList: a container that joins a network created
// after the last list applied is inspected while the next list is held,
// and mapped without the new network: that inspect is not stored (the
// address would be answered as on a local network), and the container is
// inspected again once the list is applied.
func TestJoinNetworkDuringList(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.addNetwork(bridgeID, "bridge", "bridge", "local", "172.17.0.0/16")
	db := onBridge(newCtr(2, "db"))
	h.e.run(db)
	h.start()
	h.waitSynced()
	const before = "bridge=172.17.0.4/16"
	if got := h.addrsOf("db"); got != before {
		t.Fatalf("db: %s, want %s", got, before)
	}

	started, release := h.hangNetLists()
	defer release()
	h.e.addNetwork(ov2ID, "ov2", "overlay", "swarm", "10.0.10.0/24")
	h.emitNet("create", ov2ID)
	h.wait("the network list", started)
	n := h.e.inspected(db.ID)
	h.e.attach(db.ID, "ov2", ov2ID, "10.0.10.7", 24)
	h.emitNet("connect", ov2ID, "container", db.ID)
	h.waitFor("db's inspect while the list hangs", func() bool {
		return strings.Contains(h.logs.String(), "inspected again after the network list") || h.addrsOf("db") != before
	})
	if got := h.addrsOf("db"); got != before {
		t.Fatalf("db stored while the network list that has ov2 hangs: %s, want %s", got, before)
	}
	if h.e.inspected(db.ID) <= n {
		t.Fatal("db's inspect waited for the network list")
	}

	release()
	h.barrier()
	if got, want := h.addrsOf("db"), before+", ov2=10.0.10.7/24 spans("+ov2ID+")"; got != want {
		t.Errorf("db after the list: %s, want %s", got, want)
	}
}

// TestNetworkListsCoalesced: network events that come while a list is
// held send one more list when it returns, not one each; that list has
// the networks they created, which the held one lacks.
func TestNetworkListsCoalesced(t *testing.T) {
	h := newHarness(t, Config{})
	var ctrs []*container.InspectResponse
	for i := 1; i <= 3; i++ {
		c := newCtr(i, fmt.Sprintf("x%d", i))
		ctrs = append(ctrs, c)
		h.e.run(c)
	}
	h.start()
	h.waitSynced()
	h.wantView("x1 x2 x3")
	lists := h.e.netListCount()

	started, release := h.hangNetLists()
	defer release()
	h.e.addNetwork(ovID, "ov", "overlay", "swarm", "10.0.9.0/24")
	h.emitNet("create", ovID)
	h.wait("the network list", started)
	// Each create is taken by the loop before the die after it: the turn
	// that takes a die's hint asks for the lists first.
	for i, id := range []string{ov2ID, ov3ID} {
		h.e.addNetwork(id, "ov"+fmt.Sprint(i+2), "overlay", "swarm", fmt.Sprintf("10.0.%d.0/24", 10+i))
		h.emitNet("create", id)
		h.e.mutate(ctrs[i].ID, exited)
		h.emitNow("die", ctrs[i].ID)
		want := strings.Join([]string{"x1", "x2", "x3"}[i+1:], " ")
		h.waitFor("the die after the create", func() bool { return h.view() == want })
	}
	if n := h.e.netListCount(); n != lists+1 {
		t.Fatalf("%d network lists while one is held, want 1", n-lists)
	}

	release()
	h.barrier()
	for _, id := range []string{ovID, ov2ID, ov3ID} {
		if h.cat.Network(id) == nil {
			t.Errorf("network %s not in the catalog: no list after the held one", id[:4])
		}
	}
	if n := h.e.netListCount(); n != lists+2 {
		t.Errorf("%d network lists, want 2: the held one and one for the events that came meanwhile", n-lists)
	}
}

// TestNetworkListRetriedAfterEvent: a network list after a network's
// create that the endpoint refuses is retried with backoff until it
// works; events apply meanwhile.
func TestNetworkListRetriedAfterEvent(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := newCtr(1, "a"), newCtr(2, "b")
	h.e.run(a)
	h.e.run(b)
	h.start()
	h.waitSynced()
	lists := h.e.netListCount()

	h.e.mu.Lock()
	h.e.netsErr = causeErrs[causeRefused]
	h.e.mu.Unlock()
	h.e.addNetwork(ov2ID, "ov2", "overlay", "swarm", "10.0.10.0/24")
	h.emitNet("create", ov2ID)
	h.waitFor("the refused list retried", func() bool { return h.e.netListCount() >= lists+3 })
	h.e.mutate(b.ID, exited)
	h.emitNow("die", b.ID)
	h.waitFor("b gone while the list is retried", func() bool { return h.view() == "a" })
	if h.cat.Network(ov2ID) != nil {
		t.Fatal("a refused network list applied")
	}

	h.e.mu.Lock()
	h.e.netsErr = nil
	h.e.mu.Unlock()
	h.waitFor("the retried list applied", func() bool { return h.cat.Network(ov2ID) != nil })
	h.barrier()
	h.wantView("a")
}

// needsNetworks holds back an inspect mapped without one of its
// container's networks while a list is due, or after one that has it
// was applied; one with every network listed, or none newer due, is
// stored.
func TestNeedsNetworks(t *testing.T) {
	tests := []struct {
		name     string
		unlisted []string
		listing  bool
		want     bool
	}{
		{name: "every network listed", listing: true},
		{name: "unlisted, a list due", unlisted: []string{ov2ID}, listing: true, want: true},
		{name: "unlisted, since listed", unlisted: []string{ovID}, want: true},
		{name: "unlisted, no list due", unlisted: []string{ov2ID}},
	}
	w := &Watcher{docker: &daemon{}}
	w.docker.useNetworks([]catalog.Network{{ID: ovID, Name: "ov", SpansHosts: true}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.needsNetworks(mapped{unlisted: tt.unlisted}, tt.listing); got != tt.want {
				t.Errorf("needsNetworks = %v, want %v", got, tt.want)
			}
		})
	}
}

// mapContainer notes the networks a container has an address on that
// the network list lacks; an endpoint without a network id is none, and
// a container that is not served notes nothing.
func TestUnlistedNetworks(t *testing.T) {
	listed := map[string]*catalog.Network{bridgeID: {ID: bridgeID, Name: "bridge"}}
	tests := []struct {
		name    string
		nets    map[string]*catalog.Network
		stopped bool
		want    []string
	}{
		{name: "one unlisted", nets: listed, want: []string{ov2ID}},
		{name: "no list", want: []string{bridgeID, ov2ID}},
		{name: "not running", stopped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := onBridge(newCtr(1, "web"))
			c.NetworkSettings.Networks["ov2"] = &network.EndpointSettings{NetworkID: ov2ID, IPAddress: "10.0.10.5", IPPrefixLen: 24}
			c.NetworkSettings.Networks["noid"] = &network.EndpointSettings{IPAddress: "10.0.11.5", IPPrefixLen: 24}
			if tt.stopped {
				exited(c)
			}
			m := mapContainer(*c, nil, convertOptions{Node: testNode, AdvertiseIP: testAdvertise, Networks: tt.nets})
			if !slices.Equal(m.unlisted, tt.want) {
				t.Errorf("unlisted %v, want %v", m.unlisted, tt.want)
			}
		})
	}
}

// A parked id counts as pending and is not handed out until unpark.
func TestQueuePark(t *testing.T) {
	q := newQueue(16, retryMin, retryMax)
	defer q.close()
	q.park("a", time.Now())
	if n := q.lens().pending; n != 1 {
		t.Errorf("pending %d while parked, want 1", n)
	}
	if id, ok := q.get(); ok {
		t.Fatalf("get handed out %s while it is parked", id)
	}
	q.unpark()
	if id, ok := q.get(); !ok || id != "a" {
		t.Fatalf("get = %q, %v after unpark, want a", id, ok)
	}
	if since, stale := q.done("a"); stale || since.IsZero() {
		t.Errorf("done: since %v, stale %v; want the parked inspect's events, not stale", since, stale)
	}
}
