package cluster

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// discardStore takes every change and keeps nothing: what the holder
// itself holds is measured, not the catalog.
type discardStore struct{}

func (discardStore) NodeRecords(string) ([]catalog.ContainerRecord, <-chan struct{}, error) {
	return nil, nil, nil
}
func (discardStore) Apply(ch []catalog.Change) (uint64, []error) { return 0, nil }

// benchState is owner's full state of n records shaped as bench/cluster's
// (one container, one published port each), as it comes off the wire.
func benchState(owner string, n int) (*state, [][]byte) {
	recs := make([]wireRecord, n)
	host := netip.MustParseAddr("10.200.0.1")
	for i := range recs {
		id := fmt.Sprintf("c%05d", i)
		ip := netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})
		recs[i] = wireRecord{ID: id, Name: id, Target: id, Source: catalog.SourceDocker, Passing: true, HostIP: host,
			Addrs: []catalog.NetAddr{{Network: "bridge", Prefix: netip.PrefixFrom(ip, 16)}},
			Insts: []wireInstance{{IDSuffix: "8080/tcp", Service: fmt.Sprintf("app%d", i%100), Protocol: catalog.ProtoTCP,
				Port: 8080, Passing: true, HostIP: host, HostPort: uint16(20000 + i)}}}
	}
	_, body, err := decodeHeader(encodeState(&state{Owner: owner, Version: Version{1, 1}, Sent: time.Now(), Records: recs}))
	if err != nil {
		panic(err)
	}
	s, raws, err := decodeState(body)
	if err != nil {
		panic(err)
	}
	return s, raws
}

// BenchmarkHeldRecords holds 20 peers' full states of 1,000 records and
// reports what stays on the heap per record held (bytes and objects, after
// a GC): a node of a 100-node cluster holds 99,000 of them, and 100 nodes
// in bench/cluster's one process hold 9.9 M.
func BenchmarkHeldRecords(b *testing.B) {
	const owners, per = 20, 1000
	var bytes, objs float64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		states := make([]*state, owners)
		raws := make([][][]byte, owners)
		for k := range states {
			states[k], raws[k] = benchState(fmt.Sprintf("p%02d", k), per)
		}
		h := newTestHolder(nil, DefaultMaxInstances)
		h.store = discardStore{}
		b.StartTimer()
		h.mu.Lock()
		for k := range states {
			h.memberUp(states[k].Owner, "alive", netip.MustParseAddrPort("127.0.0.1:7946"), 1)
			h.applyState(states[k], raws[k], nil)
			h.flush()
		}
		h.mu.Unlock()
		b.StopTimer()
		states, raws = nil, nil // what the holder keeps of them stays (raws are slices of the messages)
		runtime.GC()
		runtime.ReadMemStats(&after)
		bytes += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		objs += float64(after.HeapObjects) - float64(before.HeapObjects)
		runtime.KeepAlive(h)
		b.StartTimer()
	}
	n := float64(b.N) * owners * per
	b.ReportMetric(bytes/n, "heldB/record")
	b.ReportMetric(objs/n, "heldobjs/record")
	b.ReportMetric(0, "ns/op")
}
