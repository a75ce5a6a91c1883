package catalog

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	iradix "github.com/hashicorp/go-immutable-radix"
	memdb "github.com/hashicorp/go-memdb"
)

// Catalog is the registry. It is safe for concurrent use: reads see a
// consistent snapshot and never block writes; writes are serialised.
//
// The files of the package split it by role: reads (read.go), container
// reads (containers.go), writes (write.go), the expiry of API instances
// (expiry.go), the lookup tree DNS reads (tree.go), the memdb schema
// (schema.go).
type Catalog struct {
	// writeMu serialises writes from memdb's transaction to the published
	// snapshot, so that the next write builds on the lookup tree this one
	// made.
	writeMu sync.Mutex
	db      *memdb.MemDB
	// snap is the catalog index with the lookup tree at that index,
	// published together after each write's memdb commit. The index may
	// lag the rows by one commit, never lead them: a DNS answer cache
	// labelled with it is at worst rebuilt once more.
	snap atomic.Pointer[snapshot]
	// watches wake the cluster when one node's records change.
	watches nodeWatches
}

// snapshot is what each write publishes.
type snapshot struct {
	index uint64
	tree  lookupTree
	// nets are this host's Docker networks by id (ReplaceNetworks);
	// replaced whole, never modified.
	nets map[string]*Network
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
	// A snapshot of the database, not the database: memdb tracks the
	// radix nodes a write of the primary mutates, to close their watch
	// channels at commit, and with more than 8,192 of them (any large
	// batch) walks both trees to find them. Nothing watches the rows (the
	// lookup tree's channels serve every watch, see lookupTree), and a
	// snapshot's writes track nothing.
	c := &Catalog{db: db.Snapshot()}
	c.snap.Store(&snapshot{tree: lookupTree{iradix.New()}, next: make(chan struct{})})
	return c
}

// change is what a write did to one container row.
type change int

const (
	changeNone change = iota
	changeAdded
	changeUpdated
)

// writeTxn is one write: the memdb transaction, the index it will commit
// at, and what it does to the lookup tree.
//
// A write reads container rows through row, never through tx: memdb
// answers a read of an index the transaction has changed from a clone of
// that index's radix transaction, and cloning drops the cache of nodes the
// transaction already copied, so that the next insert copies its whole
// path again (with a new watch channel per node). With a read between
// each two inserts, a node joining 99 others (99,000 rows in one batch)
// allocated twice as often and took a third more CPU.
type writeTxn struct {
	tx      *memdb.Txn
	index   uint64
	changed bool
	tree    treeChange
	// base reads the rows as they were when the write began; rows holds
	// those the write has put since (nil: deleted).
	base *memdb.Txn
	rows map[string]*containerRow
	// apiRows says whether the rows may hold an API instance's row:
	// unknown until asked (apiRowsKnown), then true once one is put.
	// Without any, a container's instances need no look for their ids
	// in API rows, which halves a batch's reads.
	apiRows, apiRowsKnown bool
	// nodes are the nodes whose records the write changed (see
	// NodeRecords).
	nodes map[string]bool
	// nets, when not nil, replaces the snapshot's networks.
	nets map[string]*Network
}

// row returns the container row id as this write has left it, nil when
// there is none.
func (w *writeTxn) row(id string) (*containerRow, error) {
	if r, ok := w.rows[id]; ok {
		return r, nil
	}
	return txnRows{w.base}.row(id)
}

// replaced returns the row that r replaces, nil when there is none: row
// with r's key, which a lookup by id would make again.
func (w *writeTxn) replaced(r *containerRow) (*containerRow, error) {
	if old, ok := w.rows[r.ctr.ID]; ok {
		return old, nil
	}
	raw, err := w.base.First(tableContainers, indexID, r)
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", r.ctr.ID, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*containerRow), nil
}

// expect sizes the write's record of the rows it changes for n rows, so
// that a batch of 99,000 does not grow it (and rehash it) step by step.
func (w *writeTxn) expect(n int) {
	if w.rows == nil && n > 8 {
		w.rows = make(map[string]*containerRow, n)
	}
}

// wrote records that the write put row as id (nil: deleted it).
func (w *writeTxn) wrote(id string, row *containerRow) {
	if w.rows == nil {
		w.rows = make(map[string]*containerRow)
	}
	w.rows[id] = row
	if row != nil && strings.HasPrefix(id, apiContainerPrefix) {
		w.apiRows = true
	}
}

// mayHoldAPIRows reports whether an API instance's row may be among the
// rows; false is sure, true may be wrong.
func (w *writeTxn) mayHoldAPIRows() bool {
	if !w.apiRowsKnown {
		raw, err := w.base.First(tableContainers, indexID+"_prefix", apiContainerPrefix)
		w.apiRows = w.apiRows || raw != nil || err != nil
		w.apiRowsKnown = true
	}
	return w.apiRows
}

func (w *writeTxn) touch(node string) {
	if w.nodes == nil {
		w.nodes = make(map[string]bool, 1)
	}
	w.nodes[node] = true
}

// write runs fn in one write transaction and commits it, raising the index,
// only if fn changed something.
func (c *Catalog) write(fn func(*writeTxn) error) (uint64, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	prev := c.snap.Load()
	tx := c.db.Txn(true)
	defer tx.Abort()
	// Writes are serialised by writeMu: a read transaction begun now
	// sees what tx begins from.
	w := &writeTxn{tx: tx, base: c.db.Txn(false), index: prev.index + 1}
	if err := fn(w); err != nil {
		return prev.index, err
	}
	if !w.changed {
		return prev.index, nil
	}
	tx.Commit()
	// The rows first, then the index and tree together: nothing labelled
	// with the new index (the DNS answer cache) can have read older rows,
	// and no service's index is ever above the catalog's.
	next := &snapshot{index: w.index, tree: prev.tree, nets: prev.nets, next: make(chan struct{})}
	if w.nets != nil {
		next.nets = w.nets
	}
	var notify *iradix.Txn
	if !w.tree.empty() {
		next.tree, notify = w.tree.apply(prev.tree, w.index)
	}
	c.snap.Store(next)
	close(prev.next)
	if notify != nil {
		notify.Notify()
	}
	c.notifyNodes(w.nodes)
	return w.index, nil
}
