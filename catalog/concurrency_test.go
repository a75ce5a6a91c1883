package catalog_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// nodeRecords is a full list of a node's n containers; gen flips every
// instance's port, so each ReplaceNode with a new gen changes them all.
func nodeRecords(node string, n, gen int) []catalog.ContainerRecord {
	out := make([]catalog.ContainerRecord, 0, n)
	for i := range n {
		c := ctr(node, fmt.Sprintf("%s-c%d", node, i), fmt.Sprintf("%s-%d", node, i), "172.18.0.5/16")
		out = append(out, rec(c, inst(c, "books-ms", 80, func(i *catalog.Instance) { i.Port = uint16(80 + gen%2) })))
	}
	return out
}

// Index() is what a DNS answer cache is labelled with: once a write has
// returned index N, Index() must never again read below N, and after the
// last write it must equal the committed index. This is the stress form,
// with free-running writers on one P; whether it catches a regression
// depends on the scheduler (it does on a loaded machine).
// TestIndexNotBehindAfterOverlappingWrites forces the interleaving.
func TestIndexNeverGoesBackwards(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const writers, writes, containers = 4, 80, 10
	cat := catalog.New()
	var (
		maxReturned atomic.Uint64 // the highest index any write returned
		failed      atomic.Bool
		wg          sync.WaitGroup
	)
	report := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("node-%d", w)
			for i := 0; i < writes && !failed.Load(); i++ {
				// Load the highest returned index first: Index() read
				// after it must not be lower.
				if m := maxReturned.Load(); cat.Index() < m {
					report("Index() = %d after a write had returned %d: the index went backwards", cat.Index(), m)
				}
				res, err := cat.ReplaceNode(catalog.SourceDocker, node, nodeRecords(node, containers, i))
				if err != nil {
					report("ReplaceNode: %v", err)
					return
				}
				for {
					m := maxReturned.Load()
					if res.Index <= m || maxReturned.CompareAndSwap(m, res.Index) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if st := stats(t, cat); cat.Index() != st.Index {
		t.Errorf("after the last write Index() = %d, committed index %d", cat.Index(), st.Index)
	}
	if st := stats(t, cat); !failed.Load() && st.Index != writers*writes {
		t.Errorf("committed index %d after %d changing writes", st.Index, writers*writes)
	}
}

// Writers of every kind race with readers under -race; whatever the
// interleaving, each read is a consistent snapshot and the final state is
// consistent: every instance's container exists with the same owner, and
// the service counts are the instance counts.
func TestConcurrentReadersAndWriters(t *testing.T) {
	const rounds = 200
	services := []string{"books-ms", "orders", "auth"}
	cat := catalog.New()
	var (
		writers, readers sync.WaitGroup
		stop             atomic.Bool
	)

	// Docker writers, one per node: PutContainer, DeleteContainer and a
	// ReplaceNode now and then.
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			node := fmt.Sprintf("node-%d", w)
			r := rand.New(rand.NewPCG(uint64(w), 1))
			record := func() catalog.ContainerRecord {
				c := ctr(node, fmt.Sprintf("%s-c%d", node, r.IntN(8)), "", "172.18.0.5/16")
				c.Passing = r.IntN(4) > 0
				var insts []*catalog.Instance
				for p := range r.IntN(3) {
					insts = append(insts, inst(c, services[r.IntN(len(services))], uint16(80+p)))
				}
				return rec(c, insts...)
			}
			for range rounds {
				var err error
				switch n := r.IntN(10); {
				case n < 6:
					x := record()
					_, err = cat.PutContainer(x.Container, x.Instances)
				case n < 9:
					_, err = cat.DeleteContainer(fmt.Sprintf("%s-c%d", node, r.IntN(8)))
				default:
					recs := map[string]catalog.ContainerRecord{}
					for range r.IntN(5) {
						x := record()
						recs[x.Container.ID] = x
					}
					var list []catalog.ContainerRecord
					for _, x := range recs {
						list = append(list, x)
					}
					_, err = cat.ReplaceNode(catalog.SourceDocker, node, list)
				}
				if err != nil {
					t.Errorf("%s: %v", node, err)
					return
				}
			}
		}()
	}
	// An API writer: register, refresh, deregister, expire.
	writers.Add(1)
	go func() {
		defer writers.Done()
		r := rand.New(rand.NewPCG(99, 1))
		for range rounds {
			id := fmt.Sprintf("ext-%d", r.IntN(6))
			switch r.IntN(4) {
			case 0, 1:
				i := apiInst(id, services[r.IntN(len(services))], uint16(r.IntN(3)))
				if r.IntN(2) == 0 {
					expires(time.Unix(1, 0))(i) // due at the next expiry pass
				}
				if _, err := cat.RegisterInstance(i); err != nil {
					t.Errorf("register %s: %v", id, err)
					return
				}
			case 2:
				if _, err := cat.DeregisterInstance(id); err != nil && !errors.Is(err, catalog.ErrNotFound) {
					t.Errorf("deregister %s: %v", id, err)
					return
				}
			case 3:
				if _, _, err := cat.ExpireInstances(time.Now()); err != nil {
					t.Errorf("expire: %v", err)
					return
				}
			}
		}
	}()
	// Readers: each Service read is one snapshot of one service.
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !stop.Load() {
				for _, svc := range services {
					idx, insts, err := cat.Service(nil, catalog.ServiceQuery{Service: svc, PassingOnly: true})
					if err != nil {
						t.Errorf("Service(%s): %v", svc, err)
						return
					}
					seen := map[string]bool{}
					for _, i := range insts {
						if i.Service != svc || !i.Passing || seen[i.ID] {
							t.Errorf("Service(%s) returned %+v", svc, i)
						}
						seen[i.ID] = true
					}
					if st := stats(t, cat); idx > st.Index {
						t.Errorf("Service(%s) index %d above the later catalog index %d", svc, idx, st.Index)
					}
				}
				cat.Services(nil)
				_ = cat.Index()
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()

	checkConsistent(t, cat, services)
}

// checkConsistent checks the invariants a quiet catalog holds.
func checkConsistent(t *testing.T, cat *catalog.Catalog, services []string) {
	t.Helper()
	st := stats(t, cat)
	if cat.Index() != st.Index {
		t.Errorf("Index() = %d, committed index %d", cat.Index(), st.Index)
	}
	_, ctrs, err := cat.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != st.Containers {
		t.Errorf("%d containers, Stats says %d", len(ctrs), st.Containers)
	}
	byID := map[string]*catalog.Container{}
	for _, c := range ctrs {
		byID[c.ID] = c
	}
	type count struct{ all, passing int }
	counts := map[string]count{}
	total := 0
	for _, svc := range services {
		_, insts, err := cat.Service(nil, catalog.ServiceQuery{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range insts {
			c, ok := byID[i.ContainerID]
			switch {
			case !ok:
				t.Errorf("instance %s: container %s missing", i.ID, i.ContainerID)
			case c.Source != i.Source || c.Node != i.Node:
				t.Errorf("instance %s (%s/%s) in container %s of %s/%s", i.ID, i.Source, i.Node, c.ID, c.Source, c.Node)
			}
			n := counts[svc]
			n.all++
			if i.Passing {
				n.passing++
			}
			counts[svc] = n
			total++
		}
	}
	_, sums := cat.Services(nil)
	listed := 0
	for _, s := range sums {
		if c := counts[s.Name]; c.all != s.Instances || c.passing != s.Passing {
			t.Errorf("Services() says %+v, Service(%s) has %d, %d passing", s, s.Name, c.all, c.passing)
		}
		listed++
	}
	for svc, c := range counts {
		if c.all > 0 && !containsSummary(sums, svc) {
			t.Errorf("service %s has %d instances but is not listed", svc, c.all)
		}
	}
	if st.Instances != total || st.Services != listed {
		t.Errorf("Stats() = %+v, counted %d instances in %d services", st, total, listed)
	}
	// Every owner's instances are in services the catalog knows.
	for _, owner := range []struct {
		src  catalog.Source
		node string
	}{{catalog.SourceDocker, "node-0"}, {catalog.SourceDocker, "node-1"}, {catalog.SourceDocker, "node-2"}, {catalog.SourceAPI, ""}} {
		insts, err := cat.Instances(owner.src, owner.node)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range insts {
			if _, ok := counts[i.Service]; !ok {
				t.Errorf("instance %s of %s/%s: service %s not found by Service", i.ID, owner.src, owner.node, i.Service)
			}
		}
	}
}

func containsSummary(sums []catalog.ServiceSummary, name string) bool {
	for _, s := range sums {
		if s.Name == name {
			return true
		}
	}
	return false
}
