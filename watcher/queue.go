package watcher

import (
	"sync"
	"time"
)

// queue is the set of containers to inspect again, shaped like client-go's
// workqueue: an id is dirty when it needs an inspect and processing while
// one is in flight; order holds the dirty ids that are not processing, in
// the order they were first named, each once. Events are level-triggered
// hints: whatever happened to a container, the watcher inspects it once and
// stores what it finds, so ten health_status events for one container cost
// one inspect.
//
// An id named again while it is processing stays out of order until done:
// one inspect at a time per container, and done reports the result stale
// (an event came after the inspect started), so it is thrown away and the
// id handed out again. The last result stored therefore always comes from
// an inspect started after the last event.
//
// At most max ids are dirty; past that the queue forgets them all and
// reports an overflow, for a full resync that covers them.
//
// Each id also keeps when the earliest event not yet written for it
// arrived (since), for svcdns_watcher_event_to_catalog_seconds: ten events
// merged into one inspect are one write, timed from the first. The time
// goes with the write that covers the events: done hands it to an inspect
// that started after them, takeSince to a removal on a gone hint. An
// overflow forgets the times with the ids.
//
// A container whose inspect failed is retried on its own (retry): it comes
// back after a backoff that doubles with each failure in a row, from
// retryMin to retryMax, while every other id goes on. close stops the
// retries' timers.
//
// While a full sync runs beside the session loop (sync.go), the queue
// numbers every event (seq) and keeps, per container, the number of the
// last one (touched): the sync compares them with the numbers it read
// before its list and before each inspect, and leaves to the events every
// container that had one after the sync read it.
//
// The event reader adds, the session loop takes; every method is safe for
// concurrent use.
type queue struct {
	mu         sync.Mutex
	order      []string
	dirty      map[string]struct{}
	processing map[string]struct{}
	hints      []hint // what events said about containers, since takeHints, in order
	since      map[string]time.Time
	overflow   bool
	networks   bool // a network was created or removed since takeNetworks
	max        int
	ready      chan struct{} // one token while there is something for the loop

	retryMin, retryMax time.Duration
	retrying           map[string]*time.Timer // ids waiting for their retry
	failures           map[string]int         // failed inspects in a row
	rechecks           map[string]*time.Timer // ids to inspect again when their drain hold ends
	netsRetry          *time.Timer            // the network list's retry, while one waits
	parked             map[string]struct{}    // ids to inspect again once the network lists end (park)
	closed             bool

	seq     uint64            // events added so far
	touched map[string]uint64 // each container's last event's seq, while a sync tracks; nil otherwise
	lost    bool              // an overflow forgot or refused an id since track
}

// hint is what an event said about a container that the session acts on
// before the container's inspect returns: it stopped running (die, stop,
// destroy, pause), or it was sent a signal (kill), which may drain it.
type hint struct {
	id     string
	gone   bool
	signal int
}

func newQueue(max int, retryMin, retryMax time.Duration) *queue {
	return &queue{
		dirty: make(map[string]struct{}), processing: make(map[string]struct{}), since: make(map[string]time.Time),
		max: max, ready: make(chan struct{}, 1),
		retryMin: retryMin, retryMax: retryMax,
		retrying: make(map[string]*time.Timer), failures: make(map[string]int),
		rechecks: make(map[string]*time.Timer), parked: make(map[string]struct{}),
	}
}

// add names h.id for an inspect; what h says (it stopped running, or
// was sent a signal) takeHints hands over at once, even while the id's
// inspect is in flight.
func (q *queue) add(h hint) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Numbered even when the queue has overflowed: a sync under way must
	// still leave this container alone (the overflow's sync covers it).
	q.seq++
	if q.touched != nil {
		q.touched[h.id] = q.seq
	}
	if q.overflow {
		q.lost = q.lost || q.touched != nil
		return
	}
	if h.gone || h.signal != 0 {
		q.hints = append(q.hints, h)
	}
	q.markDirty(h.id)
	if !q.overflow {
		q.pend(h.id, time.Now())
	}
	q.signal()
}

