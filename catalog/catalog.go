package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Catalog is the registry. It is safe for concurrent use: reads see a
// consistent snapshot and never block writes; writes are serialised.
type Catalog struct {
	db *memdb.MemDB
	// index mirrors the committed catalog index, stored after each commit,
	// so readers on the DNS hot path can tell whether anything changed
	// without opening a transaction. It may lag the data by one commit,
	// never lead it: a cache labelled with it is at worst rebuilt once more.
	index atomic.Uint64
}

// New returns an empty catalog at index 0.
func New() *Catalog {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant; an error here is a programming error.
		panic(fmt.Sprintf("catalog schema: %v", err))
	}
	return &Catalog{db: db}
}

// ContainerRecord is a container with the instances it provides, the unit
// a watcher writes.
type ContainerRecord struct {
	Container *Container
	Instances []*Instance
}

// ReplaceResult says what a ReplaceNode changed. Added, Removed and Updated
// count containers; a resync that finds Docker and the catalog equal
// changes nothing and leaves the index where it was.
type ReplaceResult struct {
	Index                   uint64
	Added, Removed, Updated int
	// Conflicts counts records left out because another source or node
	// owns the container or an instance id.
	Conflicts int
}

// Repairs is the number of containers the replace had to change.
func (r ReplaceResult) Repairs() int { return r.Added + r.Removed + r.Updated }

// ServiceSummary is one service as GET /v1/services lists it.
type ServiceSummary struct {
	Name      string
	Instances int // all registered instances
	Passing   int // instances answered in DNS
}

// ServiceQuery selects instances of one service. Empty fields match all.
type ServiceQuery struct {
	Service     string // lower-case
	Tag         string // lower-case
	Protocol    string // ProtoTCP or ProtoUDP
	Port        string // the port number, or its name
	PassingOnly bool
}

// Match reports whether inst is selected by q (its Service aside, which the
// lookup itself selects on).
func (q ServiceQuery) Match(inst *Instance) bool {
	if q.PassingOnly && !inst.Passing {
		return false
	}
	if q.Tag != "" && !inst.HasTag(q.Tag) {
		return false
	}
	if q.Protocol != "" && inst.Protocol != q.Protocol {
		return false
	}
	if q.Port != "" && q.Port != inst.PortName && q.Port != strconv.Itoa(int(inst.Port)) {
		return false
	}
	return true
}

// ---- reads ----

// Index returns the catalog index: it grows with every write that changed
// something. It costs one atomic load.
func (c *Catalog) Index() uint64 {
	return c.index.Load()
}

func indexTxn(tx *memdb.Txn, ws memdb.WatchSet) uint64 {
	ch, raw, err := tx.FirstWatch(tableIndex, indexID, keyCatalog)
	ws.Add(ch)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}

// Wait blocks until the catalog index is above minIndex, or ctx is done,
// and returns the index it saw last.
func (c *Catalog) Wait(ctx context.Context, minIndex uint64) (uint64, error) {
	for {
		ws := memdb.NewWatchSet()
		idx := indexTxn(c.db.Txn(false), ws)
		if idx > minIndex {
			return idx, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return idx, err
		}
	}
}

// Service returns the instances of q.Service that q selects, and the index
// of the service's last change (the catalog index when the service has never
// existed). ws, which may be nil, is told of any change to the service.
func (c *Catalog) Service(ws memdb.WatchSet, q ServiceQuery) (uint64, []*Instance, error) {
	tx := c.db.Txn(false)
	ch, raw, err := tx.FirstWatch(tableServices, indexID, q.Service)
	if err != nil {
		return 0, nil, fmt.Errorf("read service %s: %w", q.Service, err)
	}
	ws.Add(ch)
	if raw == nil {
		return indexTxn(tx, nil), nil, nil
	}
	idx := raw.(*serviceEntry).Index
	it, err := tx.Get(tableInstances, indexService, q.Service)
	if err != nil {
		return 0, nil, fmt.Errorf("read instances of %s: %w", q.Service, err)
	}
	var out []*Instance
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if inst := obj.(*Instance); q.Match(inst) {
			out = append(out, inst)
		}
	}
	return idx, out, nil
}

