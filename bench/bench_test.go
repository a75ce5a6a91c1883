package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The synthetic fleet: container i runs one instance of service
// "svc<i/perService>" on port 8080, with an address on one /16 network,
// as the watcher stores a Docker container with one exposed port.
const (
	node       = "bench"
	perService = 10 // instances per service, so a lookup returns 10 at any scale
)

func containerID(i int) string { return fmt.Sprintf("%064x", i+1) }

func record(i, gen int) catalog.ContainerRecord {
	id := containerID(i)
	ip := netip.AddrFrom4([4]byte{172, byte(16 + i>>16&15), byte(i >> 8), byte(i)})
	addrs := []catalog.NetAddr{{Network: "bridge", Prefix: netip.PrefixFrom(ip, 16)}}
	name := "ctr-" + strconv.Itoa(i)
	ctr := &catalog.Container{ID: id, Name: name, Target: name, Node: node, Source: catalog.SourceDocker, Addrs: addrs, Passing: true}
	inst := &catalog.Instance{
		ID: catalog.InstanceID(id, "8080/tcp"), Service: "svc" + strconv.Itoa(i/perService), Protocol: catalog.ProtoTCP, Port: 8080,
		Addrs: addrs, ContainerID: id, ContainerName: name, Target: name, Node: node, Source: catalog.SourceDocker, Passing: true,
	}
	if gen > 0 { // a changed container: published on another host port
		ctr.HostIP = netip.AddrFrom4([4]byte{192, 0, 2, 1})
		inst.HostIP, inst.HostPort = ctr.HostIP, uint16(30000+gen%30000)
	}
	return catalog.ContainerRecord{Container: ctr, Instances: []*catalog.Instance{inst}}
}

func records(n int) []catalog.ContainerRecord {
	out := make([]catalog.ContainerRecord, n)
	for i := range out {
		out[i] = record(i, 0)
	}
	return out
}

func mustReplace(b *testing.B, cat *catalog.Catalog, recs []catalog.ContainerRecord) {
	b.Helper()
	if _, err := cat.ReplaceNode(catalog.SourceDocker, node, recs); err != nil {
		b.Fatal(err)
	}
}

func passing(svc int) catalog.ServiceQuery {
	return catalog.ServiceQuery{Service: "svc" + strconv.Itoa(svc), PassingOnly: true}
}

// readerQPS is the lookup rate of the reader that runs beside the writes:
// the DNS load of the target ("while serving 50k queries/s").
const readerQPS = 50_000

// reader looks services up at readerQPS until stopped, timing each lookup.
type reader struct {
	stop    atomic.Bool
	done    chan struct{}
	lookups int
	lat     []time.Duration // a bounded sample: every lookup until it is full
}

