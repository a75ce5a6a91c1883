package cluster

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// How a node gets its name back when the cluster still holds it at
// another address: a node restarted on a new address (a container given
// another IP, a node moved to another host) before the others declared
// its previous life dead.
//
// memberlist refuses a name held at another address until the holder is
// dead and has been for DeadNodeReclaimTime; a dead holder's name then
// goes to whoever claims it. A node refused for its name therefore does
// not stop: it joins again every probe interval while the others hold the
// name, and stops (Run returns ErrNameTaken) only when they still hold
// the holder alive after longer than a gone node takes to be declared
// dead (nameWait). A second live node with the same name is refused that
// way; a restarted one is back a reclaim time after its old self is
// declared dead. Serf settles a conflict by asking every member whom it
// holds and shutting the minority down; here the nodes already agree on
// one holder (memberlist's view), so the node that has not joined yields
// and a joined node keeps its name.

// claim is what join attempts were told of this node's name: the latest
// refusal, and since when a live holder has refused it. Once the node has
// joined (or is the first node, joining nobody) the name is its own: a
// peer's state naming another live holder is then another node's claim,
// logged and refused, never a reason to stop.
type claim struct {
	mu        sync.Mutex
	own       bool           // joined: the name is this node's
	holder    netip.AddrPort // who holds the name, as the refusing peer says
	live      bool           // held alive or suspect (not yet declared dead)
	members   int            // the refusing peer's live members
	at        time.Time      // the latest refusal
	liveSince time.Time      // the first refusal by a live holder
}

// refused records that a peer holds this node's name at holder; it
// reports false, recording nothing, once the name is this node's.
func (cl *claim) refused(holder netip.AddrPort, live bool, members int, now time.Time) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.own {
		return false
	}
	cl.holder, cl.live, cl.members, cl.at = holder, live, members, now
	if live && cl.liveSince.IsZero() {
		cl.liveSince = now
	}
	return true
}

// joined makes the name this node's.
func (cl *claim) joined() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.own = true
}

// claimState is one look at a claim.
type claimState struct {
	holder    netip.AddrPort
	live      bool
	members   int
	liveSince time.Time
}

// refusedSince reports the refusal recorded at or after start, if any.
func (cl *claim) refusedSince(start time.Time) (claimState, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.at.IsZero() || cl.at.Before(start) {
		return claimState{}, false
	}
	return claimState{holder: cl.holder, live: cl.live, members: cl.members, liveSince: cl.liveSince}, true
}

// nameWait is how long a live holder may go on refusing this node before
// it is taken for a second live node of the name: longer than a gone
// node of a cluster of members takes to be declared dead, with
// memberlist's timings t (defaults applied): a few probe intervals for a
// probe of it to fail, then the longest suspicion (no other node
// confirming it), and a gossip round or two to spread the news.
func nameWait(t Timing, members int) time.Duration {
	scale := math.Max(1, math.Log10(float64(max(members, 1))))
	suspicion := time.Duration(float64(t.SuspicionMult) * scale * float64(t.ProbeInterval))
	return 5*t.ProbeInterval + suspicionMaxMult*suspicion
}

// suspicionMaxMult is memberlist's default SuspicionMaxTimeoutMult, which
// svcdns keeps: suspicion lasts up to this many times its minimum until
// other nodes confirm it.
const suspicionMaxMult = 6

// checkClaim is called after a join attempt started at start that
// contacted nobody. It reports whether a peer refused this node's name
// during it (the next attempt is then due in a probe interval), logging
// the refusal, and closes nameTaken when a live holder has refused it
// for longer than nameWait.
func (c *Cluster) checkClaim(start time.Time, attempt int) (refused bool) {
	st, ok := c.claim.refusedSince(start)
	if !ok {
		return false
	}
	t := c.timing
	if !st.live {
		c.cfg.Logger.Warn("cluster: node name held by a dead node, waiting to take it over",
			"node", c.cfg.Node, "holder", st.holder, "self", c.Addr(), "attempt", attempt,
			"reclaimable_after", t.DeadNodeReclaimTime)
		return true
	}
	wait := nameWait(t, st.members)
	waited := time.Since(st.liveSince)
	if waited > wait {
		c.cfg.Logger.Error("cluster: node name taken", "node", c.cfg.Node, "holder", st.holder,
			"self", c.Addr(), "waited", waited.Round(time.Millisecond))
		c.takenOnce.Do(func() { close(c.nameTaken) })
		return true
	}
	c.cfg.Logger.Warn("cluster: node name held by another address, waiting for it to be declared dead",
		"node", c.cfg.Node, "holder", st.holder, "self", c.Addr(), "attempt", attempt,
		"gives_up_in", (wait - waited).Round(time.Millisecond))
	return true
}

// errNameHeld is NotifyMerge's refusal of a peer that holds this node's
// name at another address.
func errNameHeld(name string, holder netip.AddrPort, live bool) error {
	if live {
		return fmt.Errorf("node name %s is held by %s, alive", name, holder)
	}
	return fmt.Errorf("node name %s is held by %s, dead, not yet reclaimable", name, holder)
}

// logOnce rate-limits the lines a peer logs about one claimant, which
// asks again every probe interval while it waits.
type logOnce struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether key was not logged within every, and marks it.
func (l *logOnce) due(key string, every time.Duration, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) >= maxOwners {
		l.last = make(map[string]time.Time)
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < every {
		return false
	}
	l.last[key] = now
	return true
}
