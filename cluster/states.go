package cluster

import (
	"slices"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// Full states come one at a time (a push/pull carries the joining node's)
// or many in one bundle: a node that joins a cluster of 100 gets the 99
// others' in one message, 99,000 records at 1,000 each. The apply loop
// writes a bundle to the store a few states at a time, and another
// goroutine decodes the states that follow (and converts their records to
// the store's form) while it writes: the join then takes about as long as
// the store's writes alone.

// stateJob is a full state to decode: its body, as checked before, and
// whether its records are converted to the store's form with the decode
// (nothing was held of its owner's incarnation, so every record will be).
type stateJob struct {
	body    []byte
	owner   string
	ver     Version
	convert bool
}

// fullState is a decoded full state, its records sorted by id with their
// encodings, and, for a job that said so, in the store's form.
type fullState struct {
	stateJob
	s    *state
	raws [][]byte
	conv []converted // by record; nil: the holder converts what it must
	err  error       // the state did not decode
}

// converted is a peer record in the store's form, or why it cannot be.
type converted struct {
	rec catalog.ContainerRecord
	err error
}

// decodeAhead is how many decoded states may wait for the apply loop: the
// decoding goroutine stays that far ahead of the writes, no further.
const decodeAhead = 4

// applyStates applies full states (bodies of state messages) in their
// order, each unless what is held of its owner is as new; h.mu is held,
// and let go between store writes. Each state's changes go to the store
// in one write (flush), with those of the states before it as long as
// the write stays under flushAt changes. Only the decoding and the
// conversion run beside the apply loop: what the holder keeps, and every
// store write, stay on it, in the order of the states.
func (c *Cluster) applyStates(bodies [][]byte) {
	jobs := make([]stateJob, 0, len(bodies))
	for _, body := range bodies {
		if j, ok := c.stateJob(body); ok {
			jobs = append(jobs, j)
		}
	}
	switch len(jobs) {
	case 0:
		return
	case 1:
		c.applyFull(decodeFull(jobs[0]))
		return
	}
	ready := make(chan fullState, decodeAhead)
	go func() {
		defer close(ready)
		for _, j := range jobs {
			ready <- decodeFull(j)
		}
	}()
	// Every decoded state is taken, whatever becomes of it: the decoding
	// goroutine ends with the bundle.
	for fs := range ready {
		c.applyFull(fs)
		if len(c.h.pend) >= flushAt {
			c.h.flush()
			// As between events (applyLoop): readers and push/pull
			// answers get the lock between writes. Only this loop
			// changes the owners, so the checks of stateJob hold.
			c.h.mu.Unlock()
			c.h.mu.Lock()
		}
	}
}

// stateJob checks a state's size, owner and version before it is decoded;
// false: nothing to apply (dropped and counted, or held as new already).
// h.mu is held.
func (c *Cluster) stateJob(body []byte) (stateJob, bool) {
	if len(body) > maxStateBytes {
		c.drop("state", errMalformed)
		return stateJob{}, false
	}
	owner, v, err := stateHead(body)
	if err != nil || !catalog.ValidLabel(owner) {
		c.drop("state", err)
		return stateJob{}, false
	}
	if !c.h.newer(owner, v) {
		return stateJob{}, false
	}
	if !c.h.room(owner) {
		c.drop("state", errTooManyOwners)
		return stateJob{}, false
	}
	return stateJob{body: body, owner: owner, ver: v, convert: c.h.bare(owner, v)}, true
}

// applyFull applies a decoded state; h.mu is held. Its owner and version
// are checked again: a state before it in the same bundle may have been
// of the same owner, or taken the last room for an owner. Versions held
// only grow and owners are only added while a bundle applies, so a state
// stateJob let through is the only kind that can fail here.
func (c *Cluster) applyFull(fs fullState) {
	if !c.h.newer(fs.owner, fs.ver) {
		return
	}
	if !c.h.room(fs.owner) {
		c.drop("state", errTooManyOwners)
		return
	}
	if fs.err != nil {
		c.drop("state", fs.err)
		return
	}
	c.h.applyState(fs.s, fs.raws, fs.conv)
}

// decodeFull decodes j's state, sorts it and, if j says so, converts its
// records. It reads nothing of the holder: it runs beside the apply loop.
func decodeFull(j stateJob) fullState {
	fs := fullState{stateJob: j}
	fs.s, fs.raws, fs.err = decodeState(j.body)
	if fs.err != nil {
		return fs
	}
	sortState(fs.s, fs.raws)
	if j.convert {
		fs.conv = make([]converted, len(fs.s.Records))
		for k := range fs.s.Records {
			fs.conv[k].rec, fs.conv[k].err = toCatalog(j.owner, &fs.s.Records[k])
		}
	}
	return fs
}

// sortState orders a state's records (and their encodings with them) by
// id. An owner sends them in the order of its map; in the order of the
// store's keys (store ids begin with the owner's name, then the record's
// id) each insert goes down the path of radix nodes the one before it
// copied, still cached (BenchmarkJoin: a tenth to a quarter less CPU).
// The sort is stable, so a record given twice still ends as the later
// one.
func sortState(s *state, raws [][]byte) {
	order := make([]int32, len(s.Records))
	for k := range order {
		order[k] = int32(k)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(s.Records[a].ID, s.Records[b].ID) })
	recs := make([]wireRecord, len(order))
	sorted := make([][]byte, len(order))
	for k, i := range order {
		recs[k], sorted[k] = s.Records[i], raws[i]
	}
	s.Records = recs
	copy(raws, sorted)
}

// handlePushPull applies a push/pull's states (a join's, or a bundle asked
// for) and asks its sender for the owners it holds newer; h.mu is held
// (and let go between store writes, see applyStates).
func (c *Cluster) handlePushPull(buf []byte, out []outMsg) []outMsg {
	t, body, err := decodeHeader(buf)
	if err == nil && t != msgPushPull {
		err = errMalformed
	}
	var p *pushPull
	if err == nil {
		p, err = decodePushPull(body)
	}
	if err == nil && !catalog.ValidLabel(p.Sender) {
		err = errMalformed
	}
	if err != nil {
		c.drop("push/pull", err)
		return out
	}
	bodies := make([][]byte, 0, len(p.States))
	for _, st := range p.States {
		t, body, err := decodeHeader(st)
		if err != nil || t != msgState {
			c.drop("push/pull state", err)
			continue
		}
		bodies = append(bodies, body)
	}
	c.applyStates(bodies)
	if owners := c.h.behind(p.Digest, c.askEvery, false); len(owners) > 0 && p.Sender != c.cfg.Node {
		out = append(out, c.ask(p.Sender, owners...))
	}
	return out
}