// Services lists every service with at least one instance, sorted by name.
func (c *Catalog) Services(ws memdb.WatchSet) (uint64, []ServiceSummary, error) {
	tx := c.db.Txn(false)
	idx := indexTxn(tx, nil)
	it, err := tx.Get(tableServices, indexID)
	if err != nil {
		return 0, nil, fmt.Errorf("list services: %w", err)
	}
	ws.Add(it.WatchCh())
	var out []ServiceSummary
	for obj := it.Next(); obj != nil; obj = it.Next() {
		s := obj.(*serviceEntry)
		if s.Instances > 0 {
			out = append(out, ServiceSummary{Name: s.Name, Instances: s.Instances, Passing: s.Passing})
		}
	}
	return idx, out, nil
}

// WaitService returns the instances of q.Service that q selects once the
// service's index is above minIndex, or when ctx is done, whichever comes
// first; it is the long poll of the HTTP API. The error is nil when ctx
// ends the wait: the caller then answers with what it got.
func (c *Catalog) WaitService(ctx context.Context, q ServiceQuery, minIndex uint64) (uint64, []*Instance, error) {
	for {
		ws := memdb.NewWatchSet()
		idx, insts, err := c.Service(ws, q)
		if err != nil || idx > minIndex || minIndex == 0 {
			return idx, insts, err
		}
		if ws.WatchCtx(ctx) != nil {
			return idx, insts, nil
		}
	}
}

// AllContainers returns every container in the catalog, ordered by id,
// and the catalog index it was read at.
func (c *Catalog) AllContainers() (uint64, []*Container, error) {
	tx := c.db.Txn(false)
	idx := indexTxn(tx, nil)
	it, err := tx.Get(tableContainers, indexID)
	if err != nil {
		return 0, nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*Container))
	}
	return idx, out, nil
}

// Stats counts what the catalog holds, for metrics and /healthz.
type Stats struct {
	Index      uint64
	Services   int // services with at least one instance
	Instances  int
	Passing    int
	Containers int
}

