package catalog

import (
	"cmp"
	"net/netip"
	"slices"

	iradix "github.com/hashicorp/go-immutable-radix"
)

// The view is what DNS asks of the catalog, derived from the container
// rows at each write: every service with its instances, the tags that
// passing instances carry, and the networks the containers are on. It is
// an immutable radix tree, published with the catalog index in one atomic
// store after the write's memdb commit, so a lookup is a pointer load and
// a tree walk: no transaction, no iterator, no allocation (a memdb read
// allocates a dozen times). Its leaves' watch channels serve the HTTP
// API's long polls.
//
// Keys are one kind byte and the name.
const (
	kindService = 's'
	kindTag     = 't'
	kindNetwork = 'n'
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

// countRow counts what keeps a tag or a network in the view: the passing
// instances that carry the tag, the addresses on the network.
type countRow struct {
	n       int
	network netip.Prefix // for network rows
}

// viewKey builds a key in buf when it fits, so that lookups do not allocate.
func viewKey(buf []byte, kind byte, name string) []byte {
	return append(append(buf[:0], kind), name...)
}

func networkKey(buf []byte, p netip.Prefix) []byte {
	a := p.Addr().As16()
	return append(append(append(buf[:0], kindNetwork), a[:]...), byte(p.Bits()))
}

// viewChange gathers what one write does to the view, applied once at the
// end, so that a resync of 10,000 containers rebuilds each service once
// and not once per container.
type viewChange struct {
	services map[string]serviceChange
	tags     map[string]int
	networks map[netip.Prefix]int
}

// serviceChange replaces, in one service, the instances of some
// containers: by container id, the new instances (none, for a container
// that left the service). The old instances of every container named here
// go.
type serviceChange map[string][]*Instance

func (v *viewChange) empty() bool {
	return len(v.services) == 0 && len(v.tags) == 0 && len(v.networks) == 0
}

func (v *viewChange) service(name string) serviceChange {
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
func (v *viewChange) replaceRow(old, new *containerRow, instances bool) {
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
func (v *viewChange) dropInstances(r *containerRow) {
	for _, inst := range r.insts {
		// Emptied, not deleted: its old instances go, and so do any put
		// earlier in this same write.
		v.service(inst.Service)[r.ctr.ID] = nil
		v.countTags(inst, -1)
	}
}

func (v *viewChange) countTags(inst *Instance, d int) {
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

func (v *viewChange) countNetworks(c *Container, d int) {
	for _, a := range c.Addrs {
		if !a.Prefix.IsValid() || a.Prefix.Bits() == a.Prefix.Addr().BitLen() {
			continue
		}
		if v.networks == nil {
			v.networks = map[netip.Prefix]int{}
		}
		v.networks[a.Prefix.Masked()] += d
	}
}

// apply returns the view with the change made, at index, and the
// transaction whose Notify wakes the watchers of what changed.
func (v *viewChange) apply(view *iradix.Tree, index uint64) (*iradix.Tree, *iradix.Txn) {
	txn := view.Txn()
	txn.TrackMutate(true)
	var key [1 + MaxLabelLen + 1]byte
	for name, sc := range v.services {
		k := viewKey(key[:], kindService, name)
		row := &serviceRow{Name: name, Index: index}
		if raw, ok := txn.Get(k); ok {
			old := raw.(*serviceRow)
			row.Instances = make([]*Instance, 0, len(old.Instances)+len(sc))
			for _, inst := range old.Instances {
				if _, replaced := sc[inst.ContainerID]; !replaced {
					row.Instances = append(row.Instances, inst)
				}
			}
		}
		for _, insts := range sc {
			row.Instances = append(row.Instances, insts...)
		}
		slices.SortFunc(row.Instances, func(a, b *Instance) int { return cmp.Compare(a.ID, b.ID) })
		for _, inst := range row.Instances {
			if inst.Passing {
				row.Passing++
			}
		}
		txn.Insert(slices.Clone(k), row) // the tree keeps the key
	}
	for tag, d := range v.tags {
		if d != 0 {
			adjustCount(txn, viewKey(key[:], kindTag, tag), d, netip.Prefix{})
		}
	}
	for p, d := range v.networks {
		if d != 0 {
			adjustCount(txn, networkKey(key[:], p), d, p)
		}
	}
	return txn.CommitOnly(), txn
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
