package catalog

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"
)

// Table and index names. No caller outside this package sees them.
const (
	tableInstances  = "instances"
	tableContainers = "containers"
	tableServices   = "services"
	tableIndex      = "index"

	indexID        = "id"
	indexService   = "service"
	indexContainer = "container"
	indexOwner     = "owner"
	indexTag       = "tag"
	indexExpires   = "expires"
	indexName      = "name"
	indexAddr      = "addr"
)

// keyCatalog is the row of tableIndex that holds the catalog index.
const keyCatalog = "catalog"

// indexEntry is a row of tableIndex.
type indexEntry struct {
	Key   string
	Value uint64
}

// serviceEntry is a row of tableServices: per-service counts and the index
// of the last change to the service's instances, for long polls.
type serviceEntry struct {
	Name      string
	Instances int
	Passing   int
	Index     uint64
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableInstances: {
			Name: tableInstances,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:        {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				indexService:   {Name: indexService, Indexer: &memdb.StringFieldIndex{Field: "Service"}},
				indexContainer: {Name: indexContainer, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "ContainerID"}},
				indexTag:       {Name: indexTag, AllowMissing: true, Indexer: &memdb.StringSliceFieldIndex{Field: "Tags"}},
				indexExpires:   {Name: indexExpires, AllowMissing: true, Indexer: expiresIndexer{}},
			},
		},
		tableContainers: {
			Name: tableContainers,
			Indexes: map[string]*memdb.IndexSchema{
				indexID:    {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
				indexName:  {Name: indexName, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				indexAddr:  {Name: indexAddr, AllowMissing: true, Indexer: addrIndexer{}},
				indexOwner: {Name: indexOwner, Indexer: ownerIndexer[*Container](func(c *Container) (Source, string) { return c.Source, c.Node })},
			},
		},
		tableServices: {
			Name: tableServices,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			},
		},
		tableIndex: {
			Name: tableIndex,
			Indexes: map[string]*memdb.IndexSchema{
				indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			},
		},
	}}
}

// ownerIndexer indexes objects by (source, node): what one resync replaces.
type ownerIndexer[T any] func(T) (Source, string)

func ownerKey(src Source, node string) []byte {
	return []byte(string(src) + "\x00" + node + "\x00")
}

func (f ownerIndexer[T]) FromObject(obj any) (bool, []byte, error) {
	o, ok := obj.(T)
	if !ok {
		return false, nil, fmt.Errorf("owner index: unexpected %T", obj)
	}
	src, node := f(o)
	return true, ownerKey(src, node), nil
}

func (f ownerIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("owner index: want (Source, node), got %d args", len(args))
	}
	src, ok1 := args[0].(Source)
	node, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("owner index: want (Source, string), got (%T, %T)", args[0], args[1])
	}
	return ownerKey(src, node), nil
}

// addrIndexer indexes containers by each of their network addresses, for
// PTR lookups.
type addrIndexer struct{}

func (addrIndexer) FromObject(obj any) (bool, [][]byte, error) {
	c, ok := obj.(*Container)
	if !ok {
		return false, nil, fmt.Errorf("addr index: unexpected %T", obj)
	}
	keys := make([][]byte, 0, len(c.Addrs))
	for _, a := range c.Addrs {
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

// expiresIndexer orders instances that expire by their expiry time, so the
// reaper visits only those that are due.
type expiresIndexer struct{}

func (expiresIndexer) FromObject(obj any) (bool, []byte, error) {
	i, ok := obj.(*Instance)
	if !ok {
		return false, nil, fmt.Errorf("expires index: unexpected %T", obj)
	}
	if i.Expires.IsZero() {
		return false, nil, nil
	}
	return true, timeKey(i.Expires), nil
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

func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}