// Stats returns the catalog's counts from one snapshot. It walks the
// services and containers tables, so it is for scrapes, not the DNS path.
func (c *Catalog) Stats() (Stats, error) {
	tx := c.db.Txn(false)
	st := Stats{Index: indexTxn(tx, nil)}
	it, err := tx.Get(tableServices, indexID)
	if err != nil {
		return st, fmt.Errorf("count services: %w", err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		s := obj.(*serviceEntry)
		if s.Instances > 0 {
			st.Services++
			st.Instances += s.Instances
			st.Passing += s.Passing
		}
	}
	ct, err := tx.Get(tableContainers, indexID)
	if err != nil {
		return st, fmt.Errorf("count containers: %w", err)
	}
	for obj := ct.Next(); obj != nil; obj = ct.Next() {
		st.Containers++
	}
	return st, nil
}

// HasTag reports whether any passing instance carries tag.
func (c *Catalog) HasTag(tag string) (bool, error) {
	it, err := c.db.Txn(false).Get(tableInstances, indexTag, tag)
	if err != nil {
		return false, fmt.Errorf("read instances by tag %s: %w", tag, err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if obj.(*Instance).Passing {
			return true, nil
		}
	}
	return false, nil
}

// Instance returns one instance by id, or ErrNotFound.
func (c *Catalog) Instance(id string) (*Instance, error) {
	raw, err := c.db.Txn(false).First(tableInstances, indexID, id)
	if err != nil {
		return nil, fmt.Errorf("read instance %s: %w", id, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return raw.(*Instance), nil
}

// ContainersByName returns the containers named name (lower-case). There is
// one per Docker host at most, several once nodes share catalogs.
func (c *Catalog) ContainersByName(name string) ([]*Container, error) {
	return c.containers(indexName, name)
}

// ContainersByIDPrefix returns the containers whose id starts with prefix
// (lower-case hex), for <short id>.container.<zone> names.
func (c *Catalog) ContainersByIDPrefix(prefix string) ([]*Container, error) {
	if prefix == "" {
		return nil, nil
	}
	return c.containers(indexID+"_prefix", prefix)
}

// ContainersByAddr returns the containers that have addr on a network.
func (c *Catalog) ContainersByAddr(addr netip.Addr) ([]*Container, error) {
	return c.containers(indexAddr, addr)
}

// Containers returns every container that src registered on node.
func (c *Catalog) Containers(src Source, node string) ([]*Container, error) {
	return c.containers(indexOwner, src, node)
}

func (c *Catalog) containers(index string, args ...any) ([]*Container, error) {
	it, err := c.db.Txn(false).Get(tableContainers, index, args...)
	if err != nil {
		return nil, fmt.Errorf("read containers by %s: %w", index, err)
	}
	var out []*Container
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*Container))
	}
	return out, nil
}

// Instances returns every instance that src registered on node. (An
// instance is always written and deleted with its container row, so the
// containers' owner index finds them all.)
func (c *Catalog) Instances(src Source, node string) ([]*Instance, error) {
	tx := c.db.Txn(false)
	ctrs, err := tx.Get(tableContainers, indexOwner, src, node)
	if err != nil {
		return nil, fmt.Errorf("read containers of %s/%s: %w", src, node, err)
	}
	var out []*Instance
	for obj := ctrs.Next(); obj != nil; obj = ctrs.Next() {
		it, err := tx.Get(tableInstances, indexContainer, obj.(*Container).ID)
		if err != nil {
			return nil, fmt.Errorf("read instances of %s/%s: %w", src, node, err)
		}
		for inst := it.Next(); inst != nil; inst = it.Next() {
			out = append(out, inst.(*Instance))
		}
	}
	return out, nil
}

// Networks returns the subnets of the networks that the catalog's
// containers are on, masked and without duplicates.
func (c *Catalog) Networks() ([]netip.Prefix, error) {
	it, err := c.db.Txn(false).Get(tableContainers, indexID)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []netip.Prefix
	for obj := it.Next(); obj != nil; obj = it.Next() {
		for _, a := range obj.(*Container).Addrs {
			if !a.Prefix.IsValid() || a.Prefix.Bits() == a.Prefix.Addr().BitLen() {
				continue
			}
			if p := a.Prefix.Masked(); !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// ---- writes ----

// PutContainer stores a container and exactly the given instances for it:
// instances of the container that are not in insts are deleted. It changes
// nothing, and keeps the index, when everything is as stored.
func (c *Catalog) PutContainer(ctr *Container, insts []*Instance) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		_, err := w.putRecord(ContainerRecord{Container: ctr, Instances: insts})
		return err
	})
}

// DeleteContainer removes a container and its instances. Deleting an unknown
// container is not an error: events about containers svcdns never stored
// (ignored ones, say) are common.
func (c *Catalog) DeleteContainer(id string) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		_, err := w.deleteContainer(id)
		return err
	})
}

