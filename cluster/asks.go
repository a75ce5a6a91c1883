package cluster

import (
	"net/netip"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// Which peers' full states this node asks for, and how often.

// wanted lists the owners whose full state should be asked for now: a gap
// older than wait, a needed state, a member just come up or of which
// nothing is held; each at most once per every.
func (h *holder) wanted(wait, every time.Duration) []request {
	now := h.now()
	var out []request
	for _, o := range h.owners {
		gap := !o.gapSince.IsZero() && (o.needState || now.Sub(o.gapSince) >= wait)
		// A live member of which nothing is held is asked until its
		// state arrives: a first ask may be lost.
		unknown := o.ver.IsZero()
		if !o.member || !gap && !o.askNow && !unknown || !o.mayAsk(now, every) {
			continue
		}
		r := request{To: o.name, Wants: []digestEntry{{o.name, o.ver}}}
		if o.askNow {
			// This node's own version goes along: the node that came
			// up may have missed this node's changes, and no delta of
			// them may come again to show it the gap. Other owners'
			// states are not asked of it: each live one is asked
			// itself when it comes up, or sends its deltas here, and
			// a node held dead by mistake (too busy to answer probes)
			// holds nearly every owner a little newer under steady
			// changes: every member asking it for all of them would
			// make it send N states to each of N members.
			r.Wants = append(r.Wants, digestEntry{h.self, h.selfOwn.ver})
		}
		o.askNow = false
		o.ask(now, every)
		out = append(out, r)
	}
	return out
}

// maxAskAgain bounds the wait between asks for a state that does not come.
const maxAskAgain = 30 * time.Second

// mayAsk reports whether o's full state may be asked for at now: every
// after the last ask, twice as long after each ask that brought nothing,
// so that a node too busy to answer is not sent the same request (and
// then made to send the same state) again and again.
func (o *owner) mayAsk(now time.Time, every time.Duration) bool {
	return now.Sub(o.asked) >= max(every, o.askAgain)
}

// ask notes that o's full state is asked for at now.
func (o *owner) ask(now time.Time, every time.Duration) {
	o.asked = now
	o.askAgain = min(max(every, 2*o.askAgain), maxAskAgain)
}

// behind lists the owners of a digest that are newer there than here,
// with the version held here; with heldOnly, only owners of which
// something is held.
func (h *holder) behind(digest []digestEntry, every time.Duration, heldOnly bool) []digestEntry {
	now := h.now()
	var out []digestEntry
	for _, e := range digest {
		if e.Owner == h.self || !catalog.ValidLabel(e.Owner) {
			continue
		}
		o := h.owners[e.Owner]
		if heldOnly && (o == nil || o.ver.IsZero()) {
			continue
		}
		if o != nil && (!o.ver.Less(e.Version) || !o.mayAsk(now, every)) {
			continue
		}
		if o == nil {
			if len(h.owners) >= maxOwners {
				continue
			}
			o = h.get(e.Owner)
		}
		o.ask(now, every)
		out = append(out, digestEntry{Owner: e.Owner, Version: o.ver})
	}
	return out
}

// behindCount is how many live members are held with a gap open, a full
// state needed, or nothing held yet.
func (h *holder) behindCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, o := range h.owners {
		if o.member && (!o.gapSince.IsZero() || o.needState || o.ver.IsZero()) {
			n++
		}
	}
	return n
}

// askerPrefix marks the one want of a request that is no owner but the
// asker's gossip address, "@host:port". The node asked may not know the
// asker yet: memberlist announces a node that joins by gossip, sent a
// few times to the members its senders know then, so when many nodes
// join at once one may hear of another that never hears of it, until
// memberlist's next push/pull (30 s, longer above 32 nodes). Its answer
// would go nowhere, and the asker's records would stay out of its store.
// With the address it answers, and joins the asker. A node from before
// skips the want: "@" cannot start an owner's name, so the request
// format is unchanged.
const askerPrefix = "@"

// askerWant is the want that carries addr.
func askerWant(addr netip.AddrPort) digestEntry {
	return digestEntry{Owner: askerPrefix + addr.String()}
}

// askerAddr is the asker's address that wants carry, if any.
func askerAddr(wants []digestEntry) (netip.AddrPort, bool) {
	for _, w := range wants {
		if a, ok := strings.CutPrefix(w.Owner, askerPrefix); ok {
			ap, err := netip.ParseAddrPort(a)
			return ap, err == nil && ap.IsValid()
		}
	}
	return netip.AddrPort{}, false
}

// isMember reports whether name is held as a live member; h.mu is held.
func (h *holder) isMember(name string) bool {
	o := h.owners[name]
	return o != nil && o.member
}
