package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/svcdns/svcdns/catalog"
)

// delegate is every memberlist delegate of a node. memberlist calls the
// event delegate under its node lock: those callbacks only queue an event
// for the apply loop, and nothing here calls back into memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.MergeDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
)

// NodeMeta is this start's incarnation: a peer that sees it grow knows
// the node restarted and that what it held of it is gone.
func (d *delegate) NodeMeta(limit int) []byte {
	return binary.BigEndian.AppendUint64(nil, d.c.inc)
}

func metaIncarnation(meta []byte) uint64 {
	if len(meta) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(meta)
}

// NotifyMsg queues a delta, state or request for the apply loop; memberlist
// reuses buf, so it is copied.
func (d *delegate) NotifyMsg(buf []byte) {
	if len(buf) == 0 {
		return
	}
	if !d.c.inbox.push(event{kind: evMsg, buf: append([]byte(nil), buf...)}, true) {
		d.c.m.dropped.Inc()
	}
}

// GetBroadcasts sends this node's own deltas first, then relayed ones, all
// within limit together.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	out := d.c.local.GetBroadcasts(overhead, limit)
	used := 0
	for _, b := range out {
		used += len(b) + overhead
	}
	if limit-used > overhead {
		out = append(out, d.c.relay.GetBroadcasts(overhead, limit-used)...)
	}
	return out
}

// LocalState is this node's full state and a digest of every owner held;
// for a join, every owner's full state too, so a new node holds everyone's
// records after one exchange.
func (d *delegate) LocalState(join bool) []byte {
	return d.c.h.pushPullState(join)
}

// MergeRemoteState queues a peer's push/pull state for the apply loop.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	d.c.m.pushPulls.Inc()
	if !d.c.inbox.push(event{kind: evPushPull, buf: append([]byte(nil), buf...), join: join}, true) {
		d.c.m.dropped.Inc()
	}
}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	d.c.inbox.push(event{kind: evUp, name: n.Name, addr: nodeAddr(n), state: stateName(n.State), inc: metaIncarnation(n.Meta)}, false)
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.NotifyJoin(n) }

// NotifyLeave hides the node's records; whether it left gracefully is
// told by its leave message (memberlist's Node.State is not kept).
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	d.c.inbox.push(event{kind: evDown, name: n.Name}, false)
}

// NotifyConflict: memberlist ignored a node claiming a known node's name
// from another address. For this node's own name, another node claims
// it; for a peer's, the claimant is refused while the holder is live,
// and takes the name over once the holder has been dead
// DeadNodeReclaimTime (a node restarted on a new address). Called under
// memberlist's node lock: it only reads what the holder holds.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	c := d.c
	holder, claimant := nodeAddr(existing), nodeAddr(other)
	if !c.logged.due("conflict "+existing.Name+"@"+claimant.String(), logClaimEvery, time.Now()) {
		return
	}
	switch {
	case existing.Name == c.cfg.Node:
		c.cfg.Logger.Error("cluster: another node claims this node's name", "node", existing.Name,
			"holder", holder, "claimant", claimant)
	case len(c.h.liveAddrs([]string{existing.Name})) > 0:
		c.cfg.Logger.Error("cluster: refused a node with a taken name", "node", existing.Name,
			"holder", holder, "claimant", claimant)
	default:
		c.cfg.Logger.Info("cluster: a node claims a dead node's name, to take it over once reclaimable",
			"node", existing.Name, "holder", holder, "claimant", claimant, "reclaimable_after", c.timing.DeadNodeReclaimTime)
	}
}

// logClaimEvery is how often a peer logs one claimant's refusal: the
// claimant asks again every probe interval while it waits.
const logClaimEvery = time.Minute

