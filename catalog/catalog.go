package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	iradix "github.com/hashicorp/go-immutable-radix"
	memdb "github.com/hashicorp/go-memdb"
)

// Catalog is the registry. It is safe for concurrent use: reads see a
// consistent snapshot and never block writes; writes are serialised.
type Catalog struct {
	// writeMu serialises writes from memdb's transaction to the published
	// snapshot, so that the next write builds on the view this one made.
	writeMu sync.Mutex
	db      *memdb.MemDB
	// snap is the catalog index with the view (view.go) at that index,
	// published together after each write's memdb commit. The index may
	// lag the rows by one commit, never lead them: a DNS answer cache
	// labelled with it is at worst rebuilt once more.
	snap atomic.Pointer[snapshot]
}

// snapshot is what each write publishes.
type snapshot struct {
	index uint64
	view  *iradix.Tree
	// next is closed when a later snapshot replaces this one.
	next chan struct{}
}

// New returns an empty catalog at index 0.
func New() *Catalog {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant; an error here is a programming error.
		panic(fmt.Sprintf("catalog schema: %v", err))
	}
	c := &Catalog{db: db}
	c.snap.Store(&snapshot{view: iradix.New(), next: make(chan struct{})})
	return c
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
	if q.Port != "" && q.Port != inst.PortName && !isPortNumber(q.Port, inst.Port) {
		return false
	}
	return true
}

// isPortNumber reports whether s is port in decimal, as strconv.Itoa would
// write it, without allocating the string.
func isPortNumber(s string, port uint16) bool {
	var buf [5]byte
	return s == string(strconv.AppendUint(buf[:0], uint64(port), 10))
}

// ---- reads ----

// Index returns the catalog index: it grows with every write that changed
// something. It costs one atomic load.
func (c *Catalog) Index() uint64 {
	return c.snap.Load().index
}

// Wait blocks until the catalog index is above minIndex, or ctx is done,
// and returns the index it saw last.
func (c *Catalog) Wait(ctx context.Context, minIndex uint64) (uint64, error) {
	for {
		s := c.snap.Load()
		if s.index > minIndex {
			return s.index, nil
		}
		select {
		case <-s.next:
		case <-ctx.Done():
			return s.index, ctx.Err()
		}
	}
}

// Service returns the instances of q.Service that q selects, and the index
// of the service's last change (the catalog index when the service has never
// existed). ws, which may be nil, is told of any change to the service.
func (c *Catalog) Service(ws memdb.WatchSet, q ServiceQuery) (uint64, []*Instance, error) {
	idx, out := c.lookup(ws, nil, q)
	// A TTL heartbeat renews an instance in its row and leaves the view
	// alone (it changes no answer); the API shows the renewed expiry.
	var tx *memdb.Txn
	for k, inst := range out {
		if inst.Expires.IsZero() {
			continue
		}
		if tx == nil {
			tx = c.db.Txn(false)
		}
		cur, err := findInstance(tx, inst.ID)
		if err != nil {
			return 0, nil, err
		}
		// Only a renewal of the same instance: rows may be a write ahead
		// of the view, and this answer is the view's.
		if cur != nil && sameInstance(cur, inst, true) {
			out[k] = cur
		}
	}
	return idx, out, nil
}

// AppendService appends the instances of q.Service that q selects to dst
// and returns it, with the index of the service's last change. It is
// Service without the watch and without allocating (beyond growing dst):
// the DNS server's lookup.
func (c *Catalog) AppendService(dst []*Instance, q ServiceQuery) (uint64, []*Instance) {
	return c.lookup(nil, dst, q)
}

func (c *Catalog) lookup(ws memdb.WatchSet, dst []*Instance, q ServiceQuery) (uint64, []*Instance) {
	snap := c.snap.Load()
	if len(q.Service) > MaxLabelLen {
		return snap.index, dst // not a label: no such service
	}
	var key [1 + MaxLabelLen]byte
	ch, raw, ok := snap.view.Root().GetWatch(viewKey(key[:], kindService, q.Service))
	if ws != nil {
		ws.Add(ch)
	}
	if !ok {
		return snap.index, dst
	}
	row := raw.(*serviceRow)
	for _, inst := range row.Instances {
		if q.Match(inst) {
			dst = append(dst, inst)
		}
	}
	return row.Index, dst
}

