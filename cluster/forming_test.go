package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// A node asked for its state by a peer it does not know as a member (the
// peer heard of it first: memberlist's announcement of the asker's join
// missed it) answers, and joins the asker: both hold each other's records
// without waiting for memberlist's next push/pull, which here never comes
// (neither node joins anything, and neither is another's member).
func TestAskFromStrangerJoinsIt(t *testing.T) {
	alone := func(c *Config) { c.Rejoin = time.Hour; c.Timing.PushPullInterval = time.Hour }
	n1 := startNode(t, "n1", alone)
	n2 := startNode(t, "n2", alone)
	register(t, n1, "a", "web", "10.0.0.1")
	register(t, n2, "b", "web", "10.0.0.2")
	// n1 hears that n2 is up, as from gossip; n2 hears nothing of n1.
	n1.inbox.push(event{kind: evUp, name: "n2", addr: n2.Addr(), state: "alive", inc: n2.inc}, false)

	want := map[*testNode][]string{n1: {"a", "n2/b"}, n2: {"b", "n1/a"}}
	for n, w := range want {
		eventually(t, n.Name()+" holds both", func() bool { return slices.Equal(serviceOn(t, n, "web"), w) })
	}
	if got := n2.Stats().StrangerJoins; got == 0 {
		t.Errorf("n2 stranger joins = 0, want the join of n1")
	}
}

// Nodes that all join one node at the same time end up holding every
// node's records with no later change or push/pull to show them what they
// missed: memberlist's own push/pull is an hour away, and nothing changes
// after the start.
func TestFormAtOnce(t *testing.T) {
	const n = 8
	// Each node's record is in its store before it starts.
	withRecord := func(i int) func(*Config) {
		return func(c *Config) {
			c.Rejoin, c.Timing.PushPullInterval = time.Hour, time.Hour
			cat := catalog.New()
			inst := testutil.APIInstance(fmt.Sprintf("c%d", i), "web", fmt.Sprintf("10.0.0.%d", i+1), 8080,
				func(in *catalog.Instance) { in.Node = c.Node })
			if _, err := cat.RegisterInstance(inst); err != nil {
				t.Fatal(err)
			}
			c.Store = cat
		}
	}
	seed := startNode(t, "n0", withRecord(0))
	nodes := []*testNode{seed}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i), withRecord(i), seed))
	}
	for _, nd := range nodes {
		eventually(t, nd.Name()+" holds every node's record", func() bool { return len(serviceOn(t, nd, "web")) == n })
	}
}