func startReader(b *testing.B, cat *catalog.Catalog, services int) *reader {
	r := &reader{done: make(chan struct{}), lat: make([]time.Duration, 0, 1<<20)}
	go func() {
		defer close(r.done)
		began := time.Now()
		for i := 0; !r.stop.Load(); {
			due := int(time.Since(began).Seconds() * readerQPS)
			if i >= due {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			for ; i < due; i++ {
				t0 := time.Now()
				_, insts, err := cat.Service(nil, passing(i%services))
				d := time.Since(t0)
				if err != nil || len(insts) == 0 {
					b.Errorf("lookup svc%d: %d instances, %v", i%services, len(insts), err)
					return
				}
				if len(r.lat) < cap(r.lat) {
					r.lat = append(r.lat, d)
				}
				r.lookups++
			}
		}
	}()
	return r
}

func (r *reader) finish(b *testing.B, elapsed time.Duration) {
	r.stop.Store(true)
	<-r.done
	b.ReportMetric(float64(r.lookups)/elapsed.Seconds(), "lookups/s")
	if len(r.lat) > 0 {
		slices.Sort(r.lat)
		b.ReportMetric(float64(r.lat[len(r.lat)*99/100].Nanoseconds()), "lookup-p99-ns")
	}
}

// BenchmarkCatalogApply measures what the watcher's apply loop can write
// while DNS reads: one PutContainer (or DeleteContainer) per op on a catalog
// of 1,000 containers (100 services of 10), with a concurrent reader doing
// 50,000 service lookups a second. Figures: events/s, and the reader's
// lookups/s and p99. B/op and allocs/op include the reader's lookups.
func BenchmarkCatalogApply(b *testing.B) {
	const n = 1000
	b.Run("update", func(b *testing.B) {
		applyEach(b, n, func(cat *catalog.Catalog, i int) error {
			rec := record(i%n, i+1) // every put changes the container
			_, err := cat.PutContainer(rec.Container, rec.Instances)
			return err
		})
	})
	b.Run("start-stop", func(b *testing.B) {
		applyEach(b, n, func(cat *catalog.Catalog, i int) error {
			// Container n+k starts, then stops: two events per pair of ops.
			k := n + (i/2)%n
			if i%2 == 0 {
				rec := record(k, 0)
				_, err := cat.PutContainer(rec.Container, rec.Instances)
				return err
			}
			_, err := cat.DeleteContainer(containerID(k))
			return err
		})
	})
}

// applyEach runs write b.N times, one write per event, on a catalog of n
// containers beside the reader, and reports events/s and the reader's
// figures.
func applyEach(b *testing.B, n int, write func(cat *catalog.Catalog, i int) error) {
	cat := catalog.New()
	mustReplace(b, cat, records(n))
	r := startReader(b, cat, n/perService)
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for i := range b.N {
		if err := write(cat, i); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	r.finish(b, elapsed)
}

// BenchmarkCatalogApplyBatched is the watcher's apply loop in an event
// storm: events queue faster than single writes could take them, and each
// write takes everything queued (at most maxBatch) in one Apply, as the
// watcher does. One op is one event (a changed container), with the same
// concurrent reader as BenchmarkCatalogApply. Figures: events/s, and the
// p99 from an event's arrival in the queue to its write returning.
func BenchmarkCatalogApplyBatched(b *testing.B) {
	const n, maxBatch = 1000, 256
	cat := catalog.New()
	mustReplace(b, cat, records(n))
	r := startReader(b, cat, n/perService)
	type event struct {
		rec    catalog.ContainerRecord
		queued time.Time
	}
	queue := make(chan event, 4*maxBatch)
	go func() {
		for i := range b.N {
			queue <- event{rec: record(i%n, i+1), queued: time.Now()}
		}
		close(queue)
	}()
	lat := make([]time.Duration, 0, min(b.N, 1<<20))
	batch := make([]catalog.Change, 0, maxBatch)
	queued := make([]time.Time, 0, maxBatch)
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for ev, ok := <-queue; ok; ev, ok = <-queue {
		batch, queued = batch[:0], queued[:0]
		for {
			rec := ev.rec
			batch = append(batch, catalog.Change{Put: &rec})
			queued = append(queued, ev.queued)
			if len(batch) == maxBatch {
				break
			}
			select {
			case ev, ok = <-queue:
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if _, errs := cat.Apply(batch); errs != nil {
			b.Fatal(errs)
		}
		done := time.Now()
		for _, q := range queued {
			if len(lat) < cap(lat) {
				lat = append(lat, done.Sub(q))
			}
		}
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "event-p99-us")
	r.finish(b, elapsed)
}

// rssAnon is the process's anonymous resident memory, in bytes (0 where
// /proc is not there).
func rssAnon() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssAnon:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkCatalog100k loads 100,000 synthetic instances (100,000
// containers, 10,000 services of 10) in one ReplaceNode and reports the
// memory they hold: HeapInuse after GC per instance (container row
// included), and the RssAnon growth per instance. One op is one load, a
// couple of seconds: the benchmark runs it once at the default benchtime.
func BenchmarkCatalog100k(b *testing.B) {
	const n = 100_000
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		heap0, rss0 := heapInuse(), rssAnon()
		cat := catalog.New()
		recs := records(n)
		b.StartTimer()
		mustReplace(b, cat, recs)
		b.StopTimer()
		recs = nil
		heap1, rss1 := heapInuse(), rssAnon()
		b.ReportMetric(float64(heap1-heap0)/n, "B/instance")
		if rss1 > rss0 {
			b.ReportMetric(float64(rss1-rss0)/n, "rss-B/instance")
		}
		if _, svcs := cat.Services(nil); len(svcs) != n/perService {
			b.Fatalf("%d services, want %d", len(svcs), n/perService)
		}
		runtime.KeepAlive(cat)
		b.StartTimer()
	}
}

var (
	bigOnce sync.Once
	bigCat  *catalog.Catalog
)

// BenchmarkServiceLookup is the lookup DNS does for an A or SRV answer
// (AppendService into a reused slice), a service of 10 passing instances,
// in a catalog of 1,000 and of 100,000 instances: the time should not grow
// with the catalog, and nothing is allocated. The api variant is Service,
// what the HTTP API calls, which returns a new slice.
func BenchmarkServiceLookup(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		var cat *catalog.Catalog
		load := func() {
			if cat != nil {
				return
			}
			if n == 100_000 {
				bigOnce.Do(func() { bigCat = catalog.New(); mustReplace(b, bigCat, records(n)) })
				cat = bigCat
				return
			}
			cat = catalog.New()
			mustReplace(b, cat, records(n))
		}
		services := n / perService
		b.Run("dns/instances="+strconv.Itoa(n), func(b *testing.B) {
			load()
			var buf []*catalog.Instance
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_, buf = cat.AppendService(buf[:0], passing((i*7919)%services))
				if len(buf) != perService {
					b.Fatalf("%d instances", len(buf))
				}
			}
		})
		b.Run("api/instances="+strconv.Itoa(n), func(b *testing.B) {
			load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				_, insts, err := cat.Service(nil, passing((i*7919)%services))
				if err != nil || len(insts) != perService {
					b.Fatalf("%d instances, %v", len(insts), err)
				}
			}
		})
	}
}

// BenchmarkColdStart10k is svcdns starting on a host that runs 10,000
// containers, from the catalog's side: the watcher's first ReplaceNode with
// 10,000 records, into an empty catalog.
func BenchmarkColdStart10k(b *testing.B) {
	const n = 10_000
	recs := records(n) // the catalog only reads them; reused across ops
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cat := catalog.New()
		mustReplace(b, cat, recs)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "containers/s")
}

// waitIndex blocks until the catalog has been written, bounded.
func waitIndex(b *testing.B, cat *catalog.Catalog, d time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := cat.Wait(ctx, 0); err != nil {
		b.Fatalf("catalog not written within %v: %v", d, err)
	}
}
