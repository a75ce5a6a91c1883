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
//  2. list the running containers and inspect each;
//  3. replace the node's Docker containers in the catalog with what the list
//     found, in one transaction (catalog.ReplaceNode);
//  4. apply events, on one goroutine, in order, with a full resync every
//     Config.Resync.
//
// An event is never trusted for what it says: it only names a container to
// inspect again, and what the inspect finds is stored (or the container is
// removed when it is gone, stopped or filtered out). Events that arrive
// while the watcher is busy are merged per container, so a burst of health
// events costs one inspect. When the stream breaks, the catalog keeps what
// it has, and the watcher reconnects with capped exponential backoff and
// lists everything again, which repairs whatever happened in the gap.
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
// The watcher only reads from Docker (GET /_ping, /containers/json,
// /containers/{id}/json, /events), so it runs behind a read-only socket
// proxy.
package watcher
