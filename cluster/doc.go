// Package cluster shares the catalog between svcdns nodes over
// hashicorp/memberlist (SWIM membership, failure detection, encrypted gossip
// and TCP push/pull). It is the only package that imports memberlist: what
// svcdns adds is what goes into memberlist's delegates.
//
// # Model
//
// Every record has one owner, the node whose Docker host runs the container
// or whose API received the registration, and only the owner changes it.
// A node's records carry a version: an incarnation chosen at start (the
// start time in nanoseconds, so a restarted node's is larger) and a
// sequence number raised with every change. After each change of its own
// records in the catalog the node sends a delta to every live member
// directly, in one UDP packet (memberlist's SendBestEffort, encrypted
// like gossip; from a bounded queue, so publishing never waits on the
// network, and a delta past it, or too big for a packet, goes by gossip
// only), and broadcasts it as well (memberlist's TransmitLimitedQueue,
// local deltas before relayed ones) as the backup for a lost packet. A
// node that applies a delta it did not hold relays it if it came by
// gossip, not if it came directly from its owner (every member got that
// one), so the direct send costs N-1 packets per change where relaying by
// every node cost RetransmitMult·log10(N+1) sends per node.
// Anti-entropy runs in memberlist's push/pull: a node sends a digest
// (owner, version) of every owner it holds, itself included; the other side
// asks the sender, in one request, for the full states of the owners it
// holds older, and gets them in one stream (a new node thus holds
// everyone's records one round trip after its join; the join's push/pull
// carries only the joining node's own state, since memberlist cannot tell
// it from a rejoin). A node that comes up (joins, or is back from a cut) is
// asked for its full state at once. A state asked for that does not come is
// asked for again, less and less often. A delta applies as soon as it
// arrives, in any order: each record keeps the sequence number that last
// wrote it, and a deleted one a tombstone, so a late delta never undoes a
// newer change; one older than what is held is dropped and counted. The
// version held is the end of an unbroken run of sequence numbers: a gap
// that does not fill within a few gossip rounds makes the node ask the
// owner for its full state. A full state replaces what is held of its owner
// in one catalog write (records that newer deltas wrote stay), and a newer
// incarnation replaces all the owner had. The states of one stream (a
// join's: every other node's) are written some 10,000 records at a time,
// never splitting one, in the stream's order, each told (Config.OnApply)
// once written; the apply goroutine writes, and another decodes the next
// states meanwhile, so a join takes about as long as the catalog's writes.
//
// Peers' records are written into the catalog under their owner (Node is
// the owner's name, Source its own source), with ids in the owner's
// namespace: a peer's container "<id>" is stored as "<owner>/<id>", its API
// instance "<id>" as "<owner>/<id>" (row "api/<owner>/<id>"). A peer can
// therefore never write another node's records, nor the local node's:
// deltas and states naming the local node as owner are dropped, and every
// record of a state must belong to the state's owner. Records of an owner
// are in the catalog only while memberlist holds it alive or suspect: a
// node declared dead has its records removed at once and put back at once
// when it comes back (the state is kept for a while); a node that leaves
// gracefully has its records removed and its state forgotten.
//
// Of a Docker container only its published host address and its
// addresses on networks that span hosts (attachable overlays, marked
// catalog.NetAddr.SpansHosts, with the network's id) travel: an address
// on a network local to the owner's host reaches nothing here. dnsserver
// answers a peer's overlay address only to a client on that network as
// this host knows it (catalog.Network), so a peer's prefix decides
// nothing. The network's id rides in the network name field, which nodes
// from before overlays read and drop for a Docker record.
//
// Everything else of an instance that a reader here uses travels: service,
// tags, protocol, port and port name, health (Passing), the published
// address, the HTTP proxy's route and the Prometheus metrics endpoint
// (SERVICE_METRICS_PORT/_PATH, so GET /v1/prometheus on any node lists
// every node's opted-in instances). An API instance's TTL and expiry do
// not: its owner expires it, and the delete travels.
//
// The wire format is version 2 (instance extensions, the first the
// metrics endpoint; see wire.go). A node reads versions 1 and 2 and
// writes 2; a node from before version 2 drops everything a newer one
// sends, so until every node is upgraded the older ones do not hold the
// newer ones' records. A field added later is a new extension kind, which
// version 2 nodes skip: no new format version.
//
// Every peer record passes the catalog's own validation (names are
// lower-case DNS labels, ids follow the catalog's rules; a spanning
// network's name and id are ones Docker could give, its address unicast;
// a metrics endpoint passes the rules of the local labels), at most
// Config.MaxInstances instances per peer are kept, messages and states are
// size-capped, and a payload that does not decode is dropped and counted
// in svcdns_cluster_dropped_total{reason}: never a panic (FuzzDecode).
//
// # Usage
//
//	cat := catalog.New()
//	c, err := cluster.New(cluster.Config{
//		Node:     "n1",
//		BindAddr: "127.0.0.1:0", // port 0: memberlist picks one; c.Addr() tells it
//		Join:     []string{"127.0.0.1:7946"},
//		Keys:     [][]byte{key}, // 16, 24 or 32 bytes; nil: no encryption
//		Store:    cat,
//		Logger:   slog.Default(),
//		Timing:   cluster.FastTiming(), // tests; zero value: memberlist's LAN defaults
//	})
//	if err != nil { ... } // bad config, or the port cannot be bound
//	go c.Run(ctx)         // joins (retrying), spreads and applies changes; leaves when ctx ends
//
// Run returns nil after ctx ends (it leaves gracefully, then shuts
// memberlist down), or ErrNameTaken when another live node holds
// Config.Node. A node refused for its name at join (a peer holds it at
// another address) does not stop at once: it may be itself restarted on a
// new address before its old self was declared dead. It joins again every
// probe interval, logging "cluster: node name held by another address"
// with the holder, until the holder is declared dead and has been for
// DeadNodeReclaimTime (memberlist then gives the name to its claimant;
// only a dead node's), and gives up with ErrNameTaken (svcdns exits 1 with
// one line; "cluster: node name taken") only when the holder is still
// alive after longer than a gone node takes to be declared dead (see
// claim.go). The nodes it tries log "cluster: refused a node with a taken
// name" with the name and both addresses. Once joined, a node keeps its
// name: a state naming another live holder is refused and logged. A node with
// a wrong key is not refused by name, since nothing it sends can be read:
// both sides log "cluster: gossip not decryptable with our key" (with the
// peer address when known), the join is retried with backoff, the node
// stays alone, and nobody's data changes.
//
// Shutdown stops a node without leaving (peers then see it fail, like a
// killed process); Leave announces a graceful leave first.
//
// # For tests and benchmarks
//
//   - Config.Store is an interface: *catalog.Catalog satisfies it, and a
//     benchmark may give most nodes a store that only counts. The cluster
//     calls NodeRecords(Config.Node) from its publish goroutine, once at
//     start and again each time the returned channel closes, and Apply
//     from its apply goroutine: never both from memberlist's callbacks,
//     and Apply never concurrently with itself.
//   - Config.Timing sets memberlist's gossip, probe, suspicion and
//     push/pull timings; FastTiming gives sub-second failure detection on
//     loopback for unit tests.
//   - Config.OnApply is called (from the apply goroutine, must not block)
//     after each delta or full state of a peer is written to the store,
//     with the owner's send time: Applied.Delay() is the change-to-arrival
//     delay that the histogram svcdns_cluster_delay_seconds observes.
//   - Held(owner) is the version of owner's records held here,
//     LocalVersion() this node's own; a change on node A has reached node B
//     when B.Held("A") >= A.LocalVersion() (Version.AtLeast).
//     WaitHeld(ctx, owner, v) blocks until it has.
//   - Members() lists the members with state, address, instance count and
//     last full state (GET /v1/nodes); Stats() the counters as numbers;
//     Config.Registerer registers the Prometheus metrics.
//   - Config.Rejoin (default 10 s, FastTiming 1 s): while a configured join
//     address or a known peer is not a live member, it is joined again
//     (memberlist stops gossiping to dead nodes after GossipToTheDeadTime,
//     so without this two sides of a long partition would never meet again).
package cluster
