package cluster

import (
	"bytes"
	"context"
	"net/netip"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// outMsg is a message to send to one node over TCP (memberlist's reliable
// channel): a request for full states (buf), or the full states of the
// owners a request asked for (states), encoded by the sender when it goes.
type outMsg struct {
	to     string
	addr   netip.AddrPort // where to send it if to is not a live member
	buf    []byte
	states []string
}

// reapAfter is how long the state of a node that is no longer a member is
// kept, so that its records come back at once if it returns.
const reapAfter = 30 * time.Minute

// applyLoop is the one goroutine that changes what is held of the peers:
// it applies what memberlist's callbacks queued, asks for full states past
// gaps, and sends what peers asked for.
func (c *Cluster) applyLoop(ctx context.Context) {
	t := time.NewTicker(max(c.gapWait/2, 10*time.Millisecond))
	defer t.Stop()
	lastReap := time.Now()
	self := &catalog.Node{Name: c.cfg.Node, Addr: c.Addr().Addr()}
	if _, errs := c.cfg.Store.Apply([]catalog.Change{{Node: self}}); errs != nil && errs[0] != nil {
		c.cfg.Logger.Warn("cluster: store this node", "err", errs[0])
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.inbox.wake:
		case <-t.C:
		}
		evs := c.inbox.take()
		var out []outMsg
		for _, ev := range evs {
			// The lock is let go between events: a round of many
			// (states of many owners, each decoded under it) would
			// otherwise keep push/pull answers, a join through this
			// node included, waiting past memberlist's TCP timeout.
			// Only this loop changes what it holds; the others read.
			c.h.mu.Lock()
			out = c.handle(ev, out)
			if len(c.h.pend) >= flushAt {
				c.h.flush()
			}
			c.h.mu.Unlock()
		}
		// What the events changed goes to the store in one write: a
		// burst of deltas is one transaction.
		c.h.mu.Lock()
		c.h.flush()
		for _, r := range c.h.wanted(c.gapWait, c.askEvery) {
			out = append(out, c.ask(r.To, r.Wants...))
		}
		if time.Since(lastReap) > time.Minute {
			c.h.reap(reapAfter)
			lastReap = time.Now()
		}
		c.h.mu.Unlock()
		c.send(out)
	}
}

// flushAt is how many store changes wait for a write at most: an apply
// round, or a bundle of full states, writes them once this many are
// queued, between events or between states (one state's changes are never
// split, so a write may hold more). A bundle of 99 states of 1,000 records
// took as little of the apply loop's CPU in writes of 10,000 changes as in
// one (BenchmarkJoin; in writes of 1,000 to 3,000 it took a third more, each
// write rebuilding the lists of every service it touched), and the next
// states are decoded while each is written.
const flushAt = 10000

// ask is a request to node to for the full states of the owners wanted.
func (c *Cluster) ask(to string, wants ...digestEntry) outMsg {
	c.m.stateRequests.Add(float64(len(wants)))
	wants = append(wants, askerWant(c.Addr()))
	return outMsg{to: to, buf: encodeRequest(&request{From: c.cfg.Node, Wants: wants})}
}

// handle applies one event; h.mu is held.
func (c *Cluster) handle(ev event, out []outMsg) []outMsg {
	switch ev.kind {
	case evUp:
		c.h.memberUp(ev.name, ev.state, ev.addr, ev.inc)
	case evDown:
		c.h.memberDown(ev.name, false)
	case evPushPull:
		return c.handlePushPull(ev.buf, out)
	case evMsg:
		return c.handleMsg(ev.buf, out)
	}
	return out
}

func (c *Cluster) drop(what string, err error) {
	c.m.dropped.Inc()
	c.cfg.Logger.Debug("cluster: payload dropped", "what", what, "err", err)
}

