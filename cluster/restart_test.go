package cluster

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/internal/testutil"
)

// within polls cond until it holds or bound passes: a failure bound for
// waits that include failure detection and the reclaim of a dead name.
func within(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node killed and started again under its name on another address
// before the others have declared it dead (a container restarted with a
// new IP) is not refused for good: it waits for its old self to be
// declared dead, takes the name back, and every peer holds its new
// records and none of the old.
func TestRestartOnNewAddress(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	register(t, n2, "old", "web", "10.0.0.2")
	for _, n := range []*testNode{n1, n3} {
		eventually(t, n.Name()+" holds old", func() bool { return slices.Equal(serviceOn(t, n, "web"), []string{"n2/old"}) })
	}
	oldAddr := n2.Addr()
	n2.kill()

	var logB testutil.LogBuffer
	n2b := startNode(t, "n2", logTo(&logB), n1, n3)
	if n2b.Addr() == oldAddr {
		t.Fatalf("the restarted node got the old address %v", oldAddr)
	}
	register(t, n2b, "new", "web", "10.0.0.3")
	for _, n := range []*testNode{n1, n3} {
		within(t, 30*time.Second, n.Name()+" holds only n2's new records", func() bool {
			select {
			case <-n2b.done:
				t.Fatalf("the restarted node stopped: %v\n%s", n2b.err, logB.String())
			default:
			}
			return slices.Equal(serviceOn(t, n, "web"), []string{"n2/new"})
		})
		m := n.Members()
		if m[1].Name != "n2" || m[1].Addr != n2b.Addr() || m[1].State != "alive" {
			t.Errorf("%s holds n2 as %+v, want alive at %v", n.Name(), m[1], n2b.Addr())
		}
		if nd, err := n.cat.Node("n2"); err != nil || nd.Addr != n2b.Addr().Addr() {
			t.Errorf("%s answers n2.node at %+v (%v), want %v", n.Name(), nd, err, n2b.Addr().Addr())
		}
		if v, _ := n.Held("n2"); v.Incarnation != n2b.LocalVersion().Incarnation {
			t.Errorf("%s holds n2 at %v, want incarnation %d", n.Name(), v, n2b.LocalVersion().Incarnation)
		}
	}
	if got := serviceOn(t, n2b, "web"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("the restarted node holds %v", got)
	}
	if !strings.Contains(logB.String(), oldAddr.String()) {
		t.Errorf("the restarted node never logged the old address %v it waited for:\n%s", oldAddr, logB.String())
	}
}

// The reclaim time follows the probe interval unless set, and a live
// holder is given up on after the longest a gone node takes to be
// declared dead.
func TestNameTimes(t *testing.T) {
	tests := []struct {
		name    string
		timing  Timing
		members int
		reclaim time.Duration
		wait    time.Duration
	}{
		{"defaults, 3 nodes", Timing{}, 3, 5 * time.Second, 23 * time.Second},
		{"defaults, 10 nodes", Timing{}, 10, 5 * time.Second, 23 * time.Second},
		{"defaults, 100 nodes", Timing{}, 100, 5 * time.Second, 41 * time.Second},
		{"probe 500ms", Timing{ProbeInterval: 500 * time.Millisecond}, 3, 2500 * time.Millisecond, 11500 * time.Millisecond},
		{"reclaim set", Timing{DeadNodeReclaimTime: 30 * time.Second}, 3, 30 * time.Second, 23 * time.Second},
		{"fast, 2 nodes", FastTiming(), 2, time.Second, 4600 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Node: "n1", BindAddr: "127.0.0.1:0", Timing: tc.timing}
			mc, err := cfg.memberlistConfig(&delegate{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if mc.DeadNodeReclaimTime != tc.reclaim {
				t.Errorf("DeadNodeReclaimTime %v, want %v", mc.DeadNodeReclaimTime, tc.reclaim)
			}
			got := nameWait(Timing{ProbeInterval: mc.ProbeInterval, SuspicionMult: mc.SuspicionMult}, tc.members)
			if got != tc.wait {
				t.Errorf("nameWait %v, want %v", got, tc.wait)
			}
		})
	}
}

// A second node of a live node's name that joins the holder itself is
// refused by it and gives up; the holder keeps its name and says so.
func TestDuplicateJoinsHolder(t *testing.T) {
	var log2, logDup testutil.LogBuffer
	n1 := startNode(t, "n1", nil)
	n2 := startNode(t, "n2", logTo(&log2), n1)
	eventually(t, "2 members", func() bool { return n1.ml.NumMembers() == 2 && n2.ml.NumMembers() == 2 })
	register(t, n2, "a", "web", "10.0.0.1")
	eventually(t, "n1 holds n2's", func() bool { return len(serviceOn(t, n1, "web")) == 1 })

	dup := startNode(t, "n2", logTo(&logDup), n2)
	waitNameTaken(t, dup)
	select {
	case <-n2.done:
		t.Fatalf("the holder stopped: %v", n2.err)
	default:
	}
	if want := `msg="cluster: another node claims this node's name" node=n2 claimant=` + dup.Addr().String(); !strings.Contains(log2.String(), want) {
		t.Errorf("the holder's log lacks %q:\n%s", want, log2.String())
	}
	if got := serviceOn(t, n1, "web"); !slices.Equal(got, []string{"n2/a"}) {
		t.Errorf("n1 holds %v", got)
	}
}
