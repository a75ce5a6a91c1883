package watcher

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The network list (GET /networks) says which networks span hosts;
// inspects map a container's addresses with the last list applied
// (daemon.nets). A list is due at a session's start, before each full
// sync, after a network's create or removal, and at a failed list's
// retry. Like a full sync, it runs beside the session loop: a list the
// daemon holds (up to callTimeout) holds up no event, and its result is
// applied on the loop. One list is in flight at a time; one asked for
// meanwhile is sent when it ends, however many were asked for, so a
// network created after the list in flight was sent is listed too.
//
// Why no container is stored with a stale network view: an inspect notes
// the container's networks that the list it was mapped with lacks
// (mapped.unlisted). Such a result is not stored while a list is due or
// in flight (a network event came, and the network may be one it
// created): the container is parked and inspected again once the lists
// have ended. Nor is one mapped before a list that has the network was
// applied: it is inspected again at once. A container whose networks are
// all listed is mapped alike by any newer list (a network's id and scope
// never change), so its inspect is stored whatever list is under way:
// start and die events go on applying. A full sync reads only after the
// list it asked for has ended, and its reads are held to the same rule.
//
// A list that fails keeps the networks listed before. While lists fail,
// nothing waits for them: a container on a network the networks kept lack
// is stored as on a local one, as before the failure, and a full sync
// maps every container again when the list, once it works, changed which
// networks span hosts (networkList's remap).

// netLister sends the session's network lists, one at a time. It is
// used on the session's goroutine; the lists run on goroutines of their
// own, which the session's wait group ends.
type netLister struct {
	list     func(context.Context) ([]catalog.Network, error)
	wg       *sync.WaitGroup
	done     chan networkList // one list in flight: its send never blocks
	inFlight bool
	wanted   bool   // a list was asked for while one was in flight
	sent     uint64 // lists sent so far
}

// networkList is one list's result.
type networkList struct {
	n    uint64 // the n-th list sent
	nets []catalog.Network
	err  error
}

func newNetLister(list func(context.Context) ([]catalog.Network, error), wg *sync.WaitGroup) *netLister {
	return &netLister{list: list, wg: wg, done: make(chan networkList, 1)}
}

// request asks for a list sent from now on and returns its number: sent
// now, or when the one in flight ends.
func (l *netLister) request(ctx context.Context) uint64 {
	if l.inFlight {
		l.wanted = true
		return l.sent + 1
	}
	l.send(ctx)
	return l.sent
}

func (l *netLister) send(ctx context.Context) {
	l.inFlight, l.wanted = true, false
	l.sent++
	n := l.sent
	l.wg.Go(func() {
		nets, err := l.list(ctx)
		l.done <- networkList{n: n, nets: nets, err: err}
	})
}

// finish ends the list in flight, sends the one asked for meanwhile, and
// reports whether none is in flight any more.
func (l *netLister) finish(ctx context.Context) (idle bool) {
	l.inFlight = false
	if l.wanted {
		l.send(ctx)
	}
	return !l.inFlight
}

// listing reports whether a network list is in flight or due while
// lists work: an inspect mapped meanwhile with a list that lacks a
// container's network waits for it. While they fail (the last one did),
// nothing waits: such a container is stored as on a local network, and
// mapped again by the full sync that follows the list that works.
func (w *Watcher) listing(q *queue, nl *netLister) bool {
	return !w.netsFailing && w.netsRetries == 0 && (nl.inFlight || q.networksDue())
}

// needsNetworks reports whether m, just inspected, must not be stored yet:
// it is on a network that the list it was mapped with lacks, and a newer
// list is due (listing) or was applied since.
func (w *Watcher) needsNetworks(m mapped, listing bool) bool {
	return len(m.unlisted) > 0 && (listing || w.docker.listsAny(m.unlisted))
}

// park keeps id, whose inspect needsNetworks refused, for an inspect
// once the network lists have ended; at once when none is under way (a
// list applied since has its network). since is the arrival of the
// events the inspect was for.
func (w *Watcher) park(q *queue, id string, since time.Time, listing bool) {
	w.log.Debug("container on a network not yet listed, inspected again after the network list", "id", shortID(id), "listing", listing)
	q.park(id, since)
	if !listing {
		q.unpark()
	}
}

// finishNetworks applies a network list's result and sends the one asked
// for meanwhile; once none is in flight, the parked containers are
// inspected again. remap is networkList's.
func (w *Watcher) finishNetworks(ctx context.Context, q *queue, nl *netLister, res networkList) (remap bool) {
	remap = w.networkList(ctx, q, res.nets, res.err)
	if nl.finish(ctx) {
		q.unpark()
	}
	return remap
}

// networkList applies a network list's result, on the session loop: the
// networks go to the catalog and to the inspects that follow. A failed
// list fails no sync and keeps the networks known before. A refused,
// dropped, timed-out or 5xx list is the endpoint struggling: told by its
// two lines (endpoint) and retried through q with backoff, like a failed
// inspect. Any other failure (a read-only socket proxy that does not
// allow /networks answers 403: containers on networks that span hosts
// are then answered as on local ones) is logged once until a list works
// again, and tried again at the next full sync or network event.
//
// remap reports a list that worked after a failed one and changed which
// networks span hosts: the containers inspected meanwhile were mapped
// with the networks known before, and want a full sync.
func (w *Watcher) networkList(ctx context.Context, q *queue, nets []catalog.Network, err error) (remap bool) {
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if f := classify(err); f.overloaded() {
			w.endpoint.failed(f)
			w.netsRetries++
			d := backoff(w.netsRetries, w.tunables.retryMin, w.tunables.retryMax)
			q.retryNetworks(d)
			w.log.Debug("docker network list failed, retrying; the networks listed before are kept", "delay", d.Round(time.Millisecond), "err", err)
			return false
		}
		if !w.netsFailing {
			w.log.Warn("docker network list failed: containers on networks that span hosts (overlays) are answered as on local ones until it works", "err", err)
		}
		w.netsFailing = true
		return false
	}
	w.endpoint.succeeded()
	failedBefore := w.netsFailing || w.netsRetries > 0
	w.netsFailing, w.netsRetries = false, 0
	var spanning []string
	for _, n := range nets {
		if n.SpansHosts {
			spanning = append(spanning, n.Name)
		}
	}
	slices.Sort(spanning)
	level := slog.LevelDebug
	if !slices.Equal(spanning, w.spanning) {
		level = slog.LevelInfo
		w.spanning = spanning
		remap = failedBefore
	}
	w.log.Log(ctx, level, "docker networks listed", "networks", len(nets), "spanning_hosts", spanning)
	w.docker.useNetworks(nets)
	if _, err := w.store.cat.ReplaceNetworks(nets); err != nil {
		w.log.Error("store docker networks", "err", err) // convertNetworks keeps out what the catalog refuses
	}
	return remap
}
