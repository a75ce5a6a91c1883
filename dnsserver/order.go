package dnsserver

import (
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// The order of answers.
//
// A full answer lists its records in random order, so that clients that
// take the first record spread over all instances.
//
// An answer cut to fit a UDP client keeps a stable subset: the records
// ranked highest by rendezvous (highest random weight) hashing of the
// client's address and each record's data. Some clients use truncated
// answers as they are: HAProxy's server-template fills its server slots
// from them, and a random subset each time makes it drop and add servers
// on every resolution. With the rendezvous rank:
//   - a client gets the same subset on every query while the instances do
//     not change, from every svcdns replica alike (the hash has no seed);
//   - an instance added or removed changes at most one member of the
//     subset;
//   - different clients get different subsets, so a fleet of clients that
//     each use a truncated answer still spreads over all instances. One
//     client alone sends nothing to the instances outside its subset: a
//     client that should use them all asks over TCP or with a larger EDNS
//     size (README, HAProxy).
//
// Within the subset the order is random again.

// shuffle puts the answers, each with its glue, in random order.
func shuffle(res result) {
	rand.Shuffle(len(res.answer), func(i, j int) {
		res.answer[i], res.answer[j] = res.answer[j], res.answer[i]
		if res.glue != nil {
			res.glue[i], res.glue[j] = res.glue[j], res.glue[i]
		}
	})
}

// rank orders the answers, each with its glue, by their rendezvous weight
// for client, highest first; ties (equal data) keep their order.
func (res result) rank(client netip.Addr) {
	type ranked struct {
		weight uint64
		rr     dns.RR
		glue   []dns.RR
	}
	rs := make([]ranked, len(res.answer))
	c := client.Unmap().As16()
	for i, rr := range res.answer {
		rs[i] = ranked{weight: rendezvous(c[:], rdataKey(rr)), rr: rr}
		if res.glue != nil {
			rs[i].glue = res.glue[i]
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		switch {
		case a.weight > b.weight:
			return -1
		case a.weight < b.weight:
			return 1
		}
		return 0
	})
	for i, r := range rs {
		res.answer[i] = r.rr
		if res.glue != nil {
			res.glue[i] = r.glue
		}
	}
}

// head is the result's first n answers with their glue.
func (res result) head(n int) result {
	out := result{answer: res.answer[:n]}
	if res.glue != nil {
		out.glue = res.glue[:n]
	}
	return out
}

// rendezvous is the weight of a record for a client: FNV-1a over both,
// then a 64-bit finalizer (splitmix64's) so that keys differing in one
// byte get unrelated weights.
func rendezvous(client []byte, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(client)
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rdataKey is what identifies a record apart from its owner name (whose
// case follows the question, which resolvers randomise) and TTL.
func rdataKey(rr dns.RR) string {
	switch r := rr.(type) {
	case *dns.SRV:
		return strings.ToLower(r.Target) + " " + strconv.Itoa(int(r.Port))
	case *dns.A:
		return string(r.A.To4())
	case *dns.AAAA:
		return string(r.AAAA.To16())
	case *dns.PTR:
		return strings.ToLower(r.Ptr)
	}
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], rr.Header().Rrtype)
	return string(b[:]) + strings.TrimPrefix(rr.String(), rr.Header().String())
}