func (c *Cluster) handleMsg(buf []byte, out []outMsg) []outMsg {
	t, body, err := decodeHeader(buf)
	if err != nil {
		c.drop("message", err)
		return out
	}
	switch t {
	case msgDelta, msgDirect:
		if len(buf) > maxMsgBytes {
			c.drop("delta", errMalformed)
			return out
		}
		// Many deltas arrive more than once (directly, then by the
		// owner's gossip or a relay): a copy already held is dropped
		// before its records are decoded.
		if c.h.staleDelta(body) {
			c.m.staleDropped.Inc()
			return out
		}
		d, err := decodeDelta(body)
		if err == nil && !catalog.ValidLabel(d.Owner) {
			err = errMalformed
		}
		if err != nil {
			c.drop("delta", err)
			return out
		}
		if !c.h.room(d.Owner) {
			c.drop("delta", errTooManyOwners)
			return out
		}
		// A delta from its owner directly reached every member: only
		// one that came by gossip is relayed.
		if r := c.h.applyDelta(d); (r == deltaApplied || r == deltaPending) && t == msgDelta {
			c.relay.QueueBroadcast(broadcast(buf))
			c.relay.Prune(maxRelayQueue)
		}
	case msgState:
		c.applyStates([][]byte{body})
	case msgLeave:
		owner, inc, err := decodeLeave(body)
		if err != nil || !catalog.ValidLabel(owner) {
			c.drop("leave", err)
			return out
		}
		if c.h.left(owner, inc) {
			c.relay.QueueBroadcast(broadcast(buf))
		}
	case msgRequest:
		r, err := decodeRequest(body)
		if err != nil || !catalog.ValidLabel(r.From) {
			c.drop("request", err)
			return out
		}
		// An asker not held as a live member heard of this node
		// first: it is answered at the address it gave, and joined
		// (askerPrefix says why). The join carries this node's own
		// state, so the answer does not.
		addr, hasAddr := askerAddr(r.Wants)
		stranger := hasAddr && r.From != c.cfg.Node && !c.h.isMember(r.From)
		var owners []string
		for _, w := range r.Wants {
			if c.h.holdsNewer(w.Owner, w.Version) && !(stranger && w.Owner == c.cfg.Node) {
				owners = append(owners, w.Owner)
			}
		}
		if len(owners) > 0 {
			out = append(out, outMsg{to: r.From, addr: addr, states: owners})
		}
		if stranger {
			c.joinStranger(addr)
		}
		// The asker holds newer of some owners held here too (itself,
		// after a cut): ask it back. Owners not held here are left out:
		// a node that has just joined is asked by every other node, and
		// it gets their states from its join, not from each of them.
		if behind := c.h.behind(r.Wants, c.askEvery, true); len(behind) > 0 {
			out = append(out, c.ask(r.From, behind...))
		}
	case msgPushPull:
		// States asked for, bundled (a new node asks its first contact
		// for everyone's).
		if len(buf) > maxPushPullBytes+maxMsgBytes {
			c.drop("bundle", errMalformed)
			return out
		}
		return c.handlePushPull(buf, out)
	default:
		c.drop("message", errMalformed)
	}
	return out
}

// ---- this node's records ----

// maxRelayQueue bounds the peers' deltas waiting to be relayed; the
// oldest go first (a flood is repaired by full states).
const maxRelayQueue = 4096

// maxDeltaBytes keeps a delta inside one UDP packet with memberlist's
// framing and encryption (UDPBufferSize 1400).
const maxDeltaBytes = 1100

// maxDeltasPerChange: a change bigger than this many packets goes out as
// one resync delta, and peers fetch the full state over TCP.
const maxDeltasPerChange = 8

