package watcher

import "sync"

// eventQueue is the set of containers that events said to look at again,
// in the order they were first named. Events are level-triggered hints:
// whatever happened to a container, the watcher inspects it once and
// stores what it finds, so ten health_status events for one container cost
// one inspect. The queue holds at most max containers; past that it
// forgets them all and asks for a full resync instead, which covers them.
//
// One goroutine adds (the event reader), another takes (the apply loop);
// every method is safe for concurrent use.
type eventQueue struct {
	mu       sync.Mutex
	order    []string
	set      map[string]struct{}
	gone     map[string]bool // an event said the container stopped running
	overflow bool
	max      int
	ready    chan struct{} // one token while there is something to take
	onLen    func(int)     // reports the length, for a gauge; may be nil
}

func newEventQueue(max int, onLen func(int)) *eventQueue {
	return &eventQueue{set: make(map[string]struct{}), gone: make(map[string]bool), max: max, ready: make(chan struct{}, 1), onLen: onLen}
}

// add queues id unless it is already queued or the queue has overflowed;
// gone marks an event saying the container stopped running (die, stop,
// destroy, pause), which sticks until the id is taken.
func (q *eventQueue) add(id string, gone bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.overflow {
		return
	}
	if gone {
		q.gone[id] = true
	}
	if _, ok := q.set[id]; ok {
		return
	}
	if len(q.order) >= q.max {
		q.overflow = true
		q.order, q.set, q.gone = nil, make(map[string]struct{}), make(map[string]bool)
	} else {
		q.order = append(q.order, id)
		q.set[id] = struct{}{}
	}
	q.report()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take empties the queue and returns what it held: the ids in order and
// which of them an event said stopped running, or overflow=true when a
// full resync must replace them.
func (q *eventQueue) take() (ids []string, gone map[string]bool, overflow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids, overflow = q.order, q.overflow
	q.order, q.overflow = nil, false
	if len(ids) > 0 {
		q.set = make(map[string]struct{})
	}
	// The map is handed over only with something in it: an empty one
	// stays the queue's, and the caller reading it while the event reader
	// adds to it was a data race.
	if len(q.gone) > 0 {
		gone, q.gone = q.gone, make(map[string]bool)
	}
	q.report()
	return ids, gone, overflow
}

func (q *eventQueue) report() {
	if q.onLen != nil {
		q.onLen(len(q.order))
	}
}
