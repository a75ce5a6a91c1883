package catalog

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"

	iradix "github.com/hashicorp/go-immutable-radix"
)

// lookupTree is what DNS asks of the catalog, derived from the container
// rows at each write: every service with its instances, the tags that
// passing instances carry, and the networks the containers are on. It is
// an immutable radix tree, published with the catalog index in one atomic
// store after the write's memdb commit (see snapshot), so a lookup is a
// pointer load and a tree walk: no transaction, no iterator, no allocation
// (a memdb read allocates a dozen times). Its leaves' watch channels serve
// the HTTP API's long polls.
//
// Only the methods below know how its keys are laid out: one prefix byte
// and the name.
type lookupTree struct{ t *iradix.Tree }

const (
	keyService = 's'
	keyTag     = 't'
	keyNetwork = 'n'
)

// serviceRow is one service: its instances sorted by id, and the index of
// the last change an answer can see. A row stays when its service empties,
// so a long poll on it keeps an exact index.
type serviceRow struct {
	Name      string
	Index     uint64
	Instances []*Instance
	Passing   int
}

// countRow counts what keeps a tag or a network in the tree: the passing
// instances that carry the tag, the addresses on the network.
type countRow struct {
	n       int
	network netip.Prefix // for network rows
}

// service returns the row of the service name, nil when there is none,
// and the channel closed when it changes (or, for a service not there,
// when it appears).
func (lt lookupTree) service(name string) (*serviceRow, <-chan struct{}) {
	if len(name) > MaxLabelLen {
		return nil, nil // not a label: no such service, and there never will be
	}
	var key [1 + MaxLabelLen]byte
	ch, raw, ok := lt.t.Root().GetWatch(treeKey(key[:], keyService, name))
	if !ok {
		return nil, ch
	}
	return raw.(*serviceRow), ch
}

// eachService calls fn with every service row, in name order, emptied
// services included.
func (lt lookupTree) eachService(fn func(*serviceRow)) {
	lt.t.Root().WalkPrefix([]byte{keyService}, func(_ []byte, v any) bool {
		fn(v.(*serviceRow))
		return false
	})
}

// hasTag reports whether a passing instance carries tag.
func (lt lookupTree) hasTag(tag string) bool {
	if len(tag) > MaxLabelLen {
		return false
	}
	var key [1 + MaxLabelLen]byte
	_, ok := lt.t.Get(treeKey(key[:], keyTag, tag))
	return ok
}

// networks returns the masked subnets the containers are on.
func (lt lookupTree) networks() []netip.Prefix {
	var out []netip.Prefix
	lt.t.Root().WalkPrefix([]byte{keyNetwork}, func(_ []byte, v any) bool {
		out = append(out, v.(*countRow).network)
		return false
	})
	return out
}

// watchAll returns the channel closed by any change to the tree.
func (lt lookupTree) watchAll() <-chan struct{} {
	ch, _, _ := lt.t.Root().GetWatch(nil)
	return ch
}

// treeKey builds a key in buf when it fits, so that lookups do not allocate.
func treeKey(buf []byte, prefix byte, name string) []byte {
	return append(append(buf[:0], prefix), name...)
}

func networkKey(buf []byte, p netip.Prefix) []byte {
	a := p.Addr().As16()
	return append(append(append(buf[:0], keyNetwork), a[:]...), byte(p.Bits()))
}

// treeChange gathers what one write does to the lookup tree, applied once
// at the end, so that a resync of 10,000 containers rebuilds each service once
// and not once per container.
type treeChange struct {
	services map[string]*serviceChange
	tags     map[string]int
	networks map[netip.Prefix]int
}

// serviceChange is what a write does to one service: the instances it
// puts, in the order put, and the containers whose instances go, each with
// the number of instances put when it went: those put before go too,
// those put after stay. A write that only adds (a node joining the cluster
// adds 99,000 containers) drops nothing, and keeps every instance the
// service had without looking at them.
type serviceChange struct {
	added   []*Instance
	dropped map[string]int
}

func (v *treeChange) empty() bool {
	return len(v.services) == 0 && len(v.tags) == 0 && len(v.networks) == 0
}

func (v *treeChange) service(name string) *serviceChange {
	if v.services == nil {
		v.services = map[string]*serviceChange{}
	}
	sc := v.services[name]
	if sc == nil {
		sc = &serviceChange{}
		v.services[name] = sc
	}
	return sc
}

// replaceRow records that the container row old (nil: none) is replaced by
// new (nil: deleted). instances is false when the instances give the same
// answers as before: only the container changed, or only expiry times.
func (v *treeChange) replaceRow(old, new *containerRow, instances bool) {
	if old != nil {
		if instances {
			v.dropInstances(old)
		}
		v.countNetworks(old.ctr, -1)
	}
	if new != nil {
		if instances {
			for _, inst := range new.insts {
				sc := v.service(inst.Service)
				sc.added = append(sc.added, inst)
				v.countTags(inst, +1)
			}
		}
		v.countNetworks(new.ctr, +1)
	}
}

