package catalog

import (
	"cmp"
	"net/netip"
	"slices"

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
	services map[string]serviceChange
	tags     map[string]int
	networks map[netip.Prefix]int
}

// serviceChange replaces, in one service, the instances of some
// containers: by container id, the new instances (none, for a container
// that left the service). The old instances of every container named here
// go.
type serviceChange map[string][]*Instance

func (v *treeChange) empty() bool {
	return len(v.services) == 0 && len(v.tags) == 0 && len(v.networks) == 0
}

func (v *treeChange) service(name string) serviceChange {
	if v.services == nil {
		v.services = map[string]serviceChange{}
	}
	sc := v.services[name]
	if sc == nil {
		sc = serviceChange{}
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
				sc[new.ctr.ID] = append(sc[new.ctr.ID], inst)
				v.countTags(inst, +1)
			}
		}
		v.countNetworks(new.ctr, +1)
	}
}

// dropInstances takes r's instances out of their services and tags.
func (v *treeChange) dropInstances(r *containerRow) {
	for _, inst := range r.insts {
		// Emptied, not deleted: its old instances go, and so do any put
		// earlier in this same write.
		v.service(inst.Service)[r.ctr.ID] = nil
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
		row := &serviceRow{Name: name, Index: index}
		var kept []*Instance
		if raw, ok := txn.Get(k); ok {
			old := raw.(*serviceRow)
			kept = make([]*Instance, 0, len(old.Instances))
			for _, inst := range old.Instances {
				if _, replaced := sc[inst.ContainerID]; !replaced {
					kept = append(kept, inst)
				}
			}
		}
		row.Instances = mergeByID(kept, sc)
		for _, inst := range row.Instances {
			if inst.Passing {
				row.Passing++
			}
		}
		txn.Insert(slices.Clone(k), row) // the tree keeps the key
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

// mergeByID returns kept (sorted by id) and the instances of sc in one
// list sorted by id. Only the new ones are sorted: a change of one
// container in a service of thousands sorts one instance, not thousands.
func mergeByID(kept []*Instance, sc serviceChange) []*Instance {
	var added []*Instance
	for _, insts := range sc {
		added = append(added, insts...)
	}
	byID := func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) }
	slices.SortFunc(added, byID)
	out := make([]*Instance, 0, len(kept)+len(added))
	for len(kept) > 0 && len(added) > 0 {
		if byID(kept[0], added[0]) <= 0 {
			out, kept = append(out, kept[0]), kept[1:]
		} else {
			out, added = append(out, added[0]), added[1:]
		}
	}
	return append(append(out, kept...), added...)
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
