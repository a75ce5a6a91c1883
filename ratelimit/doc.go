// Package ratelimit limits the rate of UDP responses per client network, to
// keep svcdns from being used to amplify a spoofed flood.
//
// A Limiter keeps one token bucket per client prefix (/24 for IPv4 and /56
// for IPv6 by default): qps tokens per second, bursts of up to qps. Allow
// takes a token, or reports false when the prefix has used up its rate.
// IPv4-mapped IPv6 addresses count as IPv4, and zones are ignored.
//
//	lim := ratelimit.New(cfg.RateLimit, 24, 56) // nil when cfg.RateLimit <= 0
//	...
//	if !lim.Allow(client) { // safe on a nil *Limiter: always true
//		// slip: answer empty with TC=1, so a real client retries over TCP
//	}
//
// The limiter only counts. The caller decides what a false means — the
// dnsserver UDP server sends a truncated, empty reply ("slip"), which costs a
// spoofed victim less than the answer would and moves a real client to TCP,
// where source addresses cannot be forged and no limit applies. Call Allow
// for UDP responses only.
//
// It limits responses per client prefix, whatever the name or answer: a
// simpler rule than BIND's RRL, which keys on (prefix, response), and
// enough for svcdns, whose clients are containers asking few names.
//
// # Off
//
// New returns nil when qps <= 0, and a nil *Limiter allows everything, so
// the result of New can be passed on as is. (A nil *Limiter stored in an
// interface is not a nil interface; it still works, it is just not "none".)
//
// # Memory
//
// At most MaxPrefixes prefixes are tracked, in sharded maps. When a shard is
// full, it first drops every bucket that has been idle long enough to be
// full again — forgetting it changes nothing — scanning at most once a
// second; if every bucket is in use (more than MaxPrefixes prefixes active
// within one second) it drops one at random, which can hand that prefix a
// fresh burst. Under such a flood the limit degrades gracefully; memory
// stays bounded (a few MiB).
package ratelimit
