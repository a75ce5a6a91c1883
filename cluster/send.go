package cluster

import (
	"context"
	"sync"

	"github.com/hashicorp/memberlist"
)

// bundles encodes the full states of owners as held now, as push/pull
// messages without a digest, each within memberlist's size limit: one
// stream for all the states a request asked for, however many. Only the
// taking of the states holds h.mu, not their encoding: a node asked for
// many states at once (a cluster starting) would hold it for megabytes
// of copying per request, with its apply loop and its push/pull answers
// (a join through it, under memberlist's TCP timeout) waiting behind.
func (h *holder) bundles(owners []string) [][]byte {
	snaps := make([]stateSnap, 0, len(owners))
	h.mu.Lock()
	for _, owner := range owners {
		if s, ok := h.snapState(owner); ok {
			snaps = append(snaps, s)
		}
	}
	h.mu.Unlock()
	var out [][]byte
	p := pushPull{Sender: h.self}
	size := 0
	flush := func() {
		if len(p.States) > 0 {
			out = append(out, encodePushPull(&p))
		}
		p.States, size = nil, 0
	}
	for k := range snaps {
		st := snaps[k].encode()
		snaps[k].raws = nil // let go of what is encoded as soon as it is
		if size+len(st) > maxPushPullBytes {
			flush()
		}
		p.States = append(p.States, st)
		size += len(st)
	}
	flush()
	return out
}

// senders is how many messages go out over TCP at the same time;
// maxSendQueue how many may wait. A message past it is dropped, and asked
// for again.
const (
	senders      = 16
	maxSendQueue = 512
)

type sendItem struct {
	to     *memberlist.Node
	buf    []byte
	states []string
}

// send queues out for the senders.
func (c *Cluster) send(out []outMsg) {
	if len(out) == 0 {
		return
	}
	nodes := c.h.liveNodes()
	for _, m := range out {
		n := nodes[m.to]
		if n == nil && m.addr.IsValid() {
			n = &memberlist.Node{Name: m.to, Addr: m.addr.Addr().AsSlice(), Port: m.addr.Port()}
		}
		if n == nil || n.Name == c.cfg.Node {
			continue
		}
		if m.states != nil {
			if m.states = c.queued.add(m.to, m.states); len(m.states) == 0 {
				continue // all waiting to go already: asked again meanwhile
			}
		}
		select {
		case c.sendq <- sendItem{n, m.buf, m.states}:
		default:
			c.queued.done(m.to, m.states)
			c.m.dropped.Inc()
		}
	}
}

// queuedStates is, for each node, the owners whose states wait in the
// send queue for it or are being sent: a node that asks again before the
// answer went (a busy cluster) is not sent the same states twice.
type queuedStates struct {
	mu sync.Mutex
	m  map[string]map[string]bool
}

// add notes owners as queued for node and returns those that were not.
func (q *queuedStates) add(node string, owners []string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = make(map[string]map[string]bool)
	}
	held := q.m[node]
	if held == nil {
		held = make(map[string]bool, len(owners))
		q.m[node] = held
	}
	var out []string
	for _, o := range owners {
		if !held[o] {
			held[o] = true
			out = append(out, o)
		}
	}
	return out
}

// done notes that the states of owners for node are sent (or failed).
func (q *queuedStates) done(node string, owners []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range owners {
		delete(q.m[node], o)
	}
	if len(q.m[node]) == 0 {
		delete(q.m, node)
	}
}

// sendLoop delivers queued messages over TCP (memberlist's reliable
// channel), one at a time; Run starts several. States asked for are
// encoded here, as they are when they go: many nodes asking one node for
// everything (a cluster starting at once) must not hold the apply loop,
// nor wait in the queue as copies of every state.
func (c *Cluster) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.sendq:
			bufs := [][]byte{m.buf}
			if m.states != nil {
				bufs = c.h.bundles(m.states)
			}
			for _, buf := range bufs {
				if err := c.ml.SendReliable(m.to, buf); err != nil {
					c.cfg.Logger.Debug("cluster: send", "to", m.to.Name, "err", err)
					break
				}
			}
			// Until they are sent, not only taken from the queue: a
			// starved node's stream can take longer than the asker
			// waits before it asks again, and each ask would send
			// the same states once more.
			if m.states != nil {
				c.queued.done(m.to.Name, m.states)
			}
		}
	}
}

// maxDirectQueue is how many of this node's deltas may wait for
// directLoop; a delta past it is dropped (and counted): it still goes by
// gossip.
const maxDirectQueue = 1024

// directOverhead is what memberlist adds to a message sent with
// SendBestEffort: its message type, a CRC (5 bytes) and encryption (45
// bytes at most, padding included); the packet label comes on top.
const directOverhead = 1 + 5 + 45

// labelOverhead is what memberlist's packet label adds (none without one).
func labelOverhead(label string) int {
	if label == "" {
		return 0
	}
	return 2 + len(label)
}

// queueDirect queues delta d (encoded) for every live member, unless it
// does not fit one UDP packet: then it goes by gossip only. It never
// blocks (publish holds the holder's lock).
func (c *Cluster) queueDirect(d []byte) {
	if len(d) > c.directMax {
		return
	}
	m := append([]byte(nil), d...)
	m[1] = byte(msgDirect) // the header: format version, type
	select {
	case c.direct <- m:
	default:
		c.m.dropped.Inc()
	}
}

// directLoop sends this node's deltas to every live member, each in one
// UDP packet (memberlist's SendBestEffort, encrypted like gossip): a
// change reaches every node in one hop, and the members that get it do
// not relay it. Gossip of the owner's own deltas stays as the backup for
// a lost packet.
func (c *Cluster) directLoop(ctx context.Context) {
	for {
		var batch [][]byte
		select {
		case <-ctx.Done():
			return
		case d := <-c.direct:
			batch = append(batch, d)
		}
		for more := true; more && len(batch) < maxDirectQueue; {
			select {
			case d := <-c.direct:
				batch = append(batch, d)
			default:
				more = false
			}
		}
		nodes := c.h.liveNodes()
		for _, d := range batch {
			for _, n := range nodes {
				if n.Name == c.cfg.Node {
					continue
				}
				if err := c.ml.SendBestEffort(n, d); err != nil {
					c.cfg.Logger.Debug("cluster: direct send", "to", n.Name, "err", err)
				}
			}
		}
	}
}