// Services lists every service with at least one instance, sorted by name.
// ws, which may be nil, is told of any change to any service.
func (c *Catalog) Services(ws memdb.WatchSet) (uint64, []ServiceSummary, error) {
	snap := c.snap.Load()
	idx, root := snap.index, snap.view.Root()
	if ws != nil {
		ch, _, _ := root.GetWatch(nil)
		ws.Add(ch)
	}
	var out []ServiceSummary
	root.WalkPrefix([]byte{kindService}, func(_ []byte, v any) bool {
		if s := v.(*serviceRow); len(s.Instances) > 0 {
			out = append(out, ServiceSummary{Name: s.Name, Instances: len(s.Instances), Passing: s.Passing})
		}
		return false
	})
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
	idx := c.Index() // before the read: the rows are at least as new
	out, err := containersOf(c.db.Txn(false), indexID, nil)
	return idx, out, err
}

// Stats counts what the catalog holds, for metrics and /healthz.
type Stats struct {
	Index      uint64
	Services   int // services with at least one instance
	Instances  int
	Passing    int
	Containers int
}

// Stats returns the catalog's counts. It walks every service and
// container, so it is for scrapes, not the DNS path.
func (c *Catalog) Stats() (Stats, error) {
	snap := c.snap.Load()
	st := Stats{Index: snap.index}
	it, err := c.db.Txn(false).Get(tableContainers, indexID)
	if err != nil {
		return st, fmt.Errorf("count containers: %w", err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		st.Containers++
		for _, inst := range obj.(*containerRow).insts {
			st.Instances++
			if inst.Passing {
				st.Passing++
			}
		}
	}
	// The rows may be a write ahead of the view: instances are counted
	// from the rows, so that Instances and Containers agree.
	snap.view.Root().WalkPrefix([]byte{kindService}, func(_ []byte, v any) bool {
		if len(v.(*serviceRow).Instances) > 0 {
			st.Services++
		}
		return false
	})
	return st, nil
}

// HasTag reports whether any passing instance carries tag.
func (c *Catalog) HasTag(tag string) (bool, error) {
	if len(tag) > MaxLabelLen {
		return false, nil
	}
	var key [1 + MaxLabelLen]byte
	_, ok := c.snap.Load().view.Get(viewKey(key[:], kindTag, tag))
	return ok, nil
}

// Instance returns one instance by id, or ErrNotFound.
func (c *Catalog) Instance(id string) (*Instance, error) {
	inst, err := findInstance(c.db.Txn(false), id)
	if err != nil {
		return nil, err
	}
	if inst == nil {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return inst, nil
}

// findInstance finds an instance where its id says it lives (see
// Instance.ID): in the row "api/<id>", or in the container its id starts
// with. It returns nil when there is none.
func findInstance(tx *memdb.Txn, id string) (*Instance, error) {
	inst, err := instanceIn(tx, apiContainerPrefix+id, id)
	if inst != nil || err != nil {
		return inst, err
	}
	if ctrID, _, ok := strings.Cut(id, ":"); ok {
		return instanceIn(tx, ctrID, id)
	}
	return nil, nil
}

// instanceIn returns the instance id of the container ctrID, nil when
// either is not there.
func instanceIn(tx *memdb.Txn, ctrID, id string) (*Instance, error) {
	if ctrID == "" {
		return nil, nil
	}
	raw, err := tx.First(tableContainers, indexID, ctrID)
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", ctrID, err)
	}
	if raw == nil {
		return nil, nil
	}
	for _, inst := range raw.(*containerRow).insts {
		if inst.ID == id {
			return inst, nil
		}
	}
	return nil, nil
}

// ContainersByName returns the containers named name (lower-case). There is
// one per Docker host at most, several once nodes share catalogs.
func (c *Catalog) ContainersByName(name string) ([]*Container, error) {
	if name == "" {
		return nil, nil
	}
	return containersOf(c.db.Txn(false), indexName, nil, name)
}

// ContainersByIDPrefix returns the containers whose id starts with prefix
// (lower-case hex), for <short id>.container.<zone> names.
func (c *Catalog) ContainersByIDPrefix(prefix string) ([]*Container, error) {
	if prefix == "" {
		return nil, nil
	}
	return containersOf(c.db.Txn(false), indexID+"_prefix", nil, prefix)
}

// ContainersByAddr returns the containers that have addr on a network.
func (c *Catalog) ContainersByAddr(addr netip.Addr) ([]*Container, error) {
	return containersOf(c.db.Txn(false), indexAddr, nil, addr)
}

// Containers returns every container that src registered on node. It
// walks every container: it serves tests and tools, not a hot path.
func (c *Catalog) Containers(src Source, node string) ([]*Container, error) {
	return containersOf(c.db.Txn(false), indexID, ownedBy(src, node))
}

func ownedBy(src Source, node string) func(*containerRow) bool {
	return func(r *containerRow) bool { return r.ctr.Source == src && r.ctr.Node == node }
}

// containersOf lists the containers of the rows an index lookup finds
// that keep (nil: all) selects.
func containersOf(tx *memdb.Txn, index string, keep func(*containerRow) bool, args ...any) ([]*Container, error) {
	it, err := tx.Get(tableContainers, index, args...)
	if err != nil {
		return nil, fmt.Errorf("read containers by %s: %w", index, err)
	}
	var out []*Container
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*containerRow); keep == nil || keep(r) {
			out = append(out, r.ctr)
		}
	}
	return out, nil
}