// publishLoop spreads each change of this node's records in the store.
func (c *Cluster) publishLoop(ctx context.Context) {
	for {
		recs, changed, err := c.cfg.Store.NodeRecords(c.cfg.Node)
		if err != nil {
			c.cfg.Logger.Error("cluster: read this node's records", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		c.publish(recs)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// publish compares recs with what was published last and sends the
// difference as deltas, one sequence number each: to every live member
// directly, and by gossip for those the packet misses.
func (c *Cluster) publish(recs []catalog.ContainerRecord) {
	cur := make(map[string][]byte, len(recs))
	insts := 0
	var puts []wireRecord
	var putRaw [][]byte
	c.h.mu.Lock()
	prev := c.h.selfOwn.records
	c.h.mu.Unlock()
	for _, rec := range recs {
		wr, err := fromCatalog(rec)
		if err != nil {
			c.cfg.Logger.Error("cluster: local record not sent", "container", rec.Container.ID, "err", err)
			continue
		}
		e := encoder{}
		e.record(&wr)
		cur[wr.ID] = e.b
		insts += len(wr.Insts)
		if !bytes.Equal(prev[wr.ID], e.b) {
			puts = append(puts, wr)
			putRaw = append(putRaw, e.b)
		}
	}
	var dels []string
	for id := range prev {
		if _, ok := cur[id]; !ok {
			dels = append(dels, id)
		}
	}
	if len(puts) == 0 && len(dels) == 0 {
		return
	}
	now := time.Now()
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	own := &c.h.selfOwn
	msgs := packDeltas(c.cfg.Node, own.ver, now, puts, putRaw, dels)
	for _, d := range msgs {
		if !c.cfg.noOwnGossip {
			c.local.QueueBroadcast(broadcast(d))
		}
		c.queueDirect(d)
	}
	own.ver.Seq += uint64(len(msgs))
	own.records, own.insts, own.sent = cur, insts, now
	c.h.notify()
}

// packDeltas splits a change into deltas that each fit a packet, numbered
// after v; a change of more than maxDeltasPerChange packets, or a record
// that fits none, becomes one resync delta.
func packDeltas(owner string, v Version, sent time.Time, puts []wireRecord, raws [][]byte, dels []string) [][]byte {
	var out [][]byte
	d := delta{Owner: owner, Version: v, Sent: sent}
	size := 0
	flush := func() {
		d.Version.Seq++
		out = append(out, encodeDelta(&d))
		d.Puts, d.Deletes, size = nil, nil, 0
	}
	resync := func() [][]byte {
		return [][]byte{encodeDelta(&delta{Owner: owner, Version: Version{v.Incarnation, v.Seq + 1}, Sent: sent, Resync: true})}
	}
	const head = 64
	for _, id := range dels {
		if size+len(id)+head > maxDeltaBytes {
			flush()
		}
		d.Deletes = append(d.Deletes, id)
		size += len(id) + 2
	}
	for k := range puts {
		n := len(raws[k])
		if n+head > maxDeltaBytes {
			return resync()
		}
		if size+n+head > maxDeltaBytes {
			flush()
		}
		d.Puts = append(d.Puts, puts[k])
		size += n
		if len(out) >= maxDeltasPerChange {
			return resync()
		}
	}
	if len(d.Puts) > 0 || len(d.Deletes) > 0 {
		flush()
	}
	if len(out) > maxDeltasPerChange {
		return resync()
	}
	return out
}

// ---- what the holder answers ----

// holdsNewer reports whether what is held here of owner (this node's own
// included) is newer than v.
func (h *holder) holdsNewer(owner string, v Version) bool {
	if owner == h.self {
		return v.Less(h.selfOwn.ver)
	}
	o := h.owners[owner]
	return o != nil && v.Less(o.ver)
}

// room reports whether owner may be held: the number of owners is capped
// against a peer inventing names.
func (h *holder) room(owner string) bool {
	return h.owners[owner] != nil || len(h.owners) < maxOwners
}

// bare reports whether nothing is held of owner's incarnation v: a full
// state of it has every record converted to the store's form.
func (h *holder) bare(owner string, v Version) bool {
	o := h.owners[owner]
	return o == nil || len(o.records) == 0 || o.ver.Incarnation != v.Incarnation
}

// newer reports whether v of owner is newer than what is held.
func (h *holder) newer(owner string, v Version) bool {
	if owner == h.self {
		return false
	}
	o := h.owners[owner]
	return o == nil || o.ver.Less(v)
}

// liveAddrs returns the address, as last told, of each of names that is
// a live member, under one taking of h.mu: a push/pull lists every member,
// and taking the lock once per member made a busy node's answer to a join
// wait for it a hundred times.
func (h *holder) liveAddrs(names []string) map[string]netip.AddrPort {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]netip.AddrPort, len(names))
	for _, name := range names {
		if o := h.owners[name]; o != nil && o.member {
			out[name] = o.addr
		}
	}
	return out
}

// stateSnap is the full state of one owner as held at one moment: its
// records' encodings, which are never changed once made (a record
// changed is a new encoding), so it can be encoded after h.mu is let go.
type stateSnap struct {
	owner string
	ver   Version
	sent  time.Time
	raws  [][]byte
}

// snapState takes the full state of owner as held here (this node's own
// included); false when nothing is held; h.mu is held.
func (h *holder) snapState(owner string) (stateSnap, bool) {
	if owner == h.self {
		own := &h.selfOwn
		s := stateSnap{owner: h.self, ver: own.ver, sent: own.sent, raws: make([][]byte, 0, len(own.records))}
		for _, raw := range own.records {
			s.raws = append(s.raws, raw)
		}
		return s, true
	}
	o := h.owners[owner]
	if o == nil || o.ver.IsZero() || o.needState {
		return stateSnap{}, false
	}
	s := stateSnap{owner: o.name, ver: o.ver, sent: o.sent, raws: make([][]byte, 0, len(o.records))}
	for _, hr := range o.records {
		s.raws = append(s.raws, hr.raw)
	}
	return s, true
}

// encode is the state message of s.
func (s *stateSnap) encode() []byte {
	return encodeRawState(s.owner, s.ver, s.sent, len(s.raws), func(add func([]byte)) {
		for _, raw := range s.raws {
			add(raw)
		}
	})
}

// maxPushPullBytes keeps a push/pull under memberlist's 20 MiB limit.
const maxPushPullBytes = 16 << 20

// pushPullState is what LocalState sends: the version of every owner held,
// this node's own included, and for a join this node's full state. The
// other side asks for the owners it holds older (one request, answered
// with one bundle of states), so states only travel where they are
// missing: a state of 1,000 instances is some 60 kB, a digest entry some
// 20 bytes. memberlist's join flag cannot tell a new node from one
// joining again (the rejoin of a dead peer's address, every Rejoin), so
// a join carries no more.
func (h *holder) pushPullState(join bool) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := pushPull{Sender: h.self, Digest: []digestEntry{{h.self, h.selfOwn.ver}}}
	if join {
		own, _ := h.snapState(h.self)
		p.States = append(p.States, own.encode())
	}
	for _, o := range h.owners {
		if o.member && !o.ver.IsZero() && !o.needState {
			p.Digest = append(p.Digest, digestEntry{Owner: o.name, Version: o.ver})
		}
	}
	return encodePushPull(&p)
}
