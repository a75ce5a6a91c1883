package cluster

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// heldRecord is one container of a peer as held here: its encoding only,
// decoded again in the rare case it must be written to the store again
// (the owner back from the dead). A node holds every peer's records, so
// this is most of its memory, and of what its garbage collector walks:
// records are held by value in their owner's map, with no pointer but
// raw (a slice of the message they came in), and their id in the store
// is made again when needed (storeID) rather than kept.
type heldRecord struct {
	raw   []byte // as encoded on the wire
	seq   uint64 // the owner's sequence number that wrote it
	insts int32
	api   bool // an API registration (its id in the store differs)
}

// record decodes hr back into the store's form.
func (hr heldRecord) record(owner string) (catalog.ContainerRecord, error) {
	d := decoder{b: hr.raw}
	r := d.record()
	if err := d.end(); err != nil {
		return catalog.ContainerRecord{}, err
	}
	return toCatalog(owner, &r)
}

// owner is what this node holds of one peer: its version, its records,
// its membership, and the deltas waiting past a gap.
type owner struct {
	name      string
	ver       Version
	records   map[string]heldRecord // by the owner's container id
	instances int
	member    bool           // memberlist holds it alive or suspect
	metaInc   uint64         // the newest incarnation its node meta told
	state     string         // memberlist's view: alive, suspect, dead, left
	addr      netip.AddrPort // its gossip address
	shown     bool           // its records are in the store
	lastFull  time.Time
	sent      time.Time         // the owner's time of the change held last
	touched   time.Time         // last delta, state or membership change
	pending   []*delta          // of a newer incarnation, waiting for its start
	ahead     map[uint64]bool   // sequence numbers applied past o.ver
	tombs     map[string]uint64 // records deleted past o.ver: id -> seq
	resyncAt  uint64            // the latest resync delta's seq
	gapSince  time.Time         // zero: no gap
	needState bool              // a full state must come before anything applies
	askNow    bool              // ask for its full state (it just came up)
	asked     time.Time         // when its full state was last asked for
	askAgain  time.Duration     // how long after asked it may be asked again
}

// holder keeps every peer's state and writes it to the store. One
// goroutine (the apply loop) changes it; mu guards it for the readers
// (push/pull, Members, Held) and the publisher, which changes self.
type holder struct {
	mu       sync.Mutex
	self     string
	selfOwn  localState
	owners   map[string]*owner
	store    Store
	maxInsts int
	log      *slog.Logger
	m        *metrics
	now      func() time.Time
	onApply  func(Applied)
	changed  chan struct{} // closed and replaced when any version changes

	// What the events of one apply-loop round changed, written to the
	// store in one transaction by flush: the store changes with their
	// owners, and the deltas and states they apply, told after the write.
	pend        []catalog.Change
	pendOwners  []string
	pendApplied []Applied
	pendNotify  bool
}

// localState is this node's own records as last published.
type localState struct {
	ver     Version
	sent    time.Time
	records map[string][]byte // encoded, by container id
	insts   int
}

const maxPending = 64

func newHolder(self string, store Store, maxInsts int, log *slog.Logger, m *metrics, onApply func(Applied)) *holder {
	return &holder{
		self: self, owners: make(map[string]*owner), store: store, maxInsts: maxInsts,
		log: log, m: m, now: time.Now, onApply: onApply, changed: make(chan struct{}),
		selfOwn: localState{records: make(map[string][]byte)},
	}
}

func (h *holder) get(name string) *owner {
	o := h.owners[name]
	if o == nil {
		o = &owner{name: name, records: make(map[string]heldRecord), touched: h.now()}
		h.owners[name] = o
	}
	return o
}

// notify wakes WaitHeld callers; h.mu is held.
func (h *holder) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// deltaResult says what became of a delta.
type deltaResult int

const (
	deltaApplied deltaResult = iota
	deltaPending             // held back past a gap: new, relayed
	deltaStale               // older than or equal to what is held
	deltaIgnored             // about this node, or a copy already pending
)

// applyDelta applies d; h.mu is held. Deltas of the incarnation held
// apply as they come, in any order: each record keeps the sequence number
// that wrote it, and a deleted one a tombstone, so an older delta arriving
// late never undoes a newer one. The version held (o.ver) is the last of
// an unbroken run; the deltas applied past a gap are in o.ahead, and a gap
// that stays open is repaired by the owner's full state. A delta of a newer
// incarnation applies from nothing when it is that incarnation's first
// (seq 1), else waits in o.pending for the rest or the full state.
func (h *holder) applyDelta(d *delta) deltaResult {
	if d.Owner == h.self {
		return deltaIgnored
	}
	o := h.get(d.Owner)
	o.touched = h.now()
	v := d.Version
	switch {
	case o.stale(v):
		h.m.staleDropped.Inc()
		return deltaStale
	case v.Incarnation > o.ver.Incarnation && (v.Seq != 1 || d.Resync):
		for _, p := range o.pending {
			if p.Version == v {
				return deltaIgnored
			}
		}
		if len(o.pending) < maxPending {
			o.pending = append(o.pending, d)
		}
		o.needState = true
		h.gap(o)
		return deltaPending
	}
	if d.Resync {
		// Its content did not fit a packet: only a full state helps.
		o.resyncAt = max(o.resyncAt, v.Seq)
		o.needState = true
		h.gap(o)
		return deltaPending
	}
	h.write(o, h.applyContent(o, d))
	h.m.deltasApplied.Inc()
	h.applied(o, v, d.Sent, false)
	if len(o.pending) > 0 {
		h.drainPending(o)
	}
	return deltaApplied
}

