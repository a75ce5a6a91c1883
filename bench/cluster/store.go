package main

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/cluster"
	"github.com/svcdns/svcdns/internal/testutil"
)

// countStore is the store of most benchmark nodes: 100 nodes × 100,000
// instances each would be 10 M catalog rows in one process, which does not
// fit in memory. It serves the node's own records as the catalog would
// (NodeRecords and a channel closed on each change) and, of its peers'
// records, keeps only which container ids each owner has here.
type countStore struct {
	node string
	counter

	mu      sync.Mutex
	own     []catalog.ContainerRecord
	changed chan struct{}
}

var _ cluster.Store = (*countStore)(nil)

func newCountStore(node string, own []catalog.ContainerRecord) *countStore {
	return &countStore{node: node, own: own, changed: make(chan struct{}), counter: newCounter()}
}

// NodeRecords implements cluster.Store.
func (s *countStore) NodeRecords(node string) ([]catalog.ContainerRecord, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if node != s.node {
		return nil, nil, fmt.Errorf("count store of %s asked for %s's records", s.node, node)
	}
	return s.own, s.changed, nil
}

// Apply implements cluster.Store: it counts containers per owner.
func (s *countStore) Apply(changes []catalog.Change) (uint64, []error) {
	s.count(changes, nil)
	return 0, nil
}

// catalogStore is a real catalog that also counts the peers' containers
// each write stored, so that the benchmark can tell what the catalog
// holds without walking it (a walk of 100,000 containers every 10 ms
// would take the CPU the nodes measured need).
type catalogStore struct {
	*catalog.Catalog
	counter
}

// Apply implements cluster.Store: the catalog's write, then the count of
// what it stored (a refused change is not counted).
func (s *catalogStore) Apply(changes []catalog.Change) (uint64, []error) {
	idx, errs := s.Catalog.Apply(changes)
	s.count(changes, errs)
	return idx, errs
}

// counter counts the containers of each owner a store holds. It keys
// them by a hash of their id and owners by number, so that it holds no
// string and no pointer per container: 100 count stores of 99,000
// containers would otherwise add millions of objects for the one
// garbage collector of every node to mark, which a real node does not
// carry. A collision of two ids' 64-bit hashes would miscount by one.
type counter struct {
	mu     *sync.Mutex
	seed   maphash.Seed
	held   map[uint64]int32 // hash of a container id -> its owner's number
	owners map[string]int32 // owner -> its number
	counts *[]*atomic.Int64 // by owner number: containers held
	total  *atomic.Int64    // containers of peers held
}

func newCounter() counter {
	return counter{mu: new(sync.Mutex), seed: maphash.MakeSeed(), held: map[uint64]int32{}, owners: map[string]int32{},
		counts: new([]*atomic.Int64), total: new(atomic.Int64)}
}

// count counts the changes a store made: those without an error in errs.
func (s counter) count(changes []catalog.Change, errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ch := range changes {
		if errs != nil && errs[k] != nil {
			continue
		}
		if ch.Put != nil {
			id, owner := maphash.String(s.seed, ch.Put.Container.ID), s.ownerNum(ch.Put.Container.Node)
			if prev, ok := s.held[id]; ok {
				if prev == owner {
					continue
				}
				(*s.counts)[prev].Add(-1)
				s.total.Add(-1)
			}
			s.held[id] = owner
			(*s.counts)[owner].Add(1)
			s.total.Add(1)
			continue
		}
		id := maphash.String(s.seed, ch.Delete)
		if owner, ok := s.held[id]; ok {
			delete(s.held, id)
			(*s.counts)[owner].Add(-1)
			s.total.Add(-1)
		}
	}
}

// ownerNum is owner's number, given at its first container; s.mu is held.
func (s counter) ownerNum(owner string) int32 {
	n, ok := s.owners[owner]
	if !ok {
		n = int32(len(*s.counts))
		s.owners[owner] = n
		*s.counts = append(*s.counts, new(atomic.Int64))
	}
	return n
}

// Held is how many containers of owner the store holds.
func (s counter) Held(owner string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.owners[owner]
	if !ok {
		return 0
	}
	return (*s.counts)[n].Load()
}

// Change replaces the node's own record i with one on another host port,
// as a restarted container would be, and tells the cluster.
func (s *countStore) Change(i int, port uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	own := make([]catalog.ContainerRecord, len(s.own))
	copy(own, s.own)
	own[i] = withHostPort(own[i], port)
	s.own = own
	close(s.changed)
	s.changed = make(chan struct{})
}

// ownRecords are the instances node number n owns: one container each,
// with one published TCP port, spread over 100 services that every node
// runs (app0…app99), as a fleet of hosts does; no name the DNS
// benchmark asks for (svc0…svc999, books-ms).
func ownRecords(node string, n, count int) []catalog.ContainerRecord {
	recs := make([]catalog.ContainerRecord, count)
	hostIP := netip.AddrFrom4([4]byte{10, 200, byte(n >> 8), byte(n)})
	for i := range recs {
		id := fmt.Sprintf("c%05d", i)
		ip := netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)})
		ctr := testutil.Container(node, id, id, netip.PrefixFrom(ip, 16).String())
		ctr.HostIP = hostIP
		inst := testutil.Instance(ctr, fmt.Sprintf("app%d", i%100), 8080, func(in *catalog.Instance) {
			in.HostIP, in.HostPort = hostIP, uint16(20000+i)
		})
		recs[i] = catalog.ContainerRecord{Container: ctr, Instances: []*catalog.Instance{inst}}
	}
	return recs
}

func withHostPort(r catalog.ContainerRecord, port uint16) catalog.ContainerRecord {
	inst := *r.Instances[0]
	inst.HostPort = port
	return catalog.ContainerRecord{Container: r.Container, Instances: []*catalog.Instance{&inst}}
}
