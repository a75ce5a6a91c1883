package catalog_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// A write reads the rows it has changed itself from its own record of
// them, not from memdb (see writeTxn): a batch must still see, change by
// change, what the changes before it in the same batch did. Each case
// applies its changes as one batch and as one write per change, to two
// catalogs seeded alike, and wants the same errors and the same catalog.
func TestApplyBatchReadsItsOwnWrites(t *testing.T) {
	c9 := func(node string) *catalog.Container { return ctr(node, "c9", "web-9", "172.18.0.9/16") }
	dockerPut := func(c *catalog.Container, svc string) catalog.Change {
		return catalog.Change{Put: &catalog.ContainerRecord{Container: c, Instances: []*catalog.Instance{inst(c, svc, 80)}}}
	}
	// An API registration whose id is the one c9's instance gets (an id
	// need not be a DNS label; its target must).
	apiPut := func(id string) catalog.Change {
		i := apiInst(id, "books-ms", 8080, func(i *catalog.Instance) { i.ContainerName, i.Target = "", "ext-9" })
		c := &catalog.Container{ID: i.ContainerID, Target: i.Target, Source: catalog.SourceAPI, Addrs: i.Addrs, Passing: true}
		return catalog.Change{Put: &catalog.ContainerRecord{Container: c, Instances: []*catalog.Instance{i}}}
	}
	tests := []struct {
		name    string
		seed    []catalog.Change // written before, in one Apply
		changes []catalog.Change
		wantErr []error
	}{
		{
			name:    "a container put, then put by another node",
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms"), dockerPut(c9(nodeB), "orders")},
			wantErr: []error{nil, catalog.ErrConflict},
		},
		{
			name:    "a container put, deleted, then put by another node",
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms"), {Delete: "c9"}, dockerPut(c9(nodeB), "orders")},
			wantErr: []error{nil, nil, nil},
		},
		{
			name:    "a container deleted that an earlier change put",
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms"), {Delete: "c9"}},
			wantErr: []error{nil, nil},
		},
		{
			name:    "a container put twice, the second time in another service",
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms"), dockerPut(c9(nodeA), "orders")},
			wantErr: []error{nil, nil},
		},
		{
			name: "a container put twice in one service",
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms"),
				{Put: &catalog.ContainerRecord{Container: c9(nodeA), Instances: []*catalog.Instance{inst(c9(nodeA), "books-ms", 81)}}}},
			wantErr: []error{nil, nil},
		},
		{
			name:    "a container held before, moved to another service and back, deleted, put again",
			seed:    []catalog.Change{dockerPut(c9(nodeA), "books-ms"), dockerPut(ctr(nodeA, "c8", "web-8"), "books-ms")},
			changes: []catalog.Change{dockerPut(c9(nodeA), "orders"), dockerPut(c9(nodeA), "books-ms"), {Delete: "c9"}, dockerPut(c9(nodeA), "orders")},
			wantErr: []error{nil, nil, nil, nil},
		},
		{
			name:    "an API id put, then a container's instance with that id",
			changes: []catalog.Change{apiPut("c9:80/tcp"), dockerPut(c9(nodeA), "books-ms")},
			wantErr: []error{nil, catalog.ErrConflict},
		},
		{
			name:    "an API id held before, then a container's instance with that id",
			seed:    []catalog.Change{apiPut("c9:80/tcp")},
			changes: []catalog.Change{dockerPut(c9(nodeA), "books-ms")},
			wantErr: []error{catalog.ErrConflict},
		},
		{
			name:    "an API id held before and deleted, then a container's instance with that id",
			seed:    []catalog.Change{apiPut("c9:80/tcp")},
			changes: []catalog.Change{{Delete: catalog.APIContainerID("c9:80/tcp")}, dockerPut(c9(nodeA), "books-ms")},
			wantErr: []error{nil, nil},
		},
		{
			name:    "a container held before, deleted, and put again by another node",
			seed:    []catalog.Change{dockerPut(c9(nodeA), "books-ms")},
			changes: []catalog.Change{{Delete: "c9"}, dockerPut(c9(nodeB), "orders"), dockerPut(c9(nodeA), "books-ms")},
			wantErr: []error{nil, nil, catalog.ErrConflict},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batched, single := catalog.New(), catalog.New()
			for _, cat := range []*catalog.Catalog{batched, single} {
				if _, errs := cat.Apply(tt.seed); errs != nil {
					t.Fatalf("seed: %v", errs)
				}
			}
			_, errs := batched.Apply(tt.changes)
			for k, ch := range tt.changes {
				_, one := single.Apply([]catalog.Change{ch})
				var err, got error
				if one != nil {
					err = one[0]
				}
				if errs != nil {
					got = errs[k]
				}
				if !sameErr(got, tt.wantErr[k]) || !sameErr(err, tt.wantErr[k]) {
					t.Errorf("change %d: error %v in the batch, %v alone; want %v", k, got, err, tt.wantErr[k])
				}
			}
			compareCatalogs(t, batched, single)
		})
	}
}

