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
//	srv, err := dnsserver.Listen(dnsserver.ServerConfig{Addr: ":53", Handler: h})
//	err = srv.Serve(ctx, 5*time.Second, nil) // until ctx is done
//
// # How a query is answered
//
// Every step but the write is pure: the handler checks the client against
// the ACLs, reads the question's labels right to left from the zone
// (parseQuery), looks the name up in one catalog read (lookupZone), builds
// the records, and fits them to the client (fit). Lookup errors are
// sentinels mapped to rcodes in one place (rcodeFor): NXDOMAIN for a name
// that does not exist, NOERROR with no answer (NODATA) for a name without
// records of the asked type, both with the zone's SOA in the authority
// section. Every zone answer is authoritative, keeps the question's case,
// and lists instances in random order.
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
// svcdns_dns_panics_total: nothing on the request path ends the process.
package dnsserver
