package dnsserver

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"sync"

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
// Docker networks at that index. Entries are keyed by appendKey's bytes,
// so a lookup from a packet's bytes allocates nothing.
type generation struct {
	index    uint64
	prefixes []netip.Prefix
	mu       sync.RWMutex
	entries  map[string]*cachedAnswer
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
	g := &generation{index: idx, prefixes: prefixes, entries: make(map[string]*cachedAnswer)}
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

func (g *generation) get(key []byte) *cachedAnswer {
	g.mu.RLock()
	e := g.entries[string(key)]
	g.mu.RUnlock()
	return e
}

func (g *generation) put(key []byte, e *cachedAnswer) {
	g.mu.Lock()
	if len(g.entries) < maxCacheEntries {
		g.entries[string(key)] = e
	}
	g.mu.Unlock()
}

func (g *generation) len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.entries)
}

// keyHeader is the part of a cache key before the name: EDNS state, view,
// query type.
const keyHeader = 1 + 8 + 2

// appendKey appends the cache key of a question: what answers depend on,
// then the name in wire format, lower-cased.
func appendKey(dst []byte, edns uint8, view uint64, qtype uint16, wireName []byte) []byte {
	dst = append(dst, edns,
		byte(view>>56), byte(view>>48), byte(view>>40), byte(view>>32), byte(view>>24), byte(view>>16), byte(view>>8), byte(view),
		byte(qtype>>8), byte(qtype))
	n := len(dst)
	dst = append(dst, wireName...)
	for i := n; i < len(dst); i++ {
		// Length bytes are below 64, so only letters are changed.
		if c := dst[i]; c >= 'A' && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst
}

// cacheQuery is what the cache needs of a query, from a *dns.Msg or
// straight from a packet.
type cacheQuery struct {
	id       uint16
	rd, cd   bool
	qtype    uint16
	edns     uint8  // 0: no OPT, 1: OPT, 2: OPT with DO
	size     int    // the client's UDP size; 0 over TCP
	wireName []byte // the question's name in wire format, its case as sent
}

// cachedReply answers r from the cache, filling it on a miss, or returns
// nil when r must go the slow way. The buffer goes back to replyPool after
// the write.
func (h *Handler) cachedReply(r *dns.Msg, client netip.Addr, tcp bool) *[]byte {
	if r.Response || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return nil
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil
	}
	cq := cacheQuery{id: r.Id, rd: r.RecursionDesired, cd: r.CheckingDisabled, qtype: q.Qtype}
	if opt := r.IsEdns0(); opt != nil {
		if opt.Version() != 0 {
			return nil
		}
		cq.edns = 1
		if opt.Do() {
			cq.edns = 2
		}
		cq.size = max(minUDPSize, min(int(opt.UDPSize()), h.maxUDP))
	} else {
		cq.size = minUDPSize
	}
	if tcp {
		cq.size = 0
	}
	var nameBuf [maxWireName]byte
	n, err := dns.PackDomainName(q.Name, nameBuf[:], 0, nil, false)
	if err != nil {
		return nil
	}
	cq.wireName = nameBuf[:n]
	buf := replyPool.Get().(*[]byte)
	b := h.fromCache((*buf)[:0], &cq, client, true)
	if b == nil {
		replyPool.Put(buf)
		return nil
	}
	*buf = b
	return buf
}

// maxWireName is the longest name in wire format (RFC 1035 3.1).
const maxWireName = 255

// fromCache appends the reply to cq from the cache to dst and returns it,
// or returns nil when the query must go the slow way: not ready, not
// allowed, not a name of the zone or a reverse name, a miss when fill is
// false, or too large for the client's UDP size.
func (h *Handler) fromCache(dst []byte, cq *cacheQuery, client netip.Addr, fill bool) []byte {
	if !h.ready() || !h.inZoneOrReverse(cq.wireName) {
		return nil
	}
	g := h.networks()
	mask, ok := g.view(client)
	onDocker := mask != 0
	if !ok || !h.allow.allows(client, onDocker) {
		return nil
	}
	if h.mode == AddressHost {
		mask = 0 // no answer depends on the client's networks
	}
	var keyBuf [keyHeader + maxWireName]byte
	key := appendKey(keyBuf[:0], cq.edns, mask, cq.qtype, cq.wireName)
	e := g.get(key)
	if e == nil {
		if !fill {
			return nil
		}
		name, _, err := dns.UnpackDomainName(key[keyHeader:], 0)
		if err != nil {
			return nil
		}
		if e = h.fill(name, cq.qtype, cq.edns, client); e == nil {
			return nil
		}
		g.put(key, e)
	}
	wire := e.variants[0]
	if n := len(e.variants); n > 1 {
		wire = e.variants[rand.N(n)]
	}
	if cq.size > 0 && len(wire) > cq.size {
		return nil // needs truncating: the slow path keeps whole records
	}
	b := append(dst, wire...)
	b[0], b[1] = byte(cq.id>>8), byte(cq.id)
	if cq.rd {
		b[2] |= 0x01
	}
	if h.fwd != nil && h.recursion.allows(client, onDocker) {
		b[3] |= 0x80 // RA
	}
	if cq.cd {
		b[3] |= 0x10
	}
	// The question as sent, its case included: same length, so records
	// that point at the question by compression follow it.
	copy(b[headerLen:], cq.wireName)
	h.met.countRcode(cq.qtype, e.rcode)
	return b
}

// headerLen is the length of a DNS header; the question starts after it.
const headerLen = 12

// Reverse zones, in wire format.
var (
	wireInAddrArpa = []byte("\x07in-addr\x04arpa\x00")
	wireIP6Arpa    = []byte("\x03ip6\x04arpa\x00")
)

// inZoneOrReverse reports whether a wire-format name is in the zone or a
// reverse zone: whole labels compared, ASCII case ignored.
func (h *Handler) inZoneOrReverse(name []byte) bool {
	for off := 0; off < len(name) && name[off] != 0; off += int(name[off]) + 1 {
		rest := name[off:]
		if bytes.EqualFold(rest, h.zoneWire) || bytes.EqualFold(rest, wireInAddrArpa) || bytes.EqualFold(rest, wireIP6Arpa) {
			return true
		}
	}
	return bytes.Equal(h.zoneWire, []byte{0})
}

// fill answers a question (name lower case) as the slow path would, for a
// client with the given view, and packs the reply in up to maxVariants
// orders. It returns nil for what is not cached.
func (h *Handler) fill(name string, qtype uint16, edns uint8, client netip.Addr) *cachedAnswer {
	resp := new(dns.Msg)
	resp.Response = true
	resp.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	var opt *dns.OPT
	if edns > 0 {
		resp.SetEdns0(uint16(h.maxUDP), edns == 2)
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
			h.log.Warn("pack answer", "question", name, "err", err)
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
