package catalog_test

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// peerRecords are the records of owners peers of per containers each, as
// the cluster stores a peer's (ids <owner>/<id>, targets <target>.<owner>,
// one published port, no address, 100 services every node runs), each
// owner's in id order, as the cluster writes a peer's state.
func peerRecords(owners, per int) [][]catalog.ContainerRecord {
	out := make([][]catalog.ContainerRecord, owners)
	for o := range owners {
		owner := fmt.Sprintf("p%03d", o+1)
		host := netip.AddrFrom4([4]byte{10, 200, byte(o >> 8), byte(o)})
		recs := make([]catalog.ContainerRecord, per)
		for i := range recs {
			c := &catalog.Container{
				ID: fmt.Sprintf("%s/c%05d", owner, i), Name: fmt.Sprintf("c%05d", i), Target: fmt.Sprintf("c%05d.%s", i, owner),
				Node: owner, Source: catalog.SourceDocker, HostIP: host, Passing: true,
			}
			recs[i] = rec(c, &catalog.Instance{
				ID: c.ID + ":8080/tcp", Service: fmt.Sprintf("app%d", i%100), Protocol: catalog.ProtoTCP, Port: 8080,
				HostIP: host, HostPort: uint16(20000 + i), ContainerID: c.ID, ContainerName: c.Name, Target: c.Target,
				Node: owner, Source: catalog.SourceDocker, Passing: true,
			})
		}
		out[o] = recs
	}
	return out
}

// ownCatalog is a catalog holding a node's own per containers, as a
// joining node's holds before its peers' records come.
func ownCatalog(b *testing.B, per int) *catalog.Catalog {
	cat := catalog.New()
	own := make([]catalog.ContainerRecord, per)
	for i := range own {
		c := ctr("self", fmt.Sprintf("c%05d", i), fmt.Sprintf("c%05d", i))
		own[i] = rec(c, inst(c, fmt.Sprintf("app%d", i%100), 8080))
	}
	if _, err := cat.ReplaceNode(catalog.SourceDocker, "self", own); err != nil {
		b.Fatal(err)
	}
	return cat
}

// BenchmarkApplyPeerBulk is the catalog's part of a node joining 99 peers
// of 1,000 containers each (issue 10): their 99,000 records written in
// one Apply, or in one Apply per peer. It reports the cost per record,
// and the CPU the process used per record (the garbage collector's
// included), which a shared machine's load changes less than the time.
func BenchmarkApplyPeerBulk(b *testing.B) {
	const owners, per = 99, 1000
	peers := peerRecords(owners, per)
	for _, tc := range []struct {
		name  string
		calls int // Apply calls, an equal share of the owners each
	}{
		{"1x99000", 1},
		{"99x1000", owners},
	} {
		b.Run(tc.name, func(b *testing.B) {
			batches := make([][]catalog.Change, tc.calls)
			for o, recs := range peers {
				k := o * tc.calls / owners
				for i := range recs {
					batches[k] = append(batches[k], catalog.Change{Put: &recs[i]})
				}
			}
			var allocs uint64
			var cpu time.Duration
			var ms runtime.MemStats
			for b.Loop() {
				b.StopTimer()
				cat := ownCatalog(b, per)
				runtime.GC()
				runtime.ReadMemStats(&ms)
				before, cpuBegan := ms.Mallocs, testutil.ProcessCPU()
				b.StartTimer()
				for _, ch := range batches {
					if _, errs := cat.Apply(ch); errs != nil {
						b.Fatalf("Apply: %v", errs)
					}
				}
				b.StopTimer()
				cpu += testutil.ProcessCPU() - cpuBegan
				runtime.ReadMemStats(&ms)
				allocs += ms.Mallocs - before
				if st, err := cat.Stats(); err != nil || st.Instances != (owners+1)*per {
					b.Fatalf("catalog holds %d instances (%v), want %d", st.Instances, err, (owners+1)*per)
				}
				b.StartTimer()
			}
			rows := float64(b.N * owners * per)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			b.ReportMetric(float64(allocs)/rows, "allocs/row")
			b.ReportMetric(float64(cpu.Nanoseconds())/rows, "cpu-ns/row")
		})
	}
}

// BenchmarkApplyPeerChange is the catalog's part of a change a peer
// gossips, on a node holding 99 peers' 1,000 containers each: one peer
// record replaced by one with its instance in another service, in one
// Apply.
func BenchmarkApplyPeerChange(b *testing.B) {
	const owners, per = 99, 1000
	peers := peerRecords(owners, per)
	cat := ownCatalog(b, per)
	for _, recs := range peers {
		ch := make([]catalog.Change, len(recs))
		for i := range recs {
			ch[i] = catalog.Change{Put: &recs[i]}
		}
		if _, errs := cat.Apply(ch); errs != nil {
			b.Fatalf("Apply: %v", errs)
		}
	}
	// The changes move a record between two services, other than its own.
	moved := make([][]catalog.Change, 2)
	for k := range moved {
		r := peers[owners/2][per/2]
		i := *r.Instances[0]
		i.Service = fmt.Sprintf("app%d", (per/2+1+k)%100)
		moved[k] = []catalog.Change{{Put: &catalog.ContainerRecord{Container: r.Container, Instances: []*catalog.Instance{&i}}}}
	}
	n := 0
	began := cat.Index()
	for b.Loop() {
		if _, errs := cat.Apply(moved[n%2]); errs != nil {
			b.Fatalf("Apply: %v", errs)
		}
		n++
	}
	if writes := cat.Index() - began; writes != uint64(n) {
		b.Fatalf("%d changes wrote %d times", n, writes)
	}
}