// ReplaceNode makes what src registered on node equal to records, in one
// transaction: containers absent from records are removed with their
// instances, the others are added or updated. A watcher calls it after each
// full list of the Docker host.
func (c *Catalog) ReplaceNode(src Source, node string, records []ContainerRecord) (ReplaceResult, error) {
	var res ReplaceResult
	idx, err := c.write(func(w *writeTxn) error {
		res = ReplaceResult{}
		keep := make(map[string]bool, len(records))
		for _, r := range records {
			if r.Container == nil {
				return fmt.Errorf("%w record: no container", ErrInvalid)
			}
			if r.Container.Source != src || r.Container.Node != node {
				return fmt.Errorf("%w container %s: owned by %s/%s, not %s/%s", ErrInvalid,
					r.Container.ID, r.Container.Source, r.Container.Node, src, node)
			}
			keep[r.Container.ID] = true
		}
		existing, err := w.tx.Get(tableContainers, indexOwner, src, node)
		if err != nil {
			return fmt.Errorf("list containers of %s/%s: %w", src, node, err)
		}
		var gone []string
		for obj := existing.Next(); obj != nil; obj = existing.Next() {
			if id := obj.(*Container).ID; !keep[id] {
				gone = append(gone, id)
			}
		}
		for _, id := range gone {
			if _, err := w.deleteContainer(id); err != nil {
				return err
			}
			res.Removed++
		}
		for _, r := range records {
			change, err := w.putRecord(r)
			if errors.Is(err, ErrConflict) {
				// Another owner's container (two nodes watching one
				// Docker host): left to its owner, counted, and the rest
				// of the resync goes on.
				res.Conflicts++
				continue
			}
			if err != nil {
				return err
			}
			switch change {
			case changeAdded:
				res.Added++
			case changeUpdated:
				res.Updated++
			}
		}
		return nil
	})
	res.Index = idx
	return res, err
}

// RegisterInstance adds or replaces an instance registered through the API,
// together with the container row its SRV target resolves to.
func (c *Catalog) RegisterInstance(inst *Instance) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		if inst.Source != SourceAPI {
			return fmt.Errorf("%w instance %s: source %q, want %q", ErrInvalid, inst.ID, inst.Source, SourceAPI)
		}
		raw, err := w.tx.First(tableInstances, indexID, inst.ID)
		if err != nil {
			return fmt.Errorf("read instance %s: %w", inst.ID, err)
		}
		if raw != nil && raw.(*Instance).Source != SourceAPI {
			return fmt.Errorf("%w: instance %s: id taken by a %s instance", ErrConflict, inst.ID, raw.(*Instance).Source)
		}
		ctr := &Container{
			ID: inst.ContainerID, Name: inst.ContainerName, Node: inst.Node, Source: SourceAPI,
			Addrs: inst.Addrs, Passing: inst.Passing,
		}
		_, err = w.putRecord(ContainerRecord{Container: ctr, Instances: []*Instance{inst}})
		return err
	})
}

// DeregisterInstance removes an API-registered instance, or returns
// ErrNotFound.
func (c *Catalog) DeregisterInstance(id string) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		raw, err := w.tx.First(tableInstances, indexID, id)
		if err != nil {
			return fmt.Errorf("read instance %s: %w", id, err)
		}
		if raw == nil || raw.(*Instance).Source != SourceAPI {
			return fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		_, err = w.deleteContainer(raw.(*Instance).ContainerID)
		return err
	})
}

// ExpireInstances removes every instance whose expiry is at or before now,
// in one transaction, and returns their ids.
func (c *Catalog) ExpireInstances(now time.Time) ([]string, uint64, error) {
	var expired []string
	idx, err := c.write(func(w *writeTxn) error {
		expired = expired[:0]
		it, err := w.tx.LowerBound(tableInstances, indexExpires, time.Unix(0, 0))
		if err != nil {
			return fmt.Errorf("list expiring instances: %w", err)
		}
		var due []*Instance
		for obj := it.Next(); obj != nil; obj = it.Next() {
			inst := obj.(*Instance)
			if inst.Expires.After(now) {
				break
			}
			due = append(due, inst)
		}
		for _, inst := range due {
			if _, err := w.deleteContainer(inst.ContainerID); err != nil {
				return err
			}
			if err := w.deleteInstance(inst.ID); err != nil {
				return err
			}
			expired = append(expired, inst.ID)
		}
		return nil
	})
	return expired, idx, err
}

// RunExpiry removes expired instances every interval until ctx is done.
// onExpire, if not nil, is called with the ids removed by each pass.
func (c *Catalog) RunExpiry(ctx context.Context, interval time.Duration, onExpire func([]string)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			ids, _, err := c.ExpireInstances(now)
			if err != nil {
				return fmt.Errorf("expire instances: %w", err)
			}
			if len(ids) > 0 && onExpire != nil {
				onExpire(ids)
			}
		}
	}
}

