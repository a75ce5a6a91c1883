package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// joinBundle is the bundle of full states a joining node gets from its
// first contact: owners states of per records each, shaped as
// bench/cluster's (one container with one published port, over 100
// services every node runs; no address, as a peer sends none of a
// bridge), encoded as on the wire, each state's records in a random
// order as a node's states are (snapState reads a map).
func joinBundle(owners, per int) (buf []byte, names []string) {
	p := pushPull{Sender: "p000"}
	for o := range owners {
		name := fmt.Sprintf("p%03d", o)
		host := netip.AddrFrom4([4]byte{10, 200, byte(o >> 8), byte(o)})
		recs := make([]wireRecord, per)
		for i := range recs {
			id := fmt.Sprintf("c%05d", i)
			recs[i] = wireRecord{ID: id, Name: id, Target: id, Source: catalog.SourceDocker, Passing: true, HostIP: host,
				Insts: []wireInstance{{IDSuffix: "8080/tcp", Service: fmt.Sprintf("app%d", i%100), Protocol: catalog.ProtoTCP,
					Port: 8080, Passing: true, HostIP: host, HostPort: uint16(20000 + i)}}}
		}
		rand.New(rand.NewPCG(uint64(o), 1)).Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
		v := Version{Incarnation: 1, Seq: 1}
		p.States = append(p.States, encodeState(&state{Owner: name, Version: v, Sent: time.Now(), Records: recs}))
		p.Digest = append(p.Digest, digestEntry{Owner: name, Version: v})
		names = append(names, name)
	}
	return encodePushPull(&p), names
}

// BenchmarkJoin is the work of a node joining 99 others of 1,000
// instances each (issue 10's join, at 100 nodes), from the bundle of
// their full states as it arrives to the records in its catalog: the
// apply loop's handling of that message (decode, check, the holder's
// records) and the catalog write. Each round starts from a catalog that
// holds only the node's own 1,000 records, as bench/cluster's joiner
// does. It reports records/s, the CPU the process used (the garbage
// collector's included) per join, which a shared machine's load does not
// change as much as it changes the wall time, and the CPU of the apply
// loop's goroutine alone (loop-cpu-s, Linux): states are decoded on
// another goroutine while the loop writes, so on a machine with a core to
// spare the join takes about the loop's CPU.
func BenchmarkJoin(b *testing.B) {
	const owners, per = 99, 1000
	buf, names := joinBundle(owners, per)
	var total, cpu, loop time.Duration
	for b.Loop() {
		b.StopTimer()
		cat := catalog.New()
		own := make([]catalog.ContainerRecord, per)
		for i := range own {
			ctr := &catalog.Container{ID: fmt.Sprintf("c%05d", i), Target: fmt.Sprintf("c%05d", i), Node: "self", Source: catalog.SourceDocker, Passing: true}
			own[i] = catalog.ContainerRecord{Container: ctr, Instances: []*catalog.Instance{{
				ID: ctr.ID + ":8080/tcp", Service: fmt.Sprintf("app%d", i%100), Protocol: catalog.ProtoTCP, Port: 8080,
				ContainerID: ctr.ID, Target: ctr.Target, Node: "self", Source: catalog.SourceDocker, Passing: true,
			}}}
		}
		if _, err := cat.ReplaceNode(catalog.SourceDocker, "self", own); err != nil {
			b.Fatal(err)
		}
		c := &Cluster{cfg: Config{Node: "self", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, m: newMetrics()}
		c.h = newHolder("self", cat, DefaultMaxInstances, c.cfg.Logger, c.m, nil)
		c.h.mu.Lock()
		// memberlist told of every member before the states came.
		for _, n := range names {
			c.h.memberUp(n, "alive", netip.MustParseAddrPort("127.0.0.1:7946"), 1)
		}
		c.h.flush()
		msg := append([]byte(nil), buf...)
		b.StartTimer()
		runtime.LockOSThread()
		began, cpuBegan, loopBegan := time.Now(), testutil.ProcessCPU(), threadCPU()
		c.handle(event{kind: evMsg, buf: msg}, nil)
		c.h.flush()
		total += time.Since(began)
		cpu += testutil.ProcessCPU() - cpuBegan
		loop += threadCPU() - loopBegan
		runtime.UnlockOSThread()
		b.StopTimer()
		c.h.mu.Unlock()
		st, err := cat.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if want := (owners + 1) * per; st.Instances != want {
			b.Fatalf("catalog holds %d instances, want %d", st.Instances, want)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*owners*per)/total.Seconds(), "records/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(loop.Seconds()/float64(b.N), "loop-cpu-s/op")
}
