package ratelimit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake time source tests move by hand.
type clock struct{ ns atomic.Int64 }

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *clock) now() time.Time          { return base.Add(time.Duration(c.ns.Load())) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTest(qps, v4, v6, maxPrefixes int) (*Limiter, *clock) {
	c := new(clock)
	return newLimiter(qps, v4, v6, maxPrefixes, c.now), c
}

// take calls Allow n times and returns how many were allowed.
func take(l *Limiter, a string, n int) int {
	addr := netip.MustParseAddr(a)
	ok := 0
	for range n {
		if l.Allow(addr) {
			ok++
		}
	}
	return ok
}

func TestOff(t *testing.T) {
	for _, qps := range []int{0, -5} {
		l := New(qps, 24, 56)
		if l != nil {
			t.Fatalf("New(%d) = %v, want nil (off)", qps, l)
		}
		if got := take(l, "192.0.2.1", 1000); got != 1000 {
			t.Errorf("nil limiter allowed %d of 1000, want all", got)
		}
		if l.Len() != 0 {
			t.Errorf("nil limiter Len %d", l.Len())
		}
	}
}

func TestBurstAndRefill(t *testing.T) {
	l, c := newTest(5, 24, 56, MaxPrefixes)
	steps := []struct {
		advance time.Duration
		tries   int
		want    int
	}{
		{0, 10, 5},                     // a burst of qps, then nothing
		{100 * time.Millisecond, 5, 0}, // half a token
		{100 * time.Millisecond, 5, 1}, // a whole one
		{time.Second, 10, 5},           // refilled to the burst
		{time.Hour, 10, 5},             // never past the burst
		{-time.Minute, 5, 0},           // a clock going back adds nothing
		{time.Minute + time.Second, 5, 5},
	}
	for i, s := range steps {
		c.advance(s.advance)
		if got := take(l, "192.0.2.1", s.tries); got != s.want {
			t.Errorf("step %d (+%v): allowed %d of %d, want %d", i, s.advance, got, s.tries, s.want)
		}
	}
}

func TestPrefixGrouping(t *testing.T) {
	tests := []struct {
		name   string
		v4, v6 int
		first  string   // exhausts its prefix
		same   []string // share first's bucket: denied
		other  []string // own buckets: allowed
	}{
		{
			name: "v4 /24", v4: 24, v6: 56, first: "10.1.2.3",
			same:  []string{"10.1.2.3", "10.1.2.250", "10.1.2.0", "::ffff:10.1.2.9"},
			other: []string{"10.1.3.3", "11.1.2.3", "::ffff:10.1.4.1"},
		},
		{
			name: "v6 /56", v4: 24, v6: 56, first: "2001:db8:0:1::1",
			same:  []string{"2001:db8:0:ff::2", "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8:0:1::1%eth0"},
			other: []string{"2001:db8:0:100::1", "2001:db8:1::1", "2001:db9::1", "10.1.2.3"},
		},
		{
			name: "defaults from 0", first: "10.9.9.1",
			same:  []string{"10.9.9.200"},
			other: []string{"10.9.10.1"},
		},
		{
			name: "whole addresses", v4: 32, v6: 200, first: "2001:db8::1",
			same:  []string{"2001:db8::1"},
			other: []string{"2001:db8::2", "2001:db8::1:0"},
		},
		{
			name: "v4 /16", v4: 16, v6: 48, first: "172.16.1.1",
			same:  []string{"172.16.200.9"},
			other: []string{"172.17.1.1"},
		},
		{
			name: "link-local zones share", v4: 24, v6: 56, first: "fe80::1%eth0",
			same:  []string{"fe80::1%eth1", "fe80::2"},
			other: []string{"fe81::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTest(3, tt.v4, tt.v6, MaxPrefixes)
			if got := take(l, tt.first, 10); got != 3 {
				t.Fatalf("%s allowed %d of 10, want the burst of 3", tt.first, got)
			}
			for _, a := range tt.same {
				if take(l, a, 1) != 0 {
					t.Errorf("%s allowed after %s used up their shared prefix", a, tt.first)
				}
			}
			for _, a := range tt.other {
				if take(l, a, 1) != 1 {
					t.Errorf("%s denied: it is not in %s's prefix", a, tt.first)
				}
			}
		})
	}
}

func TestInvalidAddrAllowed(t *testing.T) {
	l, _ := newTest(1, 24, 56, MaxPrefixes)
	for range 3 {
		if !l.Allow(netip.Addr{}) {
			t.Fatal("zero address denied")
		}
	}
	if l.Len() != 0 {
		t.Errorf("zero address tracked: Len %d", l.Len())
	}
}

func TestBoundedTable(t *testing.T) {
	const maxPrefixes = 64 * numShards
	l, c := newTest(1, 32, 128, maxPrefixes)

	// A spoofed flood from 100,000 addresses in one instant.
	for i := range 100_000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := l.Len(); n > maxPrefixes {
		t.Fatalf("tracking %d prefixes, want at most %d", n, maxPrefixes)
	}

	// Two seconds on, every tracked bucket is idle. An active client uses
	// its token; more new clients arrive; the full shards drop the idle
	// buckets, not the active one, so it stays limited.
	c.advance(2 * time.Second)
	active := "192.0.2.1"
	if take(l, active, 2) != 1 {
		t.Fatal("active client: want 1 of 2 allowed")
	}
	for i := range 1000 {
		l.Allow(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}))
	}
	if take(l, active, 1) != 0 {
		t.Error("active client allowed again: its bucket was evicted instead of idle ones")
	}
	// 1001 active, plus the idle buckets of any shard no new client hit.
	if n := l.Len(); n > maxPrefixes/2 {
		t.Errorf("tracking %d prefixes after the idle sweep, want about the 1001 active", n)
	}
}

// Many goroutines on one prefix at one instant get exactly the burst
// between them; on many prefixes the table stays bounded (run with -race).
func TestConcurrent(t *testing.T) {
	l, _ := newTest(100, 24, 56, 1024)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				if l.Allow(netip.MustParseAddr("198.51.100.7")) {
					allowed.Add(1)
				}
				l.Allow(netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), 1}))
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Errorf("allowed %d on one prefix, want exactly the burst of 100", got)
	}
	if n := l.Len(); n > 1024 {
		t.Errorf("tracking %d prefixes, want at most 1024", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name  string
		addrs int
	}{{"one prefix", 1}, {"1k prefixes", 1000}, {"1M spoofed", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			l := New(1000, 24, 56)
			var n atomic.Uint32
			b.RunParallel(func(pb *testing.PB) {
				i := int(n.Add(1)) * 7919
				for pb.Next() {
					i++
					j := i % bc.addrs // the j-th /24
					l.Allow(netip.AddrFrom4([4]byte{byte(j >> 16), byte(j >> 8), byte(j), 1}))
				}
			})
			b.ReportMetric(float64(l.Len()), "prefixes")
		})
	}
}

func ExampleLimiter_Allow() {
	lim := New(2, 24, 56)
	client := netip.MustParseAddr("192.0.2.10")
	fmt.Println(lim.Allow(client), lim.Allow(client), lim.Allow(client))
	// Output: true true false
}
