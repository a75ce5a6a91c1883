// Package watcher is svcdns's registration service: it keeps the catalog
// equal to the running containers of one Docker host.
//
//	w, err := watcher.New(watcher.Config{
//		Catalog: cat,
//		Node:    "node-1",
//		Filters: []string{"label=env=prod"}, // optional
//		Logger:  logger.With("component", "watcher"),
//	})
//	if err != nil {
//		return err
//	}
//	go w.Run(ctx)    // returns nil when ctx is done; never gives up on Docker
//	ready := w.Synced // for the DNS server: SERVFAIL, not NXDOMAIN, until true
//
// Each connection to Docker runs these steps:
//
//  1. subscribe to container and network events;
//  2. apply events, on one goroutine, in order;
//  3. meanwhile, at once and then every Config.Resync, a full sync: list
//     the running containers and inspect each, beside the event loop, then
//     replace the node's Docker containers in the catalog with what it
//     found, in one transaction (catalog.ReplaceNode), except those that had
//     an event since the sync read them: the event is newer, and wins.
//
// An event is never trusted for what it says: it only names a container to
// inspect again, and what the inspect finds is stored (or the container is
// removed when it is gone, stopped or filtered out). Events that arrive
// while the watcher is busy are merged per container, so a burst of health
// events costs one inspect. When the stream breaks, the catalog keeps what
// it has, and the watcher reconnects with capped exponential backoff and
// lists everything again, which repairs whatever happened in the gap.
//
// Two kinds of event act before their inspect returns. die, stop, destroy
// and pause take the container out of the answers at once. docker stop's
// kill event comes when the stop signal is sent, up to the stop timeout
// before the process exits and die comes: when the signal stops the container (TERM, INT, QUIT, KILL, or its
// own StopSignal), the container leaves the answers at once, kept in the
// catalog as not passing, and is held so until it exits, or until its stop
// timeout has passed and an inspect finds it still running (drain.go).
//
// A failed request is that container's problem, not the connection's: a
// failed inspect is retried on its own with backoff while everything else
// goes on, a full sync writes what it could inspect and keeps the catalog's
// record of a container it could not, and a failed list is tried again on
// the same stream. Only a failure of the stream itself ends a connection.
// The inspects in flight adapt to the endpoint (limit.go: additive
// increase, multiplicative decrease between 1 and 32).
//
// The mapping from a container to instances (convert.go) follows DESIGN.md:
// one instance per exposed tcp/udp port (or one with port 0 when none is
// exposed), carrying the container's address on each of its networks and
// the published host address; the service name from SERVICE_<port>_NAME,
// SERVICE_NAME, the Compose service or the image's base name; tags from
// SERVICE_TAGS; SERVICE_IGNORE to leave a container or port out. Names that
// are not one DNS label are refused with a WARN line naming the container
// and a count in svcdns_watcher_rejected_names_total.
//
// The code is split by role: watcher.go (Config, Status, Run's reconnect
// loop), session.go (one connection's event loop), sync.go (the full list
// and replace), queue.go (the one queue of containers to inspect again),
// refresh.go (the inspects after events), limit.go (how many inspects at
// a time, and the endpoint's failing and recovered log lines), store.go
// (the catalog writes), drain.go (holding a container sent its stop
// signal out of the answers), changelog.go (the log lines about what changed),
// docker.go (the Docker API, in the watcher's terms), convert.go
// (container to instances, with labels.go and metricslabels.go reading the
// labels) and ping.go (svcdns check's probe). Only docker.go and
// convert.go use the Docker SDK's types.
//
// The watcher only reads from Docker (GET /_ping, /containers/json,
// /containers/{id}/json, /networks, /events), so it runs behind a
// read-only socket proxy. The network list (at each full sync, and again
// on a network's create or removal; beside the event loop, netlist.go)
// tells which networks span hosts (scope swarm or global: overlays);
// addresses on them are marked so, and the networks go to the catalog
// (catalog.Network).
package watcher
