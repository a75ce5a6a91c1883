// Package catalog is svcdns's service registry: an in-memory
// hashicorp/go-memdb database of the containers (SRV targets) svcdns
// answers for, one row each with the service instances it provides, and a
// lookup tree derived from the rows at each write (services with their
// instances, tags, networks) that DNS reads without a transaction.
//
// Every write is one transaction and raises the catalog index; Apply writes
// a batch in one. Reads never block writers and return objects that are
// shared and must never be modified. A read can register watch channels in
// a memdb.WatchSet so that a caller blocks until what it read changes:
//
//	cat := catalog.New()
//	addr := netip.MustParseAddr("10.0.0.5")
//	_, err := cat.RegisterInstance(&catalog.Instance{
//		ID: "books-1", Service: "books-ms", Protocol: catalog.ProtoTCP, Port: 8080,
//		Addrs:       []catalog.NetAddr{{Prefix: netip.PrefixFrom(addr, 32)}},
//		ContainerID: "api/books-1", ContainerName: "books-1", Target: "books-1",
//		Source:      catalog.SourceAPI, Node: "node-1", Passing: true,
//	})
//	ws := memdb.NewWatchSet()
//	idx, insts, err := cat.Service(ws, catalog.ServiceQuery{Service: "books-ms", PassingOnly: true})
//	_ = ws.WatchCtx(ctx) // returns when books-ms changes, or ctx is done
//
// A source (Docker on one node, the API) only ever replaces or deletes
// what it registered itself; a write that would take over another owner's
// container or instance fails with ErrConflict.
//
// The catalog knows nothing of Docker or DNS: the watcher package turns
// containers into Containers and Instances, the dnsserver package reads them.
package catalog