// pend records that id has an event from at not yet written, keeping the
// earliest; a zero at records nothing. Under q.mu.
func (q *queue) pend(id string, at time.Time) {
	if at.IsZero() {
		return
	}
	if t, ok := q.since[id]; !ok || at.Before(t) {
		q.since[id] = at
	}
}

// takeSince returns, and forgets, when the earliest event not yet written
// for id arrived; zero when there is none.
func (q *queue) takeSince(id string) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.since[id]
	delete(q.since, id)
	return t
}

// markDirty is add without the hint, under q.mu. The overflow branch lives
// here and only here.
func (q *queue) markDirty(id string) {
	if _, ok := q.dirty[id]; ok {
		return
	}
	if len(q.dirty) >= q.max {
		q.overflow = true
		q.lost = q.lost || q.touched != nil
		q.order, q.hints = nil, nil
		clear(q.dirty)
		clear(q.since)
		return
	}
	q.dirty[id] = struct{}{}
	if _, ok := q.processing[id]; !ok {
		q.order = append(q.order, id)
	}
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// networksChanged records that a network was created or removed: the
// session lists the networks again before its next inspects, so a
// container that joins the new network is mapped with it.
func (q *queue) networksChanged() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.networks = true
	q.signal()
}

// retryNetworks lists the networks again after d, superseding an earlier
// retry: a list that failed as an overloaded endpoint fails is retried
// like an inspect.
func (q *queue) retryNetworks(d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if q.netsRetry != nil {
		q.netsRetry.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed || q.netsRetry != t {
			return // closed, or superseded
		}
		q.netsRetry = nil
		q.networks = true
		q.signal()
	})
	q.netsRetry = t
}

// networksDue reports whether a network list was asked for and not yet
// taken (takeNetworks).
func (q *queue) networksDue() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.networks
}

// park keeps id out of the queue until unpark: its inspect was mapped
// with a network list that lacks one of its networks, and a newer list
// is due. since is the arrival of the events the inspect was for, which
// stay unwritten.
func (q *queue) park(id string, since time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pend(id, since)
	q.parked[id] = struct{}{}
}

// unpark names every parked id for an inspect: the network lists ended.
func (q *queue) unpark() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.parked) == 0 {
		return
	}
	for id := range q.parked {
		q.markDirty(id)
	}
	clear(q.parked)
	q.signal()
}

// takeNetworks reports, and clears, whether networksChanged was called
// or a network list's retry came due.
func (q *queue) takeNetworks() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.networks
	q.networks = false
	return n
}

// takeHints returns what events said about containers since the last
// call, in order, and whether the queue overflowed (clearing it).
func (q *queue) takeHints() (hints []hint, overflow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	hints, overflow = q.hints, q.overflow
	q.hints, q.overflow = nil, false
	return hints, overflow
}

// get hands out the next id to inspect and marks it processing; nothing
// while hints wait to be taken. Why: a hint is acted on before the
// inspects that follow its event (a stopped container leaves the answers,
// and its inspect then decides). Handed out before the hint was taken, an
// inspect could return, and store the container running again, before
// the hint removed it: a container that restarted at once stayed out of
// the answers until the next full sync. The session loop turn that takes
// the ready token takes the hints; a turn woken by anything else (an
// inspect's result, a sync's end) must not hand out the id first.
//
// A network list due or in flight holds back no id: an inspect mapped
// with a network list that lacks one of the container's networks is not
// stored while a list is due (park, netlist.go).
func (q *queue) get() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 || len(q.hints) > 0 {
		return "", false
	}
	id := q.order[0]
	q.order[0] = ""
	q.order = q.order[1:]
	delete(q.dirty, id)
	q.processing[id] = struct{}{}
	return id, true
}

// done ends id's inspect. stale reports that id was named again while it
// was processing: the result is older than that, and id is handed out
// again. A fresh result covers every event queued for id, and takes their
// earliest arrival (since), zero when none did.
func (q *queue) done(id string) (since time.Time, stale bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, id)
	if _, ok := q.dirty[id]; !ok {
		since = q.since[id]
		delete(q.since, id)
		return since, false
	}
	q.order = append(q.order, id)
	q.signal()
	return time.Time{}, true
}

