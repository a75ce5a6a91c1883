package ratelimit

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

const (
	// MaxPrefixes bounds the number of client prefixes tracked at once.
	MaxPrefixes = 65536
	// DefaultPrefixV4 and DefaultPrefixV6 are the prefix lengths used when
	// New is given 0: a typical IPv4 subnet and a typical IPv6 site.
	DefaultPrefixV4 = 24
	DefaultPrefixV6 = 56

	numShards   = 64
	sweepPeriod = time.Second
)

// Limiter is a dnsserver.Limiter (ServerConfig.RateLimiter); ratelimit
// does not import dnsserver, so the method set is checked here.
var _ interface{ Allow(netip.Addr) bool } = (*Limiter)(nil)

// Limiter is a per-client-prefix token bucket limiter. It is safe for
// concurrent use; a nil *Limiter allows everything.
type Limiter struct {
	perNano  float64 // tokens added per nanosecond
	burst    float64
	bits4    int
	bits6    int
	perShard int
	seed     maphash.Seed
	now      func() time.Time
	epoch    time.Time
	shards   [numShards]shard
}

type shard struct {
	mu        sync.Mutex
	buckets   map[netip.Addr]bucket // key: the masked prefix address
	lastSweep int64                 // nanoseconds since epoch
	_         [40]byte              // keep shards on separate cache lines
}

type bucket struct {
	tokens float64
	last   int64 // nanoseconds since epoch of the last refill
}

// New returns a limiter allowing qps responses per second, in bursts of up
// to qps, to each client prefix: prefixV4 bits for IPv4 clients, prefixV6
// bits for IPv6 ones (0 = 24 and 56; values past 32 or 128 mean whole
// addresses). qps <= 0 returns nil, meaning no limit.
func New(qps int, prefixV4, prefixV6 int) *Limiter {
	return newLimiter(qps, prefixV4, prefixV6, MaxPrefixes, time.Now)
}

func newLimiter(qps, prefixV4, prefixV6, maxPrefixes int, now func() time.Time) *Limiter {
	if qps <= 0 {
		return nil
	}
	l := &Limiter{
		perNano:  float64(qps) / float64(time.Second),
		burst:    float64(qps),
		bits4:    clampBits(prefixV4, DefaultPrefixV4, 32),
		bits6:    clampBits(prefixV6, DefaultPrefixV6, 128),
		perShard: max(1, maxPrefixes/numShards),
		seed:     maphash.MakeSeed(), // random: no one can aim at one shard
		now:      now,
		epoch:    now(),
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[netip.Addr]bucket)
		l.shards[i].lastSweep = math.MinInt64 / 2 // the first full shard sweeps
	}
	return l
}

func clampBits(bits, def, maxBits int) int {
	switch {
	case bits <= 0:
		return def
	case bits > maxBits:
		return maxBits
	}
	return bits
}

// Allow takes a token for one response to client and reports whether it was
// available. An invalid address is always allowed (it cannot be attributed).
func (l *Limiter) Allow(client netip.Addr) bool {
	if l == nil || !client.IsValid() {
		return true
	}
	key := l.key(client)
	now := int64(l.now().Sub(l.epoch))
	s := &l.shards[maphash.Comparable(l.seed, key)%numShards]

	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[key]
	if ok {
		b.tokens = l.refill(b, now)
	} else {
		if len(s.buckets) >= l.perShard {
			l.evict(s, now)
		}
		b.tokens = l.burst
	}
	b.last = now
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	s.buckets[key] = b
	return allowed
}

// key is the client's prefix, as its masked address (IPv4-mapped addresses
// are IPv4; the zone is dropped).
func (l *Limiter) key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	bits := l.bits6
	if a.Is4() {
		bits = l.bits4
	}
	p, _ := a.Prefix(bits) // bits is in range for the family
	return p.Addr()
}

// refill returns b's tokens at now, capped at the burst.
func (l *Limiter) refill(b bucket, now int64) float64 {
	elapsed := max(now-b.last, 0) // a clock going back adds nothing
	return min(l.burst, b.tokens+float64(elapsed)*l.perNano)
}

// evict makes room in the full shard s (locked by the caller).
func (l *Limiter) evict(s *shard, now int64) {
	if now-s.lastSweep >= int64(sweepPeriod) {
		// Buckets that are full again behave exactly like new ones:
		// dropping them loses nothing.
		s.lastSweep = now
		for k, b := range s.buckets {
			if l.refill(b, now) >= l.burst {
				delete(s.buckets, k)
			}
		}
		if len(s.buckets) < l.perShard {
			return
		}
	}
	// Every bucket is in use: drop one at random (map iteration starts at
	// a random place), O(1).
	for k := range s.buckets {
		delete(s.buckets, k)
		return
	}
}

// Len returns the number of client prefixes tracked.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