// stale reports whether a delta of version v is held already, or older.
func (o *owner) stale(v Version) bool {
	return v.Incarnation < o.ver.Incarnation || v.Incarnation == o.ver.Incarnation && (v.Seq <= o.ver.Seq || o.ahead[v.Seq])
}

// staleDelta reports whether the delta body starts with an owner and
// version held already, or older; h.mu is held. It reads no more of it,
// and allocates nothing: most deltas arrive several times.
func (h *holder) staleDelta(body []byte) bool {
	d := decoder{b: body}
	owner := d.raw(maxString)
	v, _ := d.version()
	if d.err != nil {
		return false
	}
	o := h.owners[string(owner)]
	return o != nil && o.stale(v)
}

// applyContent changes o's records as d says and returns the store
// changes (none while o is not shown).
func (h *holder) applyContent(o *owner, d *delta) []catalog.Change {
	var ch []catalog.Change
	if d.Version.Incarnation != o.ver.Incarnation {
		// A new incarnation starts from nothing: it replaces all the
		// owner had before.
		ch = h.clear(o)
		o.ver = Version{Incarnation: d.Version.Incarnation}
		o.ahead, o.tombs, o.resyncAt = nil, nil, 0
		h.dropPending(o)
	}
	seq := d.Version.Seq
	for _, id := range d.Deletes {
		if h.newerHeld(o, id, seq) {
			continue
		}
		ch = h.remove(o, id, ch)
		if o.tombs == nil {
			o.tombs = make(map[string]uint64)
		}
		o.tombs[id] = seq
	}
	for k := range d.Puts {
		if !h.newerHeld(o, d.Puts[k].ID, seq) {
			ch = h.put(o, &d.Puts[k], nil, nil, seq, ch)
		}
	}
	if o.ahead == nil {
		o.ahead = make(map[uint64]bool)
	}
	o.ahead[seq] = true
	h.advance(o)
	return ch
}

// newerHeld reports whether record id was written or deleted here by a
// change after seq.
func (h *holder) newerHeld(o *owner, id string, seq uint64) bool {
	if hr, ok := o.records[id]; ok && hr.seq > seq {
		return true
	}
	return o.tombs[id] > seq
}

// advance moves the version held over the run of deltas applied after it,
// forgets what only mattered past it, and opens or closes the gap.
func (h *holder) advance(o *owner) {
	for o.ahead[o.ver.Seq+1] {
		o.ver.Seq++
	}
	for seq := range o.ahead {
		if seq <= o.ver.Seq {
			delete(o.ahead, seq)
		}
	}
	for id, seq := range o.tombs {
		if seq <= o.ver.Seq {
			delete(o.tombs, id)
		}
	}
	if o.resyncAt <= o.ver.Seq && len(o.pending) == 0 {
		o.needState = false
	}
	h.gap(o)
}

// gap starts or ends o's gap: deltas past what is held, or a full state
// needed.
func (h *holder) gap(o *owner) {
	switch {
	case len(o.ahead) == 0 && !o.needState:
		o.gapSince = time.Time{}
	case o.gapSince.IsZero():
		o.gapSince = h.now()
	}
}

// dropPending forgets the waiting deltas of incarnations older than the
// one held.
func (h *holder) dropPending(o *owner) {
	o.pending = slices.DeleteFunc(o.pending, func(p *delta) bool { return p.Version.Incarnation < o.ver.Incarnation })
}

// drainPending applies the waiting deltas of the incarnation now held.
func (h *holder) drainPending(o *owner) {
	var keep []*delta
	var apply []*delta
	for _, p := range o.pending {
		switch {
		case p.Version.Incarnation == o.ver.Incarnation:
			apply = append(apply, p)
		case p.Version.Incarnation > o.ver.Incarnation:
			keep = append(keep, p)
		}
	}
	o.pending = keep
	for _, p := range apply {
		if p.Version.Seq > o.ver.Seq && !o.ahead[p.Version.Seq] {
			h.applyDelta(p)
		}
	}
	if len(o.pending) == 0 && o.resyncAt <= o.ver.Seq {
		o.needState = false
	}
	h.gap(o)
}

