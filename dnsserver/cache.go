package dnsserver

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// The answer cache. Answers of the zone are a pure function of the catalog
// at one index, the question (lower-cased), the client's view (which
// Docker networks it is on) and whether it sent EDNS0 with DO. So they are
// packed once per catalog index and served as bytes: a repeated question
// costs a map lookup, a copy, and rewriting the ID, the RD/CD/RA bits and
// the question's case. When the catalog index moves, the whole generation
// is dropped and the next queries pack again: a cached answer is never
// older than the catalog.
//
// What is not cached goes the slow way (Handler.answer): forwarded names,
// refusals, malformed queries, everything before the first Docker sync
// (whose NXDOMAINs turn into SERVFAIL), and replies that would need
// truncating for the client.

const (
	// maxCacheEntries bounds one generation, so a flood of random names
	// cannot grow memory; past it answers are packed but not kept.
	maxCacheEntries = 16384
	// maxVariants is how many orders of a multi-record answer are kept.
	// They are rotations of one shuffle, so with n ≤ maxVariants records
	// every record comes first equally often.
	maxVariants = 16
	// maxViewNetworks is how many Docker networks a view key can tell
	// apart; a client on a later network skips the cache.
	maxViewNetworks = 64
)

// generation is the cache of one catalog index, with the subnets of the
// Docker networks at that index.
type generation struct {
	index    uint64
	prefixes []netip.Prefix
	entries  sync.Map // cacheKey → *cachedAnswer
	size     atomic.Int64
}

type cacheKey struct {
	name  string // lower case
	qtype uint16
	view  uint64 // bit i: the client is on prefixes[i]
	edns  uint8  // 0: no OPT, 1: OPT, 2: OPT with DO
}

// cachedAnswer is one question's packed replies: ID 0, question lower
// case, RD, CD and RA clear.
type cachedAnswer struct {
	variants [][]byte
	rcode    int
}

// replyPool recycles the buffers cached replies are written from.
var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, DefaultMaxUDPSize); return &b }}

// networks returns the generation of the catalog's current index, making
// a new one when the index moved.
func (h *Handler) networks() *generation {
	idx := h.cat.Index()
	if g := h.gen.Load(); g != nil && g.index == idx {
		return g
	}
	prefixes, err := h.cat.Networks()
	if err != nil {
		h.log.Warn("read docker networks", "err", err)
	}
	g := &generation{index: idx, prefixes: prefixes}
	h.gen.Store(g)
	return g
}

func (g *generation) contains(a netip.Addr) bool {
	for _, p := range g.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// view returns the bit set of the networks client is on; ok is false when
// it is on a network past maxViewNetworks.
func (g *generation) view(client netip.Addr) (mask uint64, ok bool) {
	for i, p := range g.prefixes {
		if p.Contains(client) {
			if i >= maxViewNetworks {
				return 0, false
			}
			mask |= 1 << i
		}
	}
	return mask, true
}

// cachedReply returns the packed reply to r from the cache, filling it on
// a miss, or nil when r must go the slow way. The buffer goes back to
// replyPool after the write.
func (h *Handler) cachedReply(r *dns.Msg, client netip.Addr, tcp bool) *[]byte {
	if r.Response || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return nil
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil
	}
	var edns uint8
	size := minUDPSize
	if opt := r.IsEdns0(); opt != nil {
		if opt.Version() != 0 {
			return nil
		}
		edns = 1
		if opt.Do() {
			edns = 2
		}
		size = max(minUDPSize, min(int(opt.UDPSize()), h.maxUDP))
	}
	if !h.ready() {
		return nil
	}
	g := h.networks()
	mask, ok := g.view(client)
	onDocker := mask != 0
	if !ok || !h.allow.allows(client, onDocker) {
		return nil
	}
	name := lowerASCII(q.Name)
	if _, inZone := splitRelative(name, h.zone); !inZone && !isReverseName(name) {
		return nil
	}
	if h.mode == AddressHost {
		mask = 0 // no answer depends on the client's networks
	}
	key := cacheKey{name: name, qtype: q.Qtype, view: mask, edns: edns}
	var e *cachedAnswer
	if v, hit := g.entries.Load(key); hit {
		e = v.(*cachedAnswer)
	} else if e = h.fill(key, client); e == nil {
		return nil
	} else if g.size.Load() < maxCacheEntries {
		if _, loaded := g.entries.LoadOrStore(key, e); !loaded {
			g.size.Add(1)
		}
	}
	wire := e.variants[0]
	if n := len(e.variants); n > 1 {
		wire = e.variants[rand.N(n)]
	}
	if !tcp && len(wire) > size {
		return nil // needs truncating: the slow path keeps whole records
	}
	buf := replyPool.Get().(*[]byte)
	b := append((*buf)[:0], wire...)
	b[0], b[1] = byte(r.Id>>8), byte(r.Id)
	if r.RecursionDesired {
		b[2] |= 0x01
	}
	if h.fwd != nil && h.recursion.allows(client, onDocker) {
		b[3] |= 0x80 // RA
	}
	if r.CheckingDisabled {
		b[3] |= 0x10
	}
	if name != q.Name {
		// Echo the question's own case: same length, so the records that
		// point at the question by compression follow it.
		if _, err := dns.PackDomainName(q.Name, b, headerLen, nil, false); err != nil {
			replyPool.Put(buf)
			return nil
		}
	}
	*buf = b
	h.met.countRcode(q.Qtype, e.rcode)
	return buf
}

// headerLen is the length of a DNS header; the question starts after it.
const headerLen = 12

// fill answers key as the slow path would, for a client with key's view,
// and packs the reply in up to maxVariants orders. It returns nil for what
// is not cached.
func (h *Handler) fill(key cacheKey, client netip.Addr) *cachedAnswer {
	resp := new(dns.Msg)
	resp.Response = true
	resp.Question = []dns.Question{{Name: key.name, Qtype: key.qtype, Qclass: dns.ClassINET}}
	var opt *dns.OPT
	if key.edns > 0 {
		resp.SetEdns0(uint16(h.maxUDP), key.edns == 2)
		opt = resp.IsEdns0()
	}
	res, ours := h.local(resp, resp.Question[0], view{mode: h.mode, client: client}, false)
	if !ours || resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil
	}
	resp.Compress = true
	n := len(res.answer)
	variants := 1
	if n > 1 {
		variants = min(n, maxVariants)
		shuffle(res)
	}
	e := &cachedAnswer{rcode: resp.Rcode, variants: make([][]byte, 0, variants)}
	for i := range variants {
		rot := result{answer: rotate(res.answer, i*n/variants)}
		if res.glue != nil {
			rot.glue = rotate(res.glue, i*n/variants)
		}
		rot.assemble(resp, n, opt)
		wire, err := resp.Pack()
		if err != nil {
			h.log.Warn("pack answer", "question", key.name, "err", err)
			return nil
		}
		e.variants = append(e.variants, wire)
	}
	return e
}

// rotate returns a copy of s starting at s[k].
func rotate[T any](s []T, k int) []T {
	out := make([]T, 0, len(s))
	return append(append(out, s[k:]...), s[:k]...)
}

func isReverseName(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}
