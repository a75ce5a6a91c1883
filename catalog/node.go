package catalog

import (
	"fmt"
	"net/netip"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// NodeRecords returns every record that node owns, whatever its source,
// and a channel closed when a later write changes them. It walks every
// row: the cluster calls it when its own node's records changed, to spread
// them; other nodes' changes do not wake it.
func (c *Catalog) NodeRecords(node string) ([]ContainerRecord, <-chan struct{}, error) {
	// The channel first: a write committed after it closes it, one
	// committed before is in the rows read below.
	changed := c.nodeWatch(node)
	it, err := c.db.Txn(false).Get(tableContainers, indexID)
	if err != nil {
		return nil, nil, fmt.Errorf("read records of node %s: %w", node, err)
	}
	var out []ContainerRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*containerRow); r.ctr.Node == node {
			out = append(out, ContainerRecord{Container: r.ctr, Instances: r.insts})
		}
	}
	return out, changed, nil
}

// nodeWatches are the channels NodeRecords handed out, by node.
type nodeWatches struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (c *Catalog) nodeWatch(node string) <-chan struct{} {
	c.watches.mu.Lock()
	defer c.watches.mu.Unlock()
	if c.watches.ch == nil {
		c.watches.ch = make(map[string]chan struct{})
	}
	ch := c.watches.ch[node]
	if ch == nil {
		ch = make(chan struct{})
		c.watches.ch[node] = ch
	}
	return ch
}

// notifyNodes closes the watches of the nodes a write changed.
func (c *Catalog) notifyNodes(nodes map[string]bool) {
	if len(nodes) == 0 {
		return
	}
	c.watches.mu.Lock()
	defer c.watches.mu.Unlock()
	for n := range nodes {
		if ch := c.watches.ch[n]; ch != nil {
			close(ch)
			delete(c.watches.ch, n)
		}
	}
}

// Node is a svcdns node of the cluster, live as its gossip last said:
// <name>.node.<zone> answers its address. Objects returned by reads are
// shared and must not be modified.
type Node struct {
	Name string // a lower-case DNS label
	Addr netip.Addr
}

const tableNodes = "nodes"

func nodesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableNodes,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// Node returns the live node name, or nil.
func (c *Catalog) Node(name string) (*Node, error) {
	raw, err := c.db.Txn(false).First(tableNodes, indexID, name)
	if err != nil {
		return nil, fmt.Errorf("read node %s: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	return raw.(*Node), nil
}

func (w *writeTxn) putNode(n *Node) error {
	if !ValidLabel(n.Name) || !n.Addr.IsValid() {
		return fmt.Errorf("%w node %q: want a lower-case DNS label and an address", ErrInvalid, n.Name)
	}
	raw, err := w.tx.First(tableNodes, indexID, n.Name)
	if err != nil {
		return fmt.Errorf("read node %s: %w", n.Name, err)
	}
	if raw != nil && *raw.(*Node) == *n {
		return nil
	}
	if err := w.tx.Insert(tableNodes, n); err != nil {
		return fmt.Errorf("write node %s: %w", n.Name, err)
	}
	w.changed = true
	return nil
}

func (w *writeTxn) deleteNode(name string) error {
	raw, err := w.tx.First(tableNodes, indexID, name)
	if err != nil || raw == nil {
		return err
	}
	if err := w.tx.Delete(tableNodes, raw); err != nil {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	w.changed = true
	return nil
}

// Nodes returns the live nodes, sorted by name.
func (c *Catalog) Nodes() ([]*Node, error) {
	it, err := c.db.Txn(false).Get(tableNodes, indexID)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	var out []*Node
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*Node))
	}
	return out, nil
}