// dropInstances takes r's instances out of their services and tags.
func (v *treeChange) dropInstances(r *containerRow) {
	for _, inst := range r.insts {
		// Its instances in the tree go, and so do any put earlier in this
		// same write.
		sc := v.service(inst.Service)
		if sc.dropped == nil {
			sc.dropped = map[string]int{}
		}
		sc.dropped[r.ctr.ID] = len(sc.added)
		v.countTags(inst, -1)
	}
}

func (v *treeChange) countTags(inst *Instance, d int) {
	if !inst.Passing || len(inst.Tags) == 0 {
		return
	}
	if v.tags == nil {
		v.tags = map[string]int{}
	}
	for _, t := range inst.Tags {
		v.tags[t] += d
	}
}

func (v *treeChange) countNetworks(c *Container, d int) {
	for _, a := range c.Addrs {
		if !a.Prefix.IsValid() || a.Prefix.Bits() == a.Prefix.Addr().BitLen() || a.SpansHosts {
			continue
		}
		if v.networks == nil {
			v.networks = map[netip.Prefix]int{}
		}
		v.networks[a.Prefix.Masked()] += d
	}
}

// apply returns the tree with the change made, at index, and the
// transaction whose Notify wakes the watchers of what changed.
func (v *treeChange) apply(lt lookupTree, index uint64) (lookupTree, *iradix.Txn) {
	txn := lt.t.Txn()
	txn.TrackMutate(true)
	var key [1 + MaxLabelLen + 1]byte
	for name, sc := range v.services {
		k := treeKey(key[:], keyService, name)
		var old *serviceRow
		if raw, ok := txn.Get(k); ok {
			old = raw.(*serviceRow)
		}
		txn.Insert(slices.Clone(k), sc.row(name, index, old)) // the tree keeps the key
	}
	for tag, d := range v.tags {
		if d != 0 {
			adjustCount(txn, treeKey(key[:], keyTag, tag), d, netip.Prefix{})
		}
	}
	for p, d := range v.networks {
		if d != 0 {
			adjustCount(txn, networkKey(key[:], p), d, p)
		}
	}
	return lookupTree{txn.CommitOnly()}, txn
}

// row returns the service name's row, at index, with the change made to
// old (nil: the service is new).
func (sc *serviceChange) row(name string, index uint64, old *serviceRow) *serviceRow {
	row := &serviceRow{Name: name, Index: index}
	var kept []*Instance
	if old != nil {
		kept, row.Passing = old.Instances, old.Passing
	}
	added := sc.added
	if len(sc.dropped) > 0 {
		kept, added = sc.drop(kept), sc.stillAdded()
		row.Passing = 0
		for _, inst := range kept {
			if inst.Passing {
				row.Passing++
			}
		}
	}
	for _, inst := range added {
		if inst.Passing {
			row.Passing++
		}
	}
	row.Instances = mergeByID(kept, added)
	return row
}

// drop returns the instances of kept whose containers stay.
func (sc *serviceChange) drop(kept []*Instance) []*Instance {
	out := make([]*Instance, 0, len(kept))
	for _, inst := range kept {
		if _, gone := sc.dropped[inst.ContainerID]; !gone {
			out = append(out, inst)
		}
	}
	return out
}

// stillAdded returns the instances put that no later drop took out.
func (sc *serviceChange) stillAdded() []*Instance {
	out := make([]*Instance, 0, len(sc.added))
	for k, inst := range sc.added {
		if at, gone := sc.dropped[inst.ContainerID]; !gone || k >= at {
			out = append(out, inst)
		}
	}
	return out
}

// mergeByID returns kept (sorted by id) and added in one new list sorted
// by id; added is sorted in place. Only the new ones are sorted, and each
// finds its place in kept by binary search: a change of one container in a
// service of thousands sorts one instance and copies the rest.
func mergeByID(kept, added []*Instance) []*Instance {
	slices.SortFunc(added, func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]*Instance, 0, len(kept)+len(added))
	for _, inst := range added {
		// After any equal id, as a stable merge puts it.
		n := sort.Search(len(kept), func(i int) bool { return kept[i].ID > inst.ID })
		out = append(append(out, kept[:n]...), inst)
		kept = kept[n:]
	}
	return append(out, kept...)
}

// adjustCount adds d to the count at k, and removes the row at zero. k is
// copied: the tree keeps the keys it is given.
func adjustCount(txn *iradix.Txn, k []byte, d int, network netip.Prefix) {
	n := d
	if raw, ok := txn.Get(k); ok {
		n += raw.(*countRow).n
	}
	if n <= 0 {
		txn.Delete(k)
		return
	}
	txn.Insert(slices.Clone(k), &countRow{n: n, network: network})
}
