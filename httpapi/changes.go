package httpapi

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// Change is one entry of the change log: an instance came, went, or
// changed what DNS answers for it (health, addresses, ports, tags). It is
// an event of GET /v1/events and an element of the dashboard's log.
type Change struct {
	Index    uint64    `json:"index"` // the catalog index the change was seen at
	Time     time.Time `json:"time"`  // UTC, when svcdns saw it
	Action   string    `json:"action"`
	Instance Instance  `json:"instance"` // as it is now; as it was, for "removed"
}

// Change actions.
const (
	ActionAdded   = "added"
	ActionRemoved = "removed"
	ActionUpdated = "updated"
)

const (
	// maxChanges is how many changes the log keeps, for the dashboard and
	// for an event stream resuming with Last-Event-ID.
	maxChanges = 500
	// feedGap is the least time between two diffs of the catalog: an
	// event storm costs one walk of the catalog per gap, not per write.
	feedGap = 100 * time.Millisecond
)

// feed derives the change log from the catalog itself, so instances
// from every source (Docker, the API, peers) show: after each write it
// diffs the instances of the services whose index moved against what it
// saw last. It is safe for concurrent use.
type feed struct {
	cat *catalog.Catalog
	now func() time.Time

	// seen is the last state diffed, by service; only run touches it.
	seen map[string]seenService

	mu      sync.Mutex
	index   uint64        // the catalog index of the last diff
	changes []Change      // oldest first, at most maxChanges
	next    chan struct{} // closed when changes grow or index moves
}

type seenService struct {
	index uint64
	insts map[string]*catalog.Instance
}

func newFeed(cat *catalog.Catalog, now func() time.Time) *feed {
	return &feed{cat: cat, now: now, seen: map[string]seenService{}, next: make(chan struct{})}
}

// run diffs the catalog after every write until ctx is done.
func (f *feed) run(ctx context.Context) {
	var idx uint64
	for {
		var err error
		if idx, err = f.cat.Wait(ctx, idx); err != nil {
			return
		}
		f.diff(idx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(feedGap):
		}
	}
}

// diff compares the catalog at idx (or later) with what was seen, and
// publishes the changes.
func (f *feed) diff(idx uint64) {
	now := f.now().UTC()
	var out []Change
	_, svcs := f.cat.Services(nil)
	listed := make(map[string]bool, len(svcs))
	var buf []*catalog.Instance
	for _, s := range svcs {
		listed[s.Name] = true
		var sidx uint64
		sidx, buf = f.cat.AppendService(buf[:0], catalog.ServiceQuery{Service: s.Name})
		old := f.seen[s.Name]
		if old.insts != nil && sidx == old.index {
			continue
		}
		cur := make(map[string]*catalog.Instance, len(buf))
		for _, in := range buf {
			cur[in.ID] = in
			prev, ok := old.insts[in.ID]
			switch {
			case !ok:
				out = append(out, Change{Index: idx, Time: now, Action: ActionAdded, Instance: instanceJSON(in)})
			case prev != in && answersDiffer(prev, in):
				out = append(out, Change{Index: idx, Time: now, Action: ActionUpdated, Instance: instanceJSON(in)})
			}
		}
		for id, prev := range old.insts {
			if _, ok := cur[id]; !ok {
				out = append(out, Change{Index: idx, Time: now, Action: ActionRemoved, Instance: instanceJSON(prev)})
			}
		}
		f.seen[s.Name] = seenService{index: sidx, insts: cur}
	}
	for name, old := range f.seen {
		if listed[name] {
			continue
		}
		for _, prev := range old.insts {
			out = append(out, Change{Index: idx, Time: now, Action: ActionRemoved, Instance: instanceJSON(prev)})
		}
		delete(f.seen, name)
	}
	slices.SortFunc(out, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.Instance.Service, b.Instance.Service), cmp.Compare(a.Instance.ID, b.Instance.ID))
	})
	f.publish(idx, out)
}

// answersDiffer reports whether two versions of an instance differ in
// what DNS answers or the dashboard shows; a TTL renewal does not.
func answersDiffer(a, b *catalog.Instance) bool {
	return a.Passing != b.Passing || a.Port != b.Port || a.Protocol != b.Protocol ||
		a.PortName != b.PortName || a.HostIP != b.HostIP || a.HostPort != b.HostPort ||
		a.ContainerName != b.ContainerName || a.Node != b.Node ||
		!slices.Equal(a.Tags, b.Tags) || !slices.EqualFunc(a.Addrs, b.Addrs, sameNetAddr)
}

func sameNetAddr(a, b catalog.NetAddr) bool {
	return a.Network == b.Network && a.Prefix == b.Prefix && a.SpansHosts == b.SpansHosts
}

func (f *feed) publish(idx uint64, changes []Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if idx <= f.index && len(changes) == 0 {
		return
	}
	f.index = max(f.index, idx)
	f.changes = append(f.changes, changes...)
	if n := len(f.changes) - maxChanges; n > 0 {
		f.changes = slices.Delete(f.changes, 0, n)
	}
	close(f.next)
	f.next = make(chan struct{})
}

// since returns the changes after index after, oldest first, the index
// the feed is at, and a channel closed at the next publish. complete is
// false when the log no longer holds every change after after: the
// reader missed some and must read the whole state again.
func (f *feed) since(after uint64) (changes []Change, index uint64, next <-chan struct{}, complete bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, _ := slices.BinarySearchFunc(f.changes, after+1, func(c Change, idx uint64) int {
		switch {
		case c.Index < idx:
			return -1
		case c.Index > idx:
			return 1
		}
		return 0
	})
	complete = after >= f.index || i > 0 || len(f.changes) < maxChanges
	return slices.Clone(f.changes[i:]), f.index, f.next, complete
}

// current returns the catalog index of the last diff.
func (f *feed) current() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index
}

// recent returns the last n changes, newest first.
func (f *feed) recent(n int) []Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	n = min(n, len(f.changes))
	out := make([]Change, 0, n)
	for i := len(f.changes) - 1; i >= len(f.changes)-n; i-- {
		out = append(out, f.changes[i])
	}
	return out
}
