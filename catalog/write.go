package catalog

import (
	"errors"
	"fmt"
	"strings"
)

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
	// Node stores a live cluster node, DeleteNode removes one (the
	// cluster's writes); a change with either ignores Put and Delete.
	Node       *Node
	DeleteNode string
}

// Apply makes a batch of changes in one transaction. A watcher that finds
// several events waiting writes them with one Apply: the transaction's
// fixed cost (a radix path copied per index, the lookup tree, the index) is
// paid once, which is what lets the catalog keep up with event storms. A
// change that is refused leaves the others to apply: errs holds, at its
// position, why (ErrInvalid, ErrConflict), and is nil when every change
// applied.
func (c *Catalog) Apply(changes []Change) (idx uint64, errs []error) {
	idx, err := c.write(func(w *writeTxn) error {
		errs = nil
		w.expect(len(changes))
		for k, ch := range changes {
			var err error
			switch {
			case ch.Node != nil:
				err = w.putNode(ch.Node)
			case ch.DeleteNode != "":
				err = w.deleteNode(ch.DeleteNode)
			case ch.Put != nil:
				_, err = w.putRecord(*ch.Put)
			default:
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
		w.expect(len(records))
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

// InstanceID is the id of an instance of the container containerID: the
// container's id, a colon, and key, which tells the container's instances
// apart (the watcher's is "<port>/<proto>"). The catalog finds an instance
// by id through it (see Instance).
func InstanceID(containerID, key string) string { return containerID + ":" + key }

// APIContainerID is the id of the container row an instance registered
// through the API lives in, the row its SRV target resolves to.
func APIContainerID(instanceID string) string { return apiContainerPrefix + instanceID }

// RegisterInstance adds or replaces an instance registered through the API,
// together with the container row its SRV target resolves to.
func (c *Catalog) RegisterInstance(inst *Instance) (uint64, error) {
	return c.write(func(w *writeTxn) error {
		if inst.Source != SourceAPI {
			return fmt.Errorf("%w instance %s: source %q, want %q", ErrInvalid, inst.ID, inst.Source, SourceAPI)
		}
		// Before validation: an id that a container's instance holds is
		// taken, whatever else is wrong with the registration.
		found, err := findInstance(w, inst.ID)
		if err != nil {
			return err
		}
		if found != nil && found.Source != SourceAPI {
			return fmt.Errorf("%w: instance %s: id taken by a %s instance", ErrConflict, inst.ID, found.Source)
		}
		ctr := &Container{
			ID: inst.ContainerID, Name: inst.ContainerName, Target: inst.Target, Node: inst.Node, Source: SourceAPI,
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
		found, err := w.deleteContainer(APIContainerID(id))
		if err == nil && !found {
			err = fmt.Errorf("instance %s: %w", id, ErrNotFound)
		}
		return err
	})
}

// putRecord stores a container row: it checks the record, then that the
// writer owns what it replaces, then writes only what changed.
func (w *writeTxn) putRecord(r ContainerRecord) (change, error) {
	if err := r.validate(); err != nil {
		return changeNone, err
	}
	// A source only ever writes what it owns: checked for every row before
	// anything is written, so a refused record changes nothing.
	row := newRow(r.Container, r.Instances)
	old, err := w.checkOwner(row)
	if err != nil {
		return changeNone, err
	}
	d := classify(old, row)
	if !d.write {
		return changeNone, nil
	}
	if err := w.tx.Insert(tableContainers, row); err != nil {
		return changeNone, fmt.Errorf("write container %s: %w", row.ctr.ID, err)
	}
	w.wrote(row.ctr.ID, row)
	w.tree.replaceRow(old, row, d.answers)
	w.changed = true
	w.touch(row.ctr.Node)
	return d.counted, nil
}

// validate checks a record on its own: the container, each instance, and
// that the instances belong to the container and its owner.
func (r ContainerRecord) validate() error {
	ctr := r.Container
	if ctr == nil {
		return fmt.Errorf("%w record: no container", ErrInvalid)
	}
	if err := ctr.validate(); err != nil {
		return err
	}
	if len(r.Instances) > 1 {
		if _, dup := instancesByID(r.Instances); dup != "" {
			return fmt.Errorf("%w instance %s: twice in container %s", ErrInvalid, dup, ctr.ID)
		}
	}
	for _, inst := range r.Instances {
		if err := inst.validate(); err != nil {
			return err
		}
		if inst.ContainerID != ctr.ID {
			return fmt.Errorf("%w instance %s: container %q, want %q", ErrInvalid, inst.ID, inst.ContainerID, ctr.ID)
		}
		if inst.Target != ctr.Target {
			return fmt.Errorf("%w instance %s: target %q, its container's is %q", ErrInvalid, inst.ID, inst.Target, ctr.Target)
		}
		if inst.Source != ctr.Source || inst.Node != ctr.Node {
			return fmt.Errorf("%w instance %s: owned by %s/%s, its container by %s/%s", ErrInvalid, inst.ID, inst.Source, inst.Node, ctr.Source, ctr.Node)
		}
	}
	return nil
}

// checkOwner returns the row r replaces (nil: none), or ErrConflict when
// another source or node owns that row or one of r's instance ids.
func (w *writeTxn) checkOwner(r *containerRow) (*containerRow, error) {
	ctr := r.ctr
	old, err := w.replaced(r)
	if err != nil {
		return nil, err
	}
	if old != nil {
		if old.ctr.Source != ctr.Source || old.ctr.Node != ctr.Node {
			return nil, fmt.Errorf("%w: container %s is owned by %s/%s, not %s/%s", ErrConflict, ctr.ID, old.ctr.Source, old.ctr.Node, ctr.Source, ctr.Node)
		}
	}
	for _, inst := range r.insts {
		// The id is unique if the one other row it could live in (see
		// Instance.ID) does not hold it.
		var other string
		switch {
		case inst.Source == SourceAPI:
			other, _, _ = strings.Cut(inst.ID, ":")
		case !w.mayHoldAPIRows():
			continue
		default:
			other = APIContainerID(inst.ID)
		}
		found, err := instanceIn(w, other, inst.ID)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return nil, fmt.Errorf("%w: instance %s is owned by %s/%s, not %s/%s", ErrConflict, inst.ID, found.Source, found.Node, inst.Source, inst.Node)
		}
	}
	return old, nil
}

// rowDiff is how a new container row differs from the one it replaces.
type rowDiff struct {
	write   bool   // anything differs: the row is written
	answers bool   // the instances answer differently: the lookup tree changes
	counted change // what ReplaceNode counts
}

// classify compares a new row with the one it replaces (old, nil: none).
func classify(old, row *containerRow) rowDiff {
	if old == nil {
		return rowDiff{write: true, answers: true, counted: changeAdded}
	}
	same, renewed := sameInstances(old.insts, row.insts)
	sameCtr := sameContainer(old.ctr, row.ctr)
	switch {
	case same && sameCtr:
		return rowDiff{}
	case renewed && sameCtr:
		// A TTL heartbeat: only expiry times move. The lookup tree, and
		// with it every long poll on the service, is left alone; Service
		// reads expiry times from the row.
		return rowDiff{write: true}
	case same || renewed:
		return rowDiff{write: true, counted: changeUpdated}
	default:
		return rowDiff{write: true, answers: true, counted: changeUpdated}
	}
}

// deleteContainer removes a container row and its instances; it reports
// whether there was anything to remove.
func (w *writeTxn) deleteContainer(id string) (bool, error) {
	old, err := w.row(id)
	if err != nil || old == nil {
		return false, err
	}
	if err := w.tx.Delete(tableContainers, old); err != nil {
		return false, fmt.Errorf("delete container %s: %w", id, err)
	}
	w.wrote(id, nil)
	w.tree.replaceRow(old, nil, true)
	w.changed = true
	w.touch(old.ctr.Node)
	return true, nil
}
