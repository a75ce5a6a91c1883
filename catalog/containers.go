package catalog

import (
	"fmt"
	"net/netip"

	memdb "github.com/hashicorp/go-memdb"
)

// AllContainers returns every container in the catalog, ordered by id,
// and the catalog index it was read at.
func (c *Catalog) AllContainers() (uint64, []*Container, error) {
	idx := c.Index() // before the read: the rows are at least as new
	out, err := containersOf(c.db.Txn(false), indexID, nil)
	return idx, out, err
}

// ContainersByTarget returns the containers whose Target is target
// (lower-case), for <target>.container.<zone> names. Writers keep targets
// unique among what they own; two writers may still share one.
func (c *Catalog) ContainersByTarget(target string) ([]*Container, error) {
	if target == "" {
		return nil, nil
	}
	return containersOf(c.db.Txn(false), indexTarget, nil, target)
}

// ContainersByAddr returns the containers that have addr on a network.
func (c *Catalog) ContainersByAddr(addr netip.Addr) ([]*Container, error) {
	return containersOf(c.db.Txn(false), indexAddr, nil, addr)
}

// Container returns one container by id with its instances, or
// ErrNotFound. The objects are the catalog's: read-only.
func (c *Catalog) Container(id string) (ContainerRecord, error) {
	raw, err := c.db.Txn(false).First(tableContainers, indexID, id)
	if err != nil {
		return ContainerRecord{}, fmt.Errorf("read container %s: %w", id, err)
	}
	if raw == nil {
		return ContainerRecord{}, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	r := raw.(*containerRow)
	return ContainerRecord{Container: r.ctr, Instances: r.insts}, nil
}

// Containers returns every container that src registered on node. It
// walks every container: it serves tests and tools, not a hot path.
func (c *Catalog) Containers(src Source, node string) ([]*Container, error) {
	return containersOf(c.db.Txn(false), indexID, ownedBy(src, node))
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