// put stores r in o (raw its encoding, computed when nil; conv its store
// form, converted here when nil), within the instance cap, and appends the
// store change.
func (h *holder) put(o *owner, r *wireRecord, raw []byte, conv *converted, seq uint64, ch []catalog.Change) []catalog.Change {
	if raw == nil {
		e := encoder{}
		e.record(r)
		raw = e.b
	}
	old, had := o.records[r.ID]
	if had && bytes.Equal(old.raw, raw) {
		old.seq = seq
		o.records[r.ID] = old
		return ch
	}
	var rec catalog.ContainerRecord
	var err error
	if conv != nil {
		rec, err = conv.rec, conv.err
	} else {
		rec, err = toCatalog(o.name, r)
	}
	if err != nil {
		h.m.refused.Inc()
		h.log.Warn("cluster: peer record refused", "owner", o.name, "container", r.ID, "err", err)
		return h.remove(o, r.ID, ch)
	}
	n := len(rec.Instances)
	have := o.instances
	if had {
		have -= int(old.insts)
	}
	if have+n > h.maxInsts {
		h.m.instancesCut.Add(float64(n))
		h.log.Warn("cluster: peer over its instance cap, record left out", "owner", o.name, "container", r.ID, "max", h.maxInsts)
		return h.remove(o, r.ID, ch)
	}
	o.records[r.ID] = heldRecord{raw: raw, seq: seq, insts: int32(n), api: r.Source == catalog.SourceAPI}
	o.instances = have + n
	if o.shown {
		ch = append(ch, catalog.Change{Put: &rec})
	}
	return ch
}

func (h *holder) remove(o *owner, id string, ch []catalog.Change) []catalog.Change {
	old, ok := o.records[id]
	if !ok {
		return ch
	}
	delete(o.records, id)
	o.instances -= int(old.insts)
	if o.shown {
		ch = append(ch, catalog.Change{Delete: storeID(o.name, id, old.api)})
	}
	return ch
}

func (h *holder) clear(o *owner) []catalog.Change {
	var ch []catalog.Change
	for id := range o.records {
		ch = h.remove(o, id, ch)
	}
	return ch
}

// applyState replaces what is held of s.Owner by s (raws the records'
// encodings; conv, if not nil, their store form); h.mu is held. Records
// written or deleted here by deltas after s (applied past a gap) are newer
// than s and stay as they are.
func (h *holder) applyState(s *state, raws [][]byte, conv []converted) bool {
	if s.Owner == h.self {
		return false
	}
	o := h.get(s.Owner)
	o.touched = h.now()
	if !o.ver.Less(s.Version) {
		if s.Version.Less(o.ver) {
			h.m.staleDropped.Inc()
		}
		return false
	}
	var ch []catalog.Change
	if s.Version.Incarnation != o.ver.Incarnation {
		ch = h.clear(o)
		o.ahead, o.tombs, o.resyncAt = nil, nil, 0
	}
	seq := s.Version.Seq
	keep := make(map[string]bool, len(s.Records))
	for k := range s.Records {
		keep[s.Records[k].ID] = true
	}
	for id, hr := range o.records {
		if !keep[id] && hr.seq <= seq {
			ch = h.remove(o, id, ch)
		}
	}
	for k := range s.Records {
		if h.newerHeld(o, s.Records[k].ID, seq) {
			continue
		}
		var cv *converted
		if conv != nil {
			cv = &conv[k]
		}
		ch = h.put(o, &s.Records[k], raws[k], cv, seq, ch)
	}
	o.ver = s.Version
	o.lastFull = h.now()
	o.askAgain = 0
	h.dropPending(o)
	h.advance(o)
	h.m.statesApplied.Inc()
	h.write(o, ch)
	h.applied(o, s.Version, s.Sent, true)
	h.drainPending(o)
	return true
}

// write queues o's changes for the store; flush writes them.
func (h *holder) write(o *owner, ch []catalog.Change) {
	h.pend = append(h.pend, ch...)
	for range ch {
		h.pendOwners = append(h.pendOwners, o.name)
	}
	h.pendNotify = true
}

// applied records that o is held at v: told (the delay observed, OnApply
// called, WaitHeld woken) once flush has written it to the store.
func (h *holder) applied(o *owner, v Version, sent time.Time, full bool) {
	o.sent = sent
	h.pendApplied = append(h.pendApplied, Applied{Owner: o.name, Version: v, Full: full, Sent: sent, Instances: o.instances})
	h.pendNotify = true
}

// flush writes the queued changes to the store in one transaction, then
// tells what they applied; h.mu is held.
func (h *holder) flush() {
	if len(h.pend) > 0 {
		_, errs := h.store.Apply(h.pend)
		refused := map[string]int{}
		first := map[string]error{}
		for k, err := range errs {
			if err != nil {
				o := h.pendOwners[k]
				refused[o]++
				if first[o] == nil {
					first[o] = err
				}
			}
		}
		for o, n := range refused {
			h.m.refused.Add(float64(n))
			h.log.Warn("cluster: store refused peer records", "owner", o, "refused", n, "first", first[o])
		}
	}
	now := h.now()
	for _, a := range h.pendApplied {
		a.Received = now
		if a.Full {
			h.m.delayState.Observe(a.Delay().Seconds())
		} else {
			h.m.delayDelta.Observe(a.Delay().Seconds())
		}
		if h.onApply != nil {
			h.onApply(a)
		}
	}
	if h.pendNotify {
		h.notify()
	}
	clear(h.pend)
	h.pend, h.pendOwners, h.pendApplied, h.pendNotify = h.pend[:0], h.pendOwners[:0], h.pendApplied[:0], false
}
