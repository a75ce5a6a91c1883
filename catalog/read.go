package catalog

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"
)

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
	// A TTL heartbeat renews an instance in its row and leaves the lookup
	// tree alone (it changes no answer); the API shows the renewed expiry.
	var tx *memdb.Txn
	for k, inst := range out {
		if inst.Expires.IsZero() {
			continue
		}
		if tx == nil {
			tx = c.db.Txn(false)
		}
		cur, err := findInstance(txnRows{tx}, inst.ID)
		if err != nil {
			return 0, nil, err
		}
		// Only a renewal of the same instance: rows may be a write ahead
		// of the tree, and this answer is the tree's.
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
	row, ch := snap.tree.service(q.Service)
	if ws != nil && ch != nil {
		ws.Add(ch)
	}
	if row == nil {
		return snap.index, dst
	}
	for _, inst := range row.Instances {
		if q.Match(inst) {
			dst = append(dst, inst)
		}
	}
	return row.Index, dst
}

// Services lists every service with at least one instance, sorted by name.
// ws, which may be nil, is told of any change to any service.
func (c *Catalog) Services(ws memdb.WatchSet) (uint64, []ServiceSummary) {
	snap := c.snap.Load()
	if ws != nil {
		ws.Add(snap.tree.watchAll())
	}
	var out []ServiceSummary
	snap.tree.eachService(func(s *serviceRow) {
		if len(s.Instances) > 0 {
			out = append(out, ServiceSummary{Name: s.Name, Instances: len(s.Instances), Passing: s.Passing})
		}
	})
	return snap.index, out
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
	// The rows may be a write ahead of the tree: instances are counted
	// from the rows, so that Instances and Containers agree.
	snap.tree.eachService(func(s *serviceRow) {
		if len(s.Instances) > 0 {
			st.Services++
		}
	})
	return st, nil
}

// HasTag reports whether any passing instance carries tag.
func (c *Catalog) HasTag(tag string) bool {
	return c.snap.Load().tree.hasTag(tag)
}

// Networks returns the subnets of the networks that the catalog's
// containers are on, and of this host's networks that span hosts (see
// Network), masked, sorted and without duplicates. An address on a
// network that spans hosts adds no subnet of its own: a peer's record
// never adds a network.
func (c *Catalog) Networks() []netip.Prefix {
	snap := c.snap.Load()
	out := snap.tree.networks()
	if len(snap.nets) == 0 {
		return out
	}
	out = spanningSubnets(out, snap.nets)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	return slices.Compact(out)
}

// Instance returns one instance by id, or ErrNotFound.
func (c *Catalog) Instance(id string) (*Instance, error) {
	inst, err := findInstance(txnRows{c.db.Txn(false)}, id)
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
func findInstance(rows rowReader, id string) (*Instance, error) {
	inst, err := instanceIn(rows, APIContainerID(id), id)
	if inst != nil || err != nil {
		return inst, err
	}
	if ctrID, _, ok := strings.Cut(id, ":"); ok {
		return instanceIn(rows, ctrID, id)
	}
	return nil, nil
}

// instanceIn returns the instance id of the container ctrID, nil when
// either is not there.
func instanceIn(rows rowReader, ctrID, id string) (*Instance, error) {
	if ctrID == "" {
		return nil, nil
	}
	r, err := rows.row(ctrID)
	if err != nil || r == nil {
		return nil, err
	}
	for _, inst := range r.insts {
		if inst.ID == id {
			return inst, nil
		}
	}
	return nil, nil
}

// rowReader finds a container row by id, nil when there is none: a read
// transaction's (txnRows), or a write's as the write has left it
// (writeTxn).
type rowReader interface {
	row(id string) (*containerRow, error)
}

// txnRows reads the rows of a memdb transaction.
type txnRows struct{ tx *memdb.Txn }

func (t txnRows) row(id string) (*containerRow, error) {
	raw, err := t.tx.First(tableContainers, indexID, id)
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*containerRow), nil
}

// EachService calls fn, in name order, with every service that has at least
// one instance, the index of its last change and its instances (shared:
// never modified), all from one snapshot; it returns that snapshot's
// catalog index. A reader that keeps its own table of every service (the
// HTTP proxy's routes) rebuilds it with one walk after each Wait.
func (c *Catalog) EachService(fn func(service string, index uint64, insts []*Instance)) uint64 {
	snap := c.snap.Load()
	snap.tree.eachService(func(s *serviceRow) {
		if len(s.Instances) > 0 {
			fn(s.Name, s.Index, s.Instances)
		}
	})
	return snap.index
}