// ---- the write transaction ----

type change int

const (
	changeNone change = iota
	changeAdded
	changeUpdated
)

// writeTxn is one write: the index it will commit at, and the services whose
// rows must be recounted before it commits.
type writeTxn struct {
	tx       *memdb.Txn
	index    uint64
	changed  bool
	services map[string]bool
}

// write runs fn in one write transaction and commits it, raising the index,
// only if fn changed something.
func (c *Catalog) write(fn func(*writeTxn) error) (uint64, error) {
	tx := c.db.Txn(true)
	defer tx.Abort()
	prev := indexTxn(tx, nil)
	w := &writeTxn{tx: tx, index: prev + 1, services: map[string]bool{}}
	if err := fn(w); err != nil {
		return prev, err
	}
	if !w.changed {
		return prev, nil
	}
	if err := w.recountServices(); err != nil {
		return prev, err
	}
	if err := tx.Insert(tableIndex, &indexEntry{Key: keyCatalog, Value: w.index}); err != nil {
		return prev, fmt.Errorf("write index: %w", err)
	}
	tx.Commit()
	// Commit released the writer lock: a later write may have stored its
	// index already, so only ever raise it.
	for cur := c.index.Load(); cur < w.index && !c.index.CompareAndSwap(cur, w.index); cur = c.index.Load() {
	}
	return w.index, nil
}

func (w *writeTxn) putRecord(r ContainerRecord) (change, error) {
	ctr := r.Container
	if err := ctr.validate(); err != nil {
		return changeNone, err
	}
	for _, inst := range r.Instances {
		if err := inst.validate(); err != nil {
			return changeNone, err
		}
		if inst.ContainerID != ctr.ID {
			return changeNone, fmt.Errorf("%w instance %s: container %q, want %q", ErrInvalid, inst.ID, inst.ContainerID, ctr.ID)
		}
		if inst.Source != ctr.Source || inst.Node != ctr.Node {
			return changeNone, fmt.Errorf("%w instance %s: owned by %s/%s, its container by %s/%s", ErrInvalid, inst.ID, inst.Source, inst.Node, ctr.Source, ctr.Node)
		}
	}
	// A source only ever writes what it owns: checked for every row before
	// anything is written, so a refused record changes nothing.
	raw, err := w.tx.First(tableContainers, indexID, ctr.ID)
	if err != nil {
		return changeNone, fmt.Errorf("read container %s: %w", ctr.ID, err)
	}
	if raw != nil {
		if old := raw.(*Container); old.Source != ctr.Source || old.Node != ctr.Node {
			return changeNone, fmt.Errorf("%w: container %s is owned by %s/%s, not %s/%s", ErrConflict, ctr.ID, old.Source, old.Node, ctr.Source, ctr.Node)
		}
	}
	for _, inst := range r.Instances {
		iraw, err := w.tx.First(tableInstances, indexID, inst.ID)
		if err != nil {
			return changeNone, fmt.Errorf("read instance %s: %w", inst.ID, err)
		}
		if iraw != nil {
			if old := iraw.(*Instance); old.Source != inst.Source || old.Node != inst.Node {
				return changeNone, fmt.Errorf("%w: instance %s is owned by %s/%s, not %s/%s", ErrConflict, inst.ID, old.Source, old.Node, inst.Source, inst.Node)
			}
		}
	}
	ch := changeNone
	if raw == nil {
		ch = changeAdded
	} else if !reflect.DeepEqual(raw.(*Container), ctr) {
		ch = changeUpdated
	}
	if ch != changeNone {
		if err := w.tx.Insert(tableContainers, ctr); err != nil {
			return changeNone, fmt.Errorf("write container %s: %w", ctr.ID, err)
		}
		w.changed = true
	}

	instancesChanged := false
	keep := make(map[string]bool, len(r.Instances))
	for _, inst := range r.Instances {
		keep[inst.ID] = true
	}
	it, err := w.tx.Get(tableInstances, indexContainer, ctr.ID)
	if err != nil {
		return changeNone, fmt.Errorf("list instances of container %s: %w", ctr.ID, err)
	}
	var stale []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if id := obj.(*Instance).ID; !keep[id] {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		if err := w.deleteInstance(id); err != nil {
			return changeNone, err
		}
		instancesChanged = true
	}
	for _, inst := range r.Instances {
		changed, err := w.putInstance(inst)
		if err != nil {
			return changeNone, err
		}
		instancesChanged = instancesChanged || changed
	}
	if ch == changeNone && instancesChanged {
		ch = changeUpdated
	}
	return ch, nil
}