// Instances returns every instance that src registered on node. Like
// Containers, it walks every container.
func (c *Catalog) Instances(src Source, node string) ([]*Instance, error) {
	it, err := c.db.Txn(false).Get(tableContainers, indexID)
	if err != nil {
		return nil, fmt.Errorf("read instances of %s/%s: %w", src, node, err)
	}
	owned := ownedBy(src, node)
	var out []*Instance
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*containerRow); owned(r) {
			out = append(out, r.insts...)
		}
	}
	return out, nil
}

// Networks returns the subnets of the networks that the catalog's
// containers are on, masked and without duplicates.
func (c *Catalog) Networks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	c.snap.Load().view.Root().WalkPrefix([]byte{kindNetwork}, func(_ []byte, v any) bool {
		out = append(out, v.(*countRow).network)
		return false
	})
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

// Change is one entry of a batch for Apply: Put stores a container and its
// instances as PutContainer does; without Put, the container Delete is
// removed as DeleteContainer does.
type Change struct {
	Put    *ContainerRecord
	Delete string
}

// Apply makes a batch of changes in one transaction. A watcher that finds
// several events waiting writes them with one Apply: the transaction's
// fixed cost (a radix path copied per index, the view, the index) is paid
// once, which is what lets the catalog keep up with event storms. A change
// that is refused leaves the others to apply: errs holds, at its position,
// why (ErrInvalid, ErrConflict), and is nil when every change applied.
func (c *Catalog) Apply(changes []Change) (idx uint64, errs []error) {
	idx, err := c.write(func(w *writeTxn) error {
		errs = nil
		for k, ch := range changes {
			var err error
			if ch.Put != nil {
				_, err = w.putRecord(*ch.Put)
			} else {
				_, err = w.deleteContainer(ch.Delete)
			}
			if err == nil {
				continue
			}
			// putRecord and deleteContainer check before they write: a
			// refused change wrote nothing. Anything else is memdb failing,
			// and the transaction is dropped whole.
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrConflict) {
				return err
			}
			if errs == nil {
				errs = make([]error, len(changes))
			}
			errs[k] = err
		}
		return nil
	})
	if err != nil {
		errs = make([]error, len(changes))
		for k := range errs {
			errs[k] = err
		}
	}
	return idx, errs
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
		// A walk of every row, where an owner index would cost a radix
		// entry per container: a resync is rare, a lookup is not.
		existing, err := containersOf(w.tx, indexID, ownedBy(src, node))
		if err != nil {
			return err
		}
		for _, ctr := range existing {
			if keep[ctr.ID] {
				continue
			}
			if _, err := w.deleteContainer(ctr.ID); err != nil {
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

// apiContainerPrefix starts the id of the container row that stands for an
// instance registered through the API.
const apiContainerPrefix = "api/"

// RegisterInstance adds or replaces an instance registered through the API,
// together with the container row its SRV target resolves to.
func (c *Catalog) RegisterInstance(inst *Instance) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		if inst.Source != SourceAPI {
			return fmt.Errorf("%w instance %s: source %q, want %q", ErrInvalid, inst.ID, inst.Source, SourceAPI)
		}
		// Before validation: an id that a container's instance holds is
		// taken, whatever else is wrong with the registration.
		found, err := findInstance(w.tx, inst.ID)
		if err != nil {
			return err
		}
		if found != nil && found.Source != SourceAPI {
			return fmt.Errorf("%w: instance %s: id taken by a %s instance", ErrConflict, inst.ID, found.Source)
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
		found, err := w.deleteContainer(apiContainerPrefix + id)
		if err == nil && !found {
			err = fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		return err
	})
}

// ExpireInstances removes every instance whose expiry is at or before now,
// with its container row, in one transaction, and returns their ids.
func (c *Catalog) ExpireInstances(now time.Time) ([]string, uint64, error) {
	var expired []string
	idx, err := c.write(func(w *writeTxn) error {
		expired = expired[:0]
		it, err := w.tx.LowerBound(tableContainers, indexExpires, time.Unix(0, 0))
		if err != nil {
			return fmt.Errorf("list expiring instances: %w", err)
		}
		var due []*containerRow
		for obj := it.Next(); obj != nil; obj = it.Next() {
			r := obj.(*containerRow)
			if r.firstExpiry().After(now) {
				break
			}
			due = append(due, r)
		}
		for _, r := range due {
			if _, err := w.deleteContainer(r.ctr.ID); err != nil {
				return err
			}
			for _, inst := range r.insts {
				expired = append(expired, inst.ID)
			}
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

// writeTxn is one write: the index it will commit at, and what it does to
// the view.
type writeTxn struct {
	tx      *memdb.Txn
	index   uint64
	changed bool
	view    viewChange
}

// write runs fn in one write transaction and commits it, raising the index,
// only if fn changed something.
func (c *Catalog) write(fn func(*writeTxn) error) (uint64, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	prev := c.snap.Load()
	tx := c.db.Txn(true)
	defer tx.Abort()
	w := &writeTxn{tx: tx, index: prev.index + 1}
	if err := fn(w); err != nil {
		return prev.index, err
	}
	if !w.changed {
		return prev.index, nil
	}
	tx.Commit()
	// The rows first, then the index and view together: nothing labelled
	// with the new index (the DNS answer cache) can have read older rows,
	// and no service's index is ever above the catalog's.
	next := &snapshot{index: w.index, view: prev.view, next: make(chan struct{})}
	var notify *iradix.Txn
	if !w.view.empty() {
		next.view, notify = w.view.apply(prev.view, w.index)
	}
	c.snap.Store(next)
	close(prev.next)
	if notify != nil {
		notify.Notify()
	}
	return w.index, nil
}

func (w *writeTxn) putRecord(r ContainerRecord) (change, error) {
	ctr := r.Container
	if err := ctr.validate(); err != nil {
		return changeNone, err
	}
	if _, dup := instancesByID(r.Instances); dup != "" {
		return changeNone, fmt.Errorf("%w instance %s: twice in container %s", ErrInvalid, dup, ctr.ID)
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
	var old *containerRow
	if raw != nil {
		old = raw.(*containerRow)
		if old.ctr.Source != ctr.Source || old.ctr.Node != ctr.Node {
			return changeNone, fmt.Errorf("%w: container %s is owned by %s/%s, not %s/%s", ErrConflict, ctr.ID, old.ctr.Source, old.ctr.Node, ctr.Source, ctr.Node)
		}
	}
	for _, inst := range r.Instances {
		// The id is unique if the one other row it could live in (see
		// Instance.ID) does not hold it.
		other := apiContainerPrefix + inst.ID
		if inst.Source == SourceAPI {
			other, _, _ = strings.Cut(inst.ID, ":")
		}
		found, err := instanceIn(w.tx, other, inst.ID)
		if err != nil {
			return changeNone, err
		}
		if found != nil {
			return changeNone, fmt.Errorf("%w: instance %s is owned by %s/%s, not %s/%s", ErrConflict, inst.ID, found.Source, found.Node, inst.Source, inst.Node)
		}
	}

	row := &containerRow{ctr: ctr, insts: r.Instances}
	ch, instances := changeAdded, true
	if old != nil {
		same, renewed := sameInstances(old.insts, row.insts)
		sameCtr := sameContainer(old.ctr, ctr)
		switch {
		case same && sameCtr:
			return changeNone, nil
		case renewed && sameCtr:
			// A TTL heartbeat: only expiry times move. The view, and with
			// it every long poll on the service, is left alone; Service
			// reads expiry times from the row.
			ch, instances = changeNone, false
		case same || renewed:
			ch, instances = changeUpdated, false
		default:
			ch = changeUpdated
		}
	}
	if err := w.tx.Insert(tableContainers, row); err != nil {
		return changeNone, fmt.Errorf("write container %s: %w", ctr.ID, err)
	}
	w.view.replaceRow(old, row, instances)
	w.changed = true
	return ch, nil
}

// deleteContainer removes a container row and its instances; it reports
// whether there was anything to remove.
func (w *writeTxn) deleteContainer(id string) (bool, error) {
	raw, err := w.tx.First(tableContainers, indexID, id)
	if err != nil {
		return false, fmt.Errorf("read container %s: %w", id, err)
	}
	if raw == nil {
		return false, nil
	}
	if err := w.tx.Delete(tableContainers, raw); err != nil {
		return false, fmt.Errorf("delete container %s: %w", id, err)
	}
	w.view.replaceRow(raw.(*containerRow), nil, true)
	w.changed = true
	return true, nil
}
