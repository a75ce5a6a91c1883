package watcher

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

// store is the watcher's writes to the catalog: the changes a session
// loop turn finds are staged and written by flush in one Apply, and a
// full sync replaces the node's containers in one transaction. Only the
// session's goroutine uses it.
type store struct {
	cat        *catalog.Catalog
	node       string
	log        *changelog
	staged     []catalog.Change
	afterWrite []func(error)
	since      []time.Time         // per staged change: its earliest event's arrival, or zero
	delay      prometheus.Observer // event_to_catalog_seconds
	replaces   int                 // full syncs applied, the first included
	drains     drainState          // containers sent their stop signal (drain.go)
}

// accept returns an inspected container's record, or why it is not
// served, and logs its rejected names.
func (s *store) accept(m mapped) (catalog.ContainerRecord, string) {
	if m.conv.Skip != "" {
		return catalog.ContainerRecord{}, m.conv.Skip
	}
	s.log.logRejected(m.id, m.name, m.conv.Problems)
	return m.conv.Record, ""
}

// put stores what an inspect after an event found: the container and its
// instances, or its removal when it is not served. since is when the
// earliest event it applies arrived (zero for none).
func (s *store) put(id string, m mapped, since time.Time) {
	rec, skip := s.accept(m)
	if skip != "" {
		s.remove(id, skip, since)
		return
	}
	rec = s.hold(id, m, rec)
	// If the container stops after this inspect, its die event is already
	// on its way into the queue and removes it again: storing a state that
	// is a moment old is safe, trusting an event would not be.
	s.stage(catalog.Change{Put: &rec}, since, func(err error) {
		if err != nil {
			// Only an invalid record fails here, a bug in convert; the
			// next resync tries again.
			s.log.log.Error("store container", "container", m.name, "err", err)
			return
		}
		s.log.stored(rec, "")
	})
}

// hold is rec, an inspected container's record, not passing while the
// container is held after its stop signal; it learns how the container
// is stopped, and logs a container that outlived its hold.
func (s *store) hold(id string, m mapped, rec catalog.ContainerRecord) catalog.ContainerRecord {
	s.drains.learn(id, m.stop)
	held, ended, signal := s.drains.held(id, time.Now())
	if ended {
		s.log.log.Info("container still running after its stop signal, answered again", "container", m.name, "id", shortID(id), "signal", signal)
	}
	if held {
		return notPassing(rec)
	}
	return rec
}

// drain takes a container sent signal out of the answers now, when the
// signal stops it, and holds it so (drain.go); it returns the hold. The
// catalog keeps the container, not passing, so that it still lists what
// docker ps does.
func (s *store) drain(id string, signal int) (time.Duration, bool) {
	hold, ok := s.drains.start(id, signal, time.Now())
	if !ok {
		return 0, false
	}
	s.flush() // the turn's earlier writes first: the record read below must be current
	cur, err := s.cat.Container(id)
	if err != nil || cur.Container.Node != s.node || cur.Container.Source != catalog.SourceDocker || !passingAny(cur) {
		return hold, true // not answered now (or not ours); its inspect is held
	}
	rec := notPassing(cur)
	s.stage(catalog.Change{Put: &rec}, time.Time{}, func(err error) {
		if err != nil {
			s.log.log.Error("drain container", "id", shortID(id), "err", err)
			return
		}
		s.log.drained(rec, signal, hold)
	})
	return hold, true
}

// remove deletes a container and its instances from the catalog.
func (s *store) remove(id, reason string, since time.Time) {
	s.drains.forget(id)
	s.stage(catalog.Change{Delete: id}, since, func(err error) {
		if err != nil {
			s.log.log.Error("delete container", "id", shortID(id), "err", err)
			return
		}
		s.log.removed(id, reason)
	})
}

// stage adds a change to the catalog write that ends the session loop's
// turn; then is called, in order, with its outcome. All the results and
// events found waiting in one turn are written in one transaction: in an
// event storm that is what keeps the catalog ahead of Docker (one write
// at a time, the catalog takes ~28k changes/s; in batches, twice that).
func (s *store) stage(ch catalog.Change, since time.Time, then func(error)) {
	s.staged = append(s.staged, ch)
	s.since = append(s.since, since)
	s.afterWrite = append(s.afterWrite, then)
}

// flush writes what the turn staged.
func (s *store) flush() {
	if len(s.staged) == 0 {
		return
	}
	_, errs := s.cat.Apply(s.staged)
	now := time.Now()
	for k, then := range s.afterWrite {
		var err error
		if errs != nil {
			err = errs[k]
		}
		if err == nil && !s.since[k].IsZero() {
			s.delay.Observe(now.Sub(s.since[k]).Seconds())
		}
		then(err)
	}
	clear(s.staged) // the records are the catalog's now; drop our references
	s.staged, s.afterWrite, s.since = s.staged[:0], s.afterWrite[:0], s.since[:0]
}

// replaceResult is what a full sync's replace did.
type replaceResult struct {
	catalog.ReplaceResult
	containers int                 // containers served
	first      bool                // the watcher's first full sync
	repaired   []RepairedContainer // what a later sync changed, by name
}

// replace makes the node's Docker containers in the catalog equal to the
// inspected ones, in one transaction, and logs what changed. The
// containers in uninspected (listed, but their inspect failed) keep what
// the catalog has for them: a container is removed only when Docker says
// it is gone or the list no longer has it.
func (s *store) replace(inspected []mapped, uninspected []string, reason string) (replaceResult, error) {
	records, err := s.current(uninspected)
	if err != nil {
		return replaceResult{}, err
	}
	for _, m := range inspected {
		rec, skip := s.accept(m)
		if skip != "" {
			s.log.log.Debug("container not served", "container", m.name, "reason", skip)
			continue
		}
		records = append(records, s.hold(rec.Container.ID, m, rec))
	}
	ids := make(map[string]bool, len(records))
	for _, rec := range records {
		ids[rec.Container.ID] = true
	}
	s.drains.keepOnly(ids)
	slices.SortFunc(records, func(a, b catalog.ContainerRecord) int { return strings.Compare(a.Container.ID, b.Container.ID) })
	res, err := s.cat.ReplaceNode(catalog.SourceDocker, s.node, records)
	if err != nil {
		return replaceResult{}, fmt.Errorf("replace containers of node %s: %w", s.node, err)
	}
	out := replaceResult{ReplaceResult: res, containers: len(records), first: s.replaces == 0}
	s.replaces++
	out.repaired = s.log.replaced(records, out.first, reason)
	return out, nil
}

// current returns the catalog's records of the containers ids, those it
// has. Read-only: they go back to the catalog unchanged.
func (s *store) current(ids []string) ([]catalog.ContainerRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	ctrs, err := s.cat.Containers(catalog.SourceDocker, s.node)
	if err != nil {
		return nil, fmt.Errorf("read containers of node %s: %w", s.node, err)
	}
	insts, err := s.cat.Instances(catalog.SourceDocker, s.node)
	if err != nil {
		return nil, err
	}
	byCtr := make(map[string][]*catalog.Instance)
	for _, inst := range insts {
		if want[inst.ContainerID] {
			byCtr[inst.ContainerID] = append(byCtr[inst.ContainerID], inst)
		}
	}
	var out []catalog.ContainerRecord
	for _, c := range ctrs {
		if want[c.ID] {
			out = append(out, catalog.ContainerRecord{Container: c, Instances: byCtr[c.ID]})
		}
	}
	return out, nil
}
