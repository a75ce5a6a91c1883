package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// shuffled returns a copy of res in random order, leaving res as it is
// (the cache's records are shared by every reply made from them).
func (res result) shuffled() result {
	c := result{answer: append([]dns.RR(nil), res.answer...)}
	if res.glue != nil {
		c.glue = append([][]dns.RR(nil), res.glue...)
	}
	shuffle(c)
	return c
}

// fit puts as many answers, each with its glue, into resp as fit in size
// bytes (the request's: a whole message over TCP), whole records only,
// with TC set when any answer had to be left out. The answers kept are
// the client's stable subset (order.go).
func (h *Handler) fit(resp *dns.Msg, res result, size int, client netip.Addr) {
	resp.Compress = true
	opt := resp.IsEdns0()
	res.assemble(resp, len(res.answer), opt)
	if resp.Len() <= size {
		return
	}
	res.rank(client)
	// The largest n whose message fits: lengths grow with n, so a binary
	// search finds it in log2(len) packings.
	lo, hi := 0, len(res.answer) // fits(lo) is assumed; hi does not fit
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		res.assemble(resp, mid, opt)
		if resp.Len() <= size {
			lo = mid
		} else {
			hi = mid
		}
	}
	shuffle(res.head(lo))
	res.assemble(resp, lo, opt)
	resp.Truncated = true
	h.met.truncated.Inc()
}

// assemble puts the first n answers into resp, with their glue, each
// record once, and opt (if not nil) last.
func (res result) assemble(resp *dns.Msg, n int, opt *dns.OPT) {
	resp.Answer = res.answer[:n]
	resp.Extra = resp.Extra[:0]
	if res.glue != nil {
		for _, g := range res.glue[:n] {
			for _, rr := range g {
				if !containsRR(resp.Extra, rr) {
					resp.Extra = append(resp.Extra, rr)
				}
			}
		}
	}
	if opt != nil {
		resp.Extra = append(resp.Extra, opt)
	}
}

func containsRR(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}