func (w *writeTxn) putInstance(inst *Instance) (bool, error) {
	raw, err := w.tx.First(tableInstances, indexID, inst.ID)
	if err != nil {
		return false, fmt.Errorf("read instance %s: %w", inst.ID, err)
	}
	heartbeat := false
	if raw != nil {
		old := raw.(*Instance)
		if reflect.DeepEqual(old, inst) {
			return false, nil
		}
		// A renewal that only moves the expiry changes no answer: it must
		// not raise the service's index, or every TTL heartbeat would wake
		// every long poll on the service.
		renewed := *old
		renewed.Expires = inst.Expires
		heartbeat = reflect.DeepEqual(&renewed, inst)
		if !heartbeat {
			w.services[old.Service] = true
		}
	}
	if err := w.tx.Insert(tableInstances, inst); err != nil {
		return false, fmt.Errorf("write instance %s: %w", inst.ID, err)
	}
	if !heartbeat {
		w.services[inst.Service] = true
	}
	w.changed = true
	return !heartbeat, nil
}

func (w *writeTxn) deleteInstance(id string) error {
	raw, err := w.tx.First(tableInstances, indexID, id)
	if err != nil {
		return fmt.Errorf("read instance %s: %w", id, err)
	}
	if raw == nil {
		return nil
	}
	if err := w.tx.Delete(tableInstances, raw); err != nil {
		return fmt.Errorf("delete instance %s: %w", id, err)
	}
	w.services[raw.(*Instance).Service] = true
	w.changed = true
	return nil
}

// deleteContainer removes a container row and its instances; it reports
// whether there was anything to remove.
func (w *writeTxn) deleteContainer(id string) (bool, error) {
	found := false
	raw, err := w.tx.First(tableContainers, indexID, id)
	if err != nil {
		return false, fmt.Errorf("read container %s: %w", id, err)
	}
	if raw != nil {
		if err := w.tx.Delete(tableContainers, raw); err != nil {
			return false, fmt.Errorf("delete container %s: %w", id, err)
		}
		w.changed, found = true, true
	}
	it, err := w.tx.Get(tableInstances, indexContainer, id)
	if err != nil {
		return false, fmt.Errorf("list instances of container %s: %w", id, err)
	}
	var ids []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		ids = append(ids, obj.(*Instance).ID)
	}
	for _, iid := range ids {
		if err := w.deleteInstance(iid); err != nil {
			return false, err
		}
		found = true
	}
	return found, nil
}

// recountServices rewrites the rows of the services this write touched, so
// each carries its counts and the index of its last change.
func (w *writeTxn) recountServices() error {
	for name := range w.services {
		it, err := w.tx.Get(tableInstances, indexService, name)
		if err != nil {
			return fmt.Errorf("count instances of %s: %w", name, err)
		}
		e := &serviceEntry{Name: name, Index: w.index}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			e.Instances++
			if obj.(*Instance).Passing {
				e.Passing++
			}
		}
		// Rows stay when a service empties, so a long poll on it keeps an
		// exact index instead of falling back to the catalog's.
		if err := w.tx.Insert(tableServices, e); err != nil {
			return fmt.Errorf("write service %s: %w", name, err)
		}
	}
	return nil
}