// retry queues id again after its backoff, which grows with each call
// until forget, and returns the backoff. since is the arrival of the
// events the failed inspect was for, which stay unwritten.
func (q *queue) retry(id string, since time.Time) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0
	}
	q.pend(id, since)
	q.failures[id]++
	d := backoff(q.failures[id], q.retryMin, q.retryMax)
	q.after(q.retrying, id, d)
	return d
}

// recheck names id for an inspect again after d, superseding an earlier
// recheck of it: a container held out of the answers while it drains is
// looked at when its hold ends. A recheck waiting is not pending: no event
// waits for it.
func (q *queue) recheck(id string, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.after(q.rechecks, id, d)
}

// after marks id dirty in d, through a timer kept in timers (retrying or
// rechecks) that supersedes the one id had there. Under q.mu.
func (q *queue) after(timers map[string]*time.Timer, id string, d time.Duration) {
	if t := timers[id]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed || timers[id] != t {
			return // closed, or superseded
		}
		delete(timers, id)
		q.markDirty(id)
		q.signal()
	})
	timers[id] = t
}

// forget ends id's run of failures: its inspect succeeded (or said the
// container is gone).
func (q *queue) forget(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, id)
}

// close stops the retries; the queue is not used after.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.netsRetry != nil {
		q.netsRetry.Stop()
		q.netsRetry = nil
	}
	for _, timers := range []map[string]*time.Timer{q.retrying, q.rechecks} {
		for id, t := range timers {
			t.Stop()
			delete(timers, id)
		}
	}
}

// track starts numbering events per container for a full sync, and
// returns the number of the last event so far: the sync reads it before
// its list (and eventSeq before each inspect). Events are tracked until
// untrack; one sync at a time.
func (q *queue) track() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.touched = make(map[string]uint64)
	q.lost = false
	return q.seq
}

// eventSeq returns the number of the last event added so far.
func (q *queue) eventSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

// eventSince reports whether an event for id was added after event number
// seq, since track.
func (q *queue) eventSince(id string, seq uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.touched[id] > seq
}

// touchedSince returns the containers that had an event after event
// number seq, since track.
func (q *queue) touchedSince(seq uint64) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for id, n := range q.touched {
		if n > seq {
			ids = append(ids, id)
		}
	}
	return ids
}

// requeueLost names ids for an inspect if an overflow forgot or refused
// ids since track: the sync left ids to their events, and the inspects
// of those events may be lost. Every event lost since track is that of a
// container the sync either read after the event, or left to its events
// (ids): with these inspected too, the sync covers them all, even while
// the queue is still in overflow (the overflow's sync then follows too,
// for the events that come after).
func (q *queue) requeueLost(ids []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.lost {
		return
	}
	for _, id := range ids {
		q.markDirty(id)
	}
	q.signal()
}

// untrack ends what track started.
func (q *queue) untrack() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.touched = nil
}

// queueLens are the queue's sizes.
type queueLens struct {
	waiting  int  // ids waiting to be handed out
	pending  int  // ids dirty, processing, waiting for a retry or parked, each once
	retrying int  // ids waiting for a retry
	networks bool // a network list waits for its retry, or is due
	overflow bool // the queue overflowed, not yet taken
}

func (q *queue) lens() queueLens {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := queueLens{waiting: len(q.order), retrying: len(q.retrying), networks: q.netsRetry != nil || q.networks, overflow: q.overflow}
	seen := len(q.dirty)
	for id := range q.processing {
		if _, ok := q.dirty[id]; !ok {
			seen++
		}
	}
	for id := range q.retrying {
		seen += q.unseen(id)
	}
	for id := range q.parked {
		if _, r := q.retrying[id]; !r {
			seen += q.unseen(id)
		}
	}
	n.pending = seen
	return n
}

// unseen is 1 when id is neither dirty nor processing, else 0. Under q.mu.
func (q *queue) unseen(id string) int {
	_, d := q.dirty[id]
	_, p := q.processing[id]
	if d || p {
		return 0
	}
	return 1
}