func sameErr(got, want error) bool {
	return (got == nil) == (want == nil) && (want == nil || errors.Is(got, want))
}

// One batch of many nodes' records (a node joining a cluster) leaves the
// catalog as those records written one container at a time do, whatever
// was there before: the same containers, instances, services, tags and
// networks.
func TestApplyLargeBatchEqualsOneAtATime(t *testing.T) {
	const nodes, per = 12, 40
	record := func(node string, i, k int) catalog.ContainerRecord {
		c := ctr(node, fmt.Sprintf("%s/c%03d", node, i), "", fmt.Sprintf("10.%d.%d.%d/16", k%7, k/250, k%250+1))
		c.Target = fmt.Sprintf("c%03d.%s", i, node)
		var insts []*catalog.Instance
		for p := range k%3 + 1 {
			insts = append(insts, inst(c, fmt.Sprintf("svc%d", (k+p)%9), uint16(8000+p), tags(fmt.Sprintf("t%d", k%4))))
		}
		return rec(c, insts...)
	}
	var changes []catalog.Change
	for n := range nodes {
		node := fmt.Sprintf("n%02d", n)
		for i := range per {
			// Out of order, as an owner's map gives them.
			k := (i*17 + n) % per
			r := record(node, k, n*per+k)
			changes = append(changes, catalog.Change{Put: &r})
		}
		// Some change in the same batch: a record replaced, one deleted.
		again := record(node, 1, n*per+5)
		changes = append(changes, catalog.Change{Put: &again}, catalog.Change{Delete: fmt.Sprintf("%s/c%03d", node, 2)})
	}
	tests := []struct {
		name string
		seed []catalog.Change
	}{
		{name: "into an empty catalog"},
		// What was there is replaced: the first node's records held
		// before, with other services.
		{name: "over records held before", seed: changes[:per/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batched, single := catalog.New(), catalog.New()
			for _, cat := range []*catalog.Catalog{batched, single} {
				for _, ch := range tt.seed {
					if _, errs := cat.Apply([]catalog.Change{ch}); errs != nil {
						t.Fatalf("seed: %v", errs)
					}
				}
			}
			if _, errs := batched.Apply(changes); errs != nil {
				t.Fatalf("batch: %v", errs)
			}
			for _, ch := range changes {
				if _, errs := single.Apply([]catalog.Change{ch}); errs != nil {
					t.Fatalf("one change: %v", errs)
				}
			}
			compareCatalogs(t, batched, single)
		})
	}
}

// compareCatalogs fails t unless the two catalogs hold the same records
// and answer the same, index aside.
func compareCatalogs(t *testing.T, got, want *catalog.Catalog) {
	t.Helper()
	_, gotCtrs, err := got.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	_, wantCtrs, err := want.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ctrIDs(gotCtrs), ctrIDs(wantCtrs)) {
		t.Fatalf("containers %v, want %v", ctrIDs(gotCtrs), ctrIDs(wantCtrs))
	}
	for _, c := range wantCtrs {
		g, err := got.Container(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := want.Container(c.ID)
		if g.Container != w.Container || !slices.Equal(g.Instances, w.Instances) {
			t.Errorf("container %s: %+v, want %+v", c.ID, g, w)
		}
	}
	gotSt, wantSt := stats(t, got), stats(t, want)
	gotSt.Index, wantSt.Index = 0, 0
	if gotSt != wantSt {
		t.Errorf("stats %+v, want %+v", gotSt, wantSt)
	}
	_, gotSvcs := got.Services(nil)
	_, wantSvcs := want.Services(nil)
	if len(gotSvcs) != len(wantSvcs) {
		t.Fatalf("services %+v, want %+v", gotSvcs, wantSvcs)
	}
	for k, s := range wantSvcs {
		if gotSvcs[k] != s {
			t.Errorf("service %d: %+v, want %+v", k, gotSvcs[k], s)
		}
		for _, tag := range []string{"", "t0", "t1", "t2", "t3"} {
			q := catalog.ServiceQuery{Service: s.Name, Tag: tag}
			_, g, _ := got.Service(nil, q)
			_, w, _ := want.Service(nil, q)
			// In the catalog's order: sorted by id.
			if !slices.Equal(g, w) {
				t.Errorf("service %s tag %q: %v, want %v", s.Name, tag, instIDsInOrder(g), instIDsInOrder(w))
			}
		}
	}
	if g, w := got.Networks(), want.Networks(); !slices.Equal(g, w) {
		t.Errorf("networks %v, want %v", g, w)
	}
}

func instIDsInOrder(insts []*catalog.Instance) []string {
	out := make([]string, 0, len(insts))
	for _, i := range insts {
		out = append(out, i.ID)
	}
	return out
}
