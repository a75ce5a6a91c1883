package catalog_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The services, tags and networks that DNS reads are kept apart from the
// container rows and updated by difference at each write. After any
// sequence of writes they must be what the rows say: this test makes
// random writes of every kind (puts that move instances between services,
// change tags, health and networks, deletes, resyncs with duplicate and
// missing containers, API registrations, heartbeats, expiry) and, after
// each, recomputes every answer from the rows and compares.
func TestLookupTreeFollowsRows(t *testing.T) {
	for seed := range uint64(20) {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			cat := catalog.New()
			services := []string{"books-ms", "orders", "auth"}
			tagSet := []string{"v1", "v2", "canary"}
			now := time.Unix(1_000_000, 0)
			randomRecord := func(node string, n int) catalog.ContainerRecord {
				c := ctr(node, fmt.Sprintf("%s-c%d", node, n), fmt.Sprintf("web-%d", n),
					fmt.Sprintf("172.%d.0.%d/16", 18+rng.IntN(3), 2+n))
				c.Passing = rng.IntN(4) > 0
				var insts []*catalog.Instance
				for p := range rng.IntN(4) {
					var tg []string
					for _, tag := range tagSet {
						if rng.IntN(3) == 0 {
							tg = append(tg, tag)
						}
					}
					i := inst(c, services[rng.IntN(len(services))], uint16(80+p), tags(tg...))
					i.Passing = c.Passing && rng.IntN(5) > 0
					insts = append(insts, i)
				}
				return rec(c, insts...)
			}
			for step := range 300 {
				var err error
				switch op := rng.IntN(10); {
				case op < 4:
					r := randomRecord(nodeA, rng.IntN(12))
					_, err = cat.PutContainer(r.Container, r.Instances)
				case op < 5:
					_, err = cat.DeleteContainer(fmt.Sprintf("%s-c%d", nodeA, rng.IntN(12)))
				case op < 7:
					var recs []catalog.ContainerRecord
					for range rng.IntN(8) {
						recs = append(recs, randomRecord(nodeB, rng.IntN(10)))
					}
					recs = lastPerContainer(recs)
					_, err = cat.ReplaceNode(catalog.SourceDocker, nodeB, recs)
				case op < 9:
					id := "ext-" + strconv.Itoa(rng.IntN(6))
					i := apiInst(id, services[rng.IntN(len(services))], 8080, func(i *catalog.Instance) {
						i.Expires = now.Add(time.Duration(rng.IntN(10)) * time.Second)
						if rng.IntN(2) == 0 {
							i.Tags = []string{tagSet[rng.IntN(len(tagSet))]}
						}
					})
					_, err = cat.RegisterInstance(i)
				default:
					now = now.Add(3 * time.Second)
					_, _, err = cat.ExpireInstances(now)
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				checkLookupTree(t, cat, services, tagSet, step)
			}
		})
	}
}

// lastPerContainer keeps one record per container id, as a Docker list
// has: the last.
func lastPerContainer(recs []catalog.ContainerRecord) []catalog.ContainerRecord {
	seen := map[string]int{}
	var out []catalog.ContainerRecord
	for _, r := range recs {
		if k, ok := seen[r.Container.ID]; ok {
			out[k] = r
			continue
		}
		seen[r.Container.ID] = len(out)
		out = append(out, r)
	}
	return out
}

// checkLookupTree compares what the catalog answers with what its rows say.
func checkLookupTree(t *testing.T, cat *catalog.Catalog, services, tagSet []string, step int) {
	t.Helper()
	_, ctrs, err := cat.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	var rows []*catalog.Instance
	nets := map[netip.Prefix]bool{}
	for _, c := range ctrs {
		insts, err := cat.Instances(c.Source, c.Node)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range insts {
			if i.ContainerID == c.ID {
				rows = append(rows, i)
			}
		}
		for _, a := range c.Addrs {
			if a.Prefix.Bits() < a.Prefix.Addr().BitLen() {
				nets[a.Prefix.Masked()] = true
			}
		}
	}
	var wantSummary []catalog.ServiceSummary
	for _, svc := range services {
		var all, passing []string
		for _, i := range rows {
			if i.Service == svc {
				all = append(all, i.ID)
				if i.Passing {
					passing = append(passing, i.ID)
				}
			}
		}
		slices.Sort(all)
		slices.Sort(passing)
		_, got := serviceIDs(t, cat, catalog.ServiceQuery{Service: svc})
		if !slices.Equal(got, all) {
			t.Fatalf("step %d: Service(%s) = %v, rows have %v", step, svc, got, all)
		}
		_, dns := cat.AppendService(nil, catalog.ServiceQuery{Service: svc, PassingOnly: true})
		if got := instIDs(dns); !slices.Equal(got, passing) {
			t.Fatalf("step %d: AppendService(%s, passing) = %v, rows have %v", step, svc, got, passing)
		}
		if len(all) > 0 {
			wantSummary = append(wantSummary, catalog.ServiceSummary{Name: svc, Instances: len(all), Passing: len(passing)})
		}
	}
	slices.SortFunc(wantSummary, func(a, b catalog.ServiceSummary) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	if _, got := cat.Services(nil); !slices.Equal(got, wantSummary) {
		t.Fatalf("step %d: Services() = %+v, rows say %+v", step, got, wantSummary)
	}
	for _, tag := range tagSet {
		want := slices.ContainsFunc(rows, func(i *catalog.Instance) bool { return i.Passing && i.HasTag(tag) })
		if got := cat.HasTag(tag); got != want {
			t.Fatalf("step %d: HasTag(%s) = %v, rows say %v", step, tag, got, want)
		}
	}
	got := cat.Networks()
	if len(got) != len(nets) {
		t.Fatalf("step %d: Networks() = %v, rows have %v", step, got, nets)
	}
	for _, p := range got {
		if !nets[p] {
			t.Fatalf("step %d: Networks() has %v, which no row has", step, p)
		}
	}
	if st := stats(t, cat); st.Instances != len(rows) || st.Containers != len(ctrs) {
		t.Fatalf("step %d: Stats() = %+v, rows have %d instances in %d containers", step, st, len(rows), len(ctrs))
	}
}

// The DNS server looks services up on every answer it builds; the lookup
// must not allocate beyond the slice it is given.
func TestAppendServiceDoesNotAllocate(t *testing.T) {
	cat := catalog.New()
	for n := range 20 {
		c := ctr(nodeA, fmt.Sprintf("c%d", n), fmt.Sprintf("web-%d", n), fmt.Sprintf("172.18.0.%d/16", n+2))
		put(t, cat, c, inst(c, "books-ms", 8080, tags("v1")), inst(c, "orders", 443))
	}
	buf := make([]*catalog.Instance, 0, 64)
	queries := []catalog.ServiceQuery{
		{Service: "books-ms", PassingOnly: true},
		{Service: "orders", Port: "443", Protocol: catalog.ProtoTCP},
		{Service: "books-ms", Tag: "v1"},
		{Service: "missing"},
	}
	for _, q := range queries {
		var got []*catalog.Instance
		allocs := testing.AllocsPerRun(100, func() { _, got = cat.AppendService(buf[:0], q) })
		if allocs != 0 {
			t.Errorf("AppendService(%+v): %.1f allocations per lookup, want 0", q, allocs)
		}
		if q.Service != "missing" && len(got) != 20 {
			t.Errorf("AppendService(%+v) = %d instances, want 20", q, len(got))
		}
	}
}
