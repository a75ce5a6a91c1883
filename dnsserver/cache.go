package dnsserver

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"sync"

	"github.com/miekg/dns"
)

// The answer cache, a layer in front of the lookup (as CoreDNS's cache
// plugin is in front of the next handler). Answers of the zone are a pure
// function of the catalog at one index, the question (lower-cased), the
// Docker networks the client is on and whether it sent EDNS0 with DO. So
// each is looked up once per catalog index, kept as its records and
// packed once: a repeated question costs a map lookup, a copy,
// and rewriting the ID, the RD/CD/RA bits and the question's case; a
// client with less room than the packed reply gets the kept records fitted
// to its size, with no second lookup. When the catalog index moves, the
// whole generation is dropped and the next queries look up again: a
// cached answer is never older than the catalog.
//
// The cache keeps NOERROR and NXDOMAIN answers of the zone and of known
// reverse names, for class IN. Everything else goes on from the same
// lookup (respond): forwarded names, refusals, SERVFAIL; and queries the
// cache never sees: malformed ones, everything before the first Docker
// sync (whose NXDOMAINs turn into SERVFAIL), clients on a network past
// maxKeyNetworks.

const (
	// maxCacheEntries bounds one generation, so a flood of random names
	// cannot grow memory; past it answers are packed but not kept.
	maxCacheEntries = 16384
	// maxVariants is how many orders of a multi-record answer are kept.
	// They are rotations of one shuffle, so with n ≤ maxVariants records
	// every record comes first equally often.
	maxVariants = 16
	// maxKeyNetworks is how many Docker networks a cache key can tell
	// apart; a client on a later network skips the cache.
	maxKeyNetworks = 64
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

// cachedAnswer is one question's answer: its packed replies (ID 0,
// question lower case, RD, CD and RA clear), and the records they were
// packed from, for clients that need them fitted.
type cachedAnswer struct {
	variants [][]byte
	rcode    int
	name     string // the question, lower case
	res      result // read-only: shared by every reply made from it
	ns       []dns.RR
}

// currentGeneration returns the generation of the catalog's current index,
// making a new one when the index moved.
func (h *Handler) currentGeneration() *generation {
	idx := h.cat.Index()
	if g := h.gen.Load(); g != nil && g.index == idx {
		return g
	}
	g := &generation{index: idx, prefixes: h.cat.Networks(), entries: make(map[string]*cachedAnswer)}
	h.gen.Store(g)
	return g
}

// networksOf returns the bit set of the networks client is on; ok is
// false when it is on a network past maxKeyNetworks.
func (g *generation) networksOf(client netip.Addr) (mask uint64, ok bool) {
	for i, p := range g.prefixes {
		if p.Contains(client) {
			if i >= maxKeyNetworks {
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

// keyHeader is the part of a cache key before the name: EDNS state, the
// client's networks, query type.
const keyHeader = 1 + 8 + 2

// appendKey appends the cache key of a question: what answers depend on,
// then the name in wire format, lower-cased.
func appendKey(dst []byte, edns uint8, nets uint64, qtype uint16, wireName []byte) []byte {
	dst = append(dst, edns,
		byte(nets>>56), byte(nets>>48), byte(nets>>40), byte(nets>>32), byte(nets>>24), byte(nets>>16), byte(nets>>8), byte(nets),
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

// cacheKey appends the cache key of req to dst and reports whether the
// cache answers req: a client allowed to ask, class IN, the catalog
// complete, a client whose networks make a key, a name of the zone or a
// reverse name (told from the key's name, lower case already).
func (h *Handler) cacheKey(dst []byte, req *request, acc *access) (key []byte, ok bool) {
	if !acc.allowed || req.qclass != dns.ClassINET || !acc.keyed || !h.ready() {
		return dst, false
	}
	key = appendKey(dst, req.edns, acc.mask, req.qtype, req.wireName())
	return key, h.inZoneOrReverse(key[keyHeader:])
}

// cachedReply is the UDP read loop's way in: it appends the cached reply
// to req to dst when the cache holds one that fits the client as packed.
// ok is false for anything else (a miss, a query the cache does not keep,
// a reply to fit), which the slow path answers with respond.
func (h *Handler) cachedReply(dst []byte, req *request) (_ []byte, ok bool) {
	acc := h.access(req.client)
	var keyBuf [keyHeader + maxWireName]byte
	key, ok := h.cacheKey(keyBuf[:0], req, &acc)
	if !ok {
		return dst, false
	}
	e := acc.gen.get(key)
	if e == nil {
		return dst, false
	}
	wire := e.variant()
	if len(wire) > req.size {
		return dst, false
	}
	h.met.countRcode(req.qtype, e.rcode)
	b := append(dst, wire...)
	req.patchReply(b, acc.ra)
	return b, true
}

// fromCache is the cache layer of respond, for a query the cache keeps
// (key, from cacheKey): a hit is written from its entry; a miss is looked
// up once, kept when its answer is one the cache keeps, and written the
// same way. hit is false when the answer is not kept; then out is what
// the lookup found, for respond to finish without looking up again.
func (h *Handler) fromCache(dst []byte, req *request, acc *access, key []byte) (_ []byte, out found, hit bool) {
	e := acc.gen.get(key)
	if e == nil {
		name, _, err := dns.UnpackDomainName(key[keyHeader:], 0)
		if err != nil {
			return dst, found{}, false
		}
		out = h.lookup(name, req.qtype, h.viewOf(req.client))
		if !out.ours || out.rcode != dns.RcodeSuccess && out.rcode != dns.RcodeNameError {
			return dst, out, false
		}
		if e = h.newEntry(name, req.qtype, req.edns, out); e == nil {
			return dst, out, false
		}
		acc.gen.put(key, e)
	}
	h.met.countRcode(req.qtype, e.rcode)
	var b []byte
	if wire := e.variant(); len(wire) <= req.size {
		b = append(dst, wire...)
	} else {
		var err error
		if b, err = packInto(dst, h.fitEntry(e, req)); err != nil {
			h.log.Warn("pack answer", "question", e.name, "err", err)
			return nil, found{}, true
		}
	}
	req.patchReply(b, acc.ra)
	return b, found{}, true
}

// variant returns one of e's packed orders, at random.
func (e *cachedAnswer) variant() []byte {
	if n := len(e.variants); n > 1 {
		return e.variants[rand.N(n)]
	}
	return e.variants[0]
}

// fitEntry is the reply to req from e's records, in random order, fitted
// to the client's size: what a client gets when the packed reply is too
// large for it.
func (h *Handler) fitEntry(e *cachedAnswer, req *request) *dns.Msg {
	resp := &dns.Msg{Question: []dns.Question{{Name: e.name, Qtype: req.qtype, Qclass: dns.ClassINET}}}
	resp.Response, resp.Authoritative, resp.Rcode, resp.Ns = true, true, e.rcode, e.ns
	if req.edns != ednsNone {
		resp.SetEdns0(uint16(h.maxUDP), req.edns == ednsDO)
	}
	h.fit(resp, e.res.shuffled(), req.size, req.client)
	return resp
}

// newEntry packs a lookup's outcome for a question (name lower case) in
// up to maxVariants orders. It returns nil when the answer does not pack.
func (h *Handler) newEntry(name string, qtype uint16, edns uint8, out found) *cachedAnswer {
	resp := &dns.Msg{Question: []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}}
	resp.Response, resp.Authoritative, resp.Rcode, resp.Ns, resp.Compress = true, true, out.rcode, out.ns, true
	var opt *dns.OPT
	if edns != ednsNone {
		resp.SetEdns0(uint16(h.maxUDP), edns == ednsDO)
		opt = resp.IsEdns0()
	}
	res := out.res
	n := len(res.answer)
	variants := 1
	if n > 1 {
		variants = min(n, maxVariants)
		shuffle(res)
	}
	e := &cachedAnswer{rcode: out.rcode, name: name, res: res, ns: out.ns, variants: make([][]byte, 0, variants)}
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

// Reverse zones, in wire format.
var (
	wireInAddrArpa = []byte("\x07in-addr\x04arpa\x00")
	wireIP6Arpa    = []byte("\x03ip6\x04arpa\x00")
)

// inZoneOrReverse reports whether a wire-format name in lower case (a
// cache key's) is in the zone or a reverse zone, whole labels compared.
// The zones are lower case too, so this is a byte comparison: it runs for
// every query the read loop answers, where bytes.EqualFold (which goes
// byte by byte before it looks at lengths) cost 250 instructions a query.
func (h *Handler) inZoneOrReverse(lower []byte) bool {
	for off := 0; off < len(lower) && lower[off] != 0; off += int(lower[off]) + 1 {
		rest := lower[off:]
		if bytes.Equal(rest, h.zoneWire) || bytes.Equal(rest, wireInAddrArpa) || bytes.Equal(rest, wireIP6Arpa) {
			return true
		}
	}
	return len(h.zoneWire) == 1 // the root zone: every name
}
