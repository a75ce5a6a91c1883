package catalog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Table and index names. No caller outside this package sees them.
//
// The memdb database holds one row per container, with the container's
// instances inside it, and as few indexes as the reads need: every index
// entry is a radix-tree leaf and node with a watch channel each, a few
// hundred bytes per entry and container. What DNS asks for by service, tag
// or network is kept in the lookup tree (tree.go) instead.
const (
	tableContainers = "containers"

	indexID      = "id"
	indexTarget  = "target"
	indexAddr    = "addr"
	indexExpires = "expires"
)

// containerRow is a row of tableContainers: a container and exactly the
// instances it provides. Rows are replaced whole, never modified.
type containerRow struct {
	ctr   *Container
	insts []*Instance
	// key is the row's key in the id index, made once: memdb asks for it
	// twice at each insert.
	key []byte
}

func newRow(ctr *Container, insts []*Instance) *containerRow {
	return &containerRow{ctr: ctr, insts: insts, key: idKey(ctr.ID)}
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableContainers: {
			Name: tableContainers,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:      {Name: indexID, Unique: true, Indexer: idIndexer{}},
				indexTarget:  {Name: indexTarget, AllowMissing: true, Indexer: targetIndexer{}},
				indexAddr:    {Name: indexAddr, AllowMissing: true, Indexer: addrIndexer{}},
				indexExpires: {Name: indexExpires, AllowMissing: true, Indexer: expiresIndexer{}},
			},
		},
		tableNodes: nodesTable(),
	}}
}

// idIndexer indexes container rows by id, without the reflection of
// memdb.StringFieldIndex (a third of a write's time). Keys end in a NUL, so
// that "web" does not find "web2". A lookup takes an id, or a row (see
// writeTxn.replaced), whose key is made.
type idIndexer struct{}

func (idIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*containerRow)
	if !ok {
		return false, nil, fmt.Errorf("id index: unexpected %T", obj)
	}
	return true, r.key, nil
}

func (idIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) == 1 {
		if r, ok := args[0].(*containerRow); ok {
			return r.key, nil
		}
	}
	s, err := oneString(args)
	return idKey(s), err
}

func (idIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	s, err := oneString(args)
	return []byte(s), err
}

func idKey(id string) []byte { return append([]byte(id), 0) }

func oneString(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("container index: want one string, got %d args", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("container index: want a string, got %T", args[0])
	}
	return s, nil
}

// targetIndexer indexes container rows by target, its labels in reverse
// order: a peer's targets end in the peer's name (<target>.<owner>), so
// that its rows make one subtree of the index, and a write of one peer's
// records copies that subtree's nodes, not nodes shared with every other
// peer. Keys end in a NUL, as the id index's do; memdb appends the row's id
// (the index is not unique), for which the key leaves room.
type targetIndexer struct{}

func (targetIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*containerRow)
	if !ok {
		return false, nil, fmt.Errorf("target index: unexpected %T", obj)
	}
	if r.ctr.Target == "" {
		return false, nil, nil
	}
	return true, targetKey(r.ctr.Target, len(r.ctr.ID)+1), nil
}

func (targetIndexer) FromArgs(args ...any) ([]byte, error) {
	s, err := oneString(args)
	if err != nil {
		return nil, err
	}
	return targetKey(s, 0), nil
}

// targetKey is target with its labels in reverse order, a NUL after, and
// room for spare more bytes.
func targetKey(target string, spare int) []byte {
	b := make([]byte, 0, len(target)+1+spare)
	for {
		i := strings.LastIndexByte(target, '.')
		b = append(b, target[i+1:]...)
		if i < 0 {
			return append(b, 0)
		}
		b = append(b, '.')
		target = target[:i]
	}
}

// addrIndexer indexes containers by each of their network addresses, for
// PTR lookups.
type addrIndexer struct{}

func (addrIndexer) FromObject(obj any) (bool, [][]byte, error) {
	r, ok := obj.(*containerRow)
	if !ok {
		return false, nil, fmt.Errorf("addr index: unexpected %T", obj)
	}
	keys := make([][]byte, 0, len(r.ctr.Addrs))
	for _, a := range r.ctr.Addrs {
		if a.Prefix.IsValid() {
			keys = append(keys, addrKey(a.Addr()))
		}
	}
	return len(keys) > 0, keys, nil
}

func (addrIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("addr index: want one netip.Addr, got %d args", len(args))
	}
	a, ok := args[0].(netip.Addr)
	if !ok {
		return nil, fmt.Errorf("addr index: want netip.Addr, got %T", args[0])
	}
	return addrKey(a), nil
}

func addrKey(a netip.Addr) []byte {
	b := a.Unmap().As16()
	return b[:]
}

// expiresIndexer orders the containers that hold an expiring instance by
// the earliest expiry among them, so the reaper visits only those due.
type expiresIndexer struct{}

func (expiresIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*containerRow)
	if !ok {
		return false, nil, fmt.Errorf("expires index: unexpected %T", obj)
	}
	t := r.firstExpiry()
	if t.IsZero() {
		return false, nil, nil
	}
	return true, timeKey(t), nil
}

func (expiresIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("expires index: want one time.Time, got %d args", len(args))
	}
	t, ok := args[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("expires index: want time.Time, got %T", args[0])
	}
	return timeKey(t), nil
}

// firstExpiry is the earliest expiry of the row's instances, zero when
// none expires.
func (r *containerRow) firstExpiry() time.Time {
	var first time.Time
	for _, inst := range r.insts {
		if !inst.Expires.IsZero() && (first.IsZero() || inst.Expires.Before(first)) {
			first = inst.Expires
		}
	}
	return first
}

func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}