// NotifyMerge refuses a join's push/pull that would merge two nodes of
// one name, on both sides. The joining node refuses a peer that holds its
// name at another address (alive, suspect, or dead but not yet forgotten):
// claim records it, and the join loop asks again until the name is
// reclaimed or, the holder still alive after nameWait, gives up (Run
// returns ErrNameTaken). Once joined, a node refuses and logs a state
// that names another node of its name. The node joined through refuses
// a claimant of a name it holds live at another address.
//
// memberlist answers push/pulls from the moment it listens, before Create
// returns: a peer that joins this node's address while it starts (peers
// join a dead node's address every Rejoin, so a node restarting on it
// meets them) merges before there is a local node to compare with. That
// merge is refused; the peer's state comes again with this node's join.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	c := d.c
	ml := c.mlp.Load()
	if ml == nil {
		return errStarting
	}
	self := nodeAddr(ml.LocalNode())
	names := make([]string, len(peers))
	members := 0
	for k, p := range peers {
		names[k] = p.Name
		if isLive(p.State) {
			members++
		}
	}
	live := c.h.liveAddrs(names)
	for _, p := range peers {
		addr := nodeAddr(p)
		if p.Name == c.cfg.Node {
			if addr == self || p.State == memberlist.StateLeft {
				continue
			}
			// Before this node has joined, a dead holder is refused
			// too: the peer takes the name from it only after
			// DeadNodeReclaimTime, and a join merged before that
			// would leave this node a member of a cluster that does
			// not hold it.
			if c.claim.refused(addr, isLive(p.State), members, time.Now()) {
				return errNameHeld(p.Name, addr, isLive(p.State))
			}
			if !isLive(p.State) {
				continue // this node's previous life, dead: its name is reclaimed
			}
			if c.logged.due("claim "+addr.String(), logClaimEvery, time.Now()) {
				c.cfg.Logger.Error("cluster: another node claims this node's name", "node", p.Name, "claimant", addr)
			}
			return fmt.Errorf("node name %s is this node's, claimed by %s", p.Name, addr)
		}
		if !isLive(p.State) {
			continue
		}
		if held, ok := live[p.Name]; ok && held != addr {
			if c.logged.due("merge "+p.Name+"@"+addr.String(), logClaimEvery, time.Now()) {
				c.cfg.Logger.Error("cluster: refused a node with a taken name", "node", p.Name, "holder", held, "claimant", addr)
			}
			return fmt.Errorf("node name %s is taken by %s", p.Name, held)
		}
	}
	return nil
}

func isLive(s memberlist.NodeStateType) bool {
	return s == memberlist.StateAlive || s == memberlist.StateSuspect
}

var errStarting = errors.New("merge refused: this node is starting")

// NotifyAlive refuses a peer whose name cannot be a DNS label.
func (d *delegate) NotifyAlive(p *memberlist.Node) error {
	if !catalog.ValidLabel(p.Name) {
		return fmt.Errorf("node name %q is not a lower-case DNS label", p.Name)
	}
	return nil
}

// broadcast is one queued delta. Deltas never replace each other: each is
// a step of its owner's sequence.
type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// ---- the inbox ----

type eventKind int

const (
	evMsg eventKind = iota
	evPushPull
	evUp
	evDown
)

type event struct {
	kind  eventKind
	buf   []byte
	join  bool
	name  string
	addr  netip.AddrPort
	state string
	inc   uint64
}

// maxInbox bounds the messages waiting for the apply loop; past it they
// are dropped (and the gaps they leave repaired by full states).
// Membership events are never dropped.
const maxInbox = 1 << 16

// inbox hands events from memberlist's callbacks to the apply loop
// without ever blocking them.
type inbox struct {
	mu   sync.Mutex
	q    []event
	wake chan struct{}
}

func (b *inbox) init() { b.wake = make(chan struct{}, 1) }

func (b *inbox) push(ev event, droppable bool) bool {
	b.mu.Lock()
	if droppable && len(b.q) >= maxInbox {
		b.mu.Unlock()
		return false
	}
	b.q = append(b.q, ev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return true
}

func (b *inbox) take() []event {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.q
	b.q = nil
	return q
}
