// Package dnsserver answers DNS from the catalog: A, AAAA and SRV for
// services, A and AAAA for containers, PTR for their addresses, and the
// zone's SOA and NS, as the naming table of DESIGN.md says. Names outside
// the zone go to a Forwarder for the clients allowed to recurse.
//
//	h, err := dnsserver.NewHandler(dnsserver.Config{
//		Catalog:        cat,
//		Zone:           "local",
//		TTL:            5,
//		NegativeTTL:    5,
//		Allow:          allow,     // dnsserver.ParseACL("loopback,private,docker")
//		RecursionAllow: recursion, // dnsserver.ParseACL("loopback,docker")
//		Forwarder:      fwd,       // a *forward.Forwarder, or nil
//	})
//	srv, err := dnsserver.Listen(dnsserver.ServerConfig{
//		Addr:        ":53",
//		Handler:     h,
//		RateLimiter: lim, // a *ratelimit.Limiter, or nil
//	})
//	err = srv.Serve(ctx, 5*time.Second, nil) // until ctx is done
//
// # The two ways in
//
// A query is read once into a request (id, RD and CD, question type and
// class, the name in wire format, EDNS0 state and the reply size it
// allows, transport, client), and everything after works from it:
//
//   - UDP, the read loop (udpServer.fastReply): a plain query (one
//     question of class IN, at most an OPT) is read from the datagram's
//     bytes (request.fromPacket), charged to the rate limiter, and
//     answered on the reading goroutine when the cache holds a reply
//     that fits the client (Handler.cachedReply): no allocation, no
//     unpacking. A client over the limit gets a "slip" (an empty reply
//     with TC), also from the loop. Everything else goes to a goroutine
//     of its own: a query the loop read, with its request, to respond;
//     any other datagram to miekg/dns's unpacking, the accept filter and
//     ServeDNS.
//   - TCP, and UDP datagrams the loop cannot read: miekg/dns unpacks the
//     message and calls ServeDNS, which reads it into a request
//     (request.fromMsg; NOTIMP, FORMERR or BADVERS for what is not a
//     query it answers) and answers it with respond.
//
// respond, the one answer path: the client is checked against the ACLs
// once (access: may it query, may it recurse, which Docker networks is it
// on); then the cache, a layer in front of the lookup (fromCache), for the
// zone's and known reverse names; then the lookup and the forwarder for
// the rest.
//
// # How a zone name is answered
//
// Every step but the write is pure: the lookup reads the question's
// labels right to left from the zone (parseQuery), looks the name up in
// one catalog read (lookupZone), and builds the records; fit cuts them to
// the client's size. Lookup errors are sentinels mapped to rcodes in one
// place (rcodeFor): NXDOMAIN for a name that does not exist, NOERROR with
// no answer (NODATA) for a name without records of the asked type, both
// with the zone's SOA in the authority section. Every zone answer is
// authoritative, keeps the question's case, and lists instances in random
// order.
//
// The cache keeps a lookup's records and its replies packed in a few
// orders, per catalog index, question and the client's Docker networks
// (cache.go): a repeated question is a copy with the ID, flags and the
// question's case rewritten, and a client with less room than the packed
// reply gets the kept records fitted to its size, never a second lookup.
//
// Which address an instance is answered with depends on the client
// (AddressMode): in auto mode a client on a network of the instance gets
// its address there, any other client the published host address, or the
// container address when nothing is published.
//
// Over UDP an answer that does not fit the client's size (512 bytes
// without EDNS0, else its EDNS0 size capped by MaxUDPSize) keeps as many
// whole records as fit, each SRV with its target's addresses, and sets TC;
// over TCP the whole answer comes back.
//
// A panic while answering becomes SERVFAIL and a count in
// svcdns_dns_panics_total, wherever it happens: ServeDNS recovers, and so
// do the read loop's step and the goroutine it hands a query to.
package dnsserver
