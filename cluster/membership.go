package cluster

import (
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/svcdns/svcdns/catalog"
)

// How memberlist's view of the members changes what is held and shown.

// memberUp marks name alive (or suspect) at addr; inc is the incarnation
// in its node meta (0: unknown). Its records are shown unless inc says
// they are of an older incarnation.
func (h *holder) memberUp(name, st string, addr netip.AddrPort, inc uint64) {
	if name == h.self {
		return
	}
	o := h.get(name)
	if !o.member {
		h.log.Info("cluster: node up", "node", name, "addr", addr, "incarnation", inc)
		// What it changed while away (or since it started) may never
		// reach here as deltas: ask it for its state at once.
		o.askNow, o.asked, o.askAgain = true, time.Time{}, 0
	}
	o.member, o.state, o.addr, o.touched = true, st, addr, h.now()
	o.metaInc = max(o.metaInc, inc)
	if inc > o.ver.Incarnation && !o.ver.IsZero() {
		// Restarted: what is held is its previous life.
		ch := h.clear(o)
		o.ver, o.ahead, o.tombs, o.resyncAt = Version{}, nil, nil, 0
		h.write(o, ch)
		o.needState = true
		h.gap(o)
		h.pendNotify = true
	}
	// <name>.node.<zone> answers its address while it is live.
	ch := []catalog.Change{{Node: &catalog.Node{Name: name, Addr: addr.Addr()}}}
	if !o.shown {
		o.shown = true
		for id, hr := range o.records {
			rec, err := hr.record(name)
			if err != nil { // held records decoded once already
				h.log.Error("cluster: held record unreadable", "owner", name, "container", id, "err", err)
				continue
			}
			ch = append(ch, catalog.Change{Put: &rec})
		}
	}
	h.write(o, ch)
}

// left handles owner's announcement of a graceful leave: its records of
// incarnation inc (or older) are removed and forgotten. It reports whether
// the news was new, to be relayed. A leave of a life older than the one
// memberlist has shown up since (a node that left and came back at once,
// its leave relayed late) is stale, whether or not anything of the new
// life is held yet.
func (h *holder) left(owner string, inc uint64) bool {
	o := h.owners[owner]
	if o == nil || owner == h.self || o.state == "left" || max(o.ver.Incarnation, o.metaInc) > inc {
		return false
	}
	h.memberDown(owner, true)
	return true
}

// memberDown takes name's records out of the store: left forgets them,
// dead keeps them to show again if it comes back. memberlist does not
// tell the two apart (its Node.State is not kept up to date): a node
// leaving gracefully says so itself with a leave message.
func (h *holder) memberDown(name string, left bool) {
	o := h.owners[name]
	if o == nil || name == h.self || o.state == "left" {
		return
	}
	o.member, o.touched = false, h.now()
	o.state = "dead"
	if left {
		o.state = "left"
	}
	h.log.Info("cluster: node down, its records removed", "node", name, "state", o.state, "instances", o.instances)
	ch := []catalog.Change{{DeleteNode: name}}
	if o.shown {
		for id, hr := range o.records {
			ch = append(ch, catalog.Change{Delete: storeID(name, id, hr.api)})
		}
		o.shown = false
	}
	h.write(o, ch)
	if left {
		o.records, o.instances, o.ver, o.pending = make(map[string]heldRecord), 0, Version{}, nil
		o.ahead, o.tombs, o.resyncAt = nil, nil, 0
		o.needState, o.gapSince = false, time.Time{}
		h.pendNotify = true
	}
}

// liveNodes lists the peers held live with their gossip addresses, as
// memberlist nodes of their own: the *memberlist.Node values memberlist
// hands out are its own state, rewritten in place (a restarted node's new
// address) without a lock the caller could take.
func (h *holder) liveNodes() map[string]*memberlist.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]*memberlist.Node, len(h.owners))
	for name, o := range h.owners {
		if o.member && o.addr.IsValid() {
			out[name] = &memberlist.Node{Name: name, Addr: o.addr.Addr().AsSlice(), Port: o.addr.Port()}
		}
	}
	return out
}

// liveAddrSet is the set of the gossip addresses of the peers held live.
func (h *holder) liveAddrSet() map[netip.AddrPort]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[netip.AddrPort]bool, len(h.owners)+1)
	for _, o := range h.owners {
		if o.member && o.addr.IsValid() {
			out[o.addr] = true
		}
	}
	return out
}

// deadAddrs lists the gossip addresses of the peers held dead (not left).
func (h *holder) deadAddrs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, o := range h.owners {
		if !o.member && o.state == "dead" && o.addr.IsValid() {
			out = append(out, o.addr.String())
		}
	}
	return out
}

// reap forgets owners that have not been members for keep.
func (h *holder) reap(keep time.Duration) {
	for name, o := range h.owners {
		if !o.member && h.now().Sub(o.touched) > keep {
			delete(h.owners, name)
		}
	}
}
