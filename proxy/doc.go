// Package proxy is svcdns's HTTP reverse proxy: a fixed address such as
// /api/v1/books in front of a service's moving instances, for consumers
// that cannot do SRV.
//
// Routes come from the catalog only: each instance's catalog.ProxyRoute
// (the SERVICE_PROXY_PATH, SERVICE_PROXY_HOST and SERVICE_PROXY_STRIP
// labels, or an API registration's proxy object) and, for every service,
// the Host <service>.service.<zone>. Run rebuilds the route table after
// each catalog change (catalog.Wait, never a poll) and swaps it in one
// atomic store: a request in flight finishes on the table it started with.
//
// A request goes to the route whose host matches and whose path prefix is
// the longest (at a segment boundary: /api matches /api and /api/x, not
// /apix), and there to the passing instance with the fewest requests in
// flight, ties broken at random. A request that fails before any byte of
// a response (connection refused or reset) is retried on an instance not
// yet tried, when it can be replayed. An instance that leaves the catalog
// gets no request from then on: a dial to it, in progress or about to
// begin, is given up and the request, never sent, goes to another
// instance; its idle connections are closed, and the ones serving a
// request once that request ends. The proxying itself is
// net/http/httputil.ReverseProxy's; its requests reach an instance over
// h1Transport, net/http's HTTP/1.1 wire code (Request.Write,
// ReadResponse) run on the request's goroutine over keep-alive
// connections of the instance's own, and what that does not handle
// (upgrades, Expect, trailers, large bodies) over net/http's Transport.
//
//	p, err := proxy.New(proxy.Config{Catalog: cat, Zone: "local", Node: "node-1"})
//	go p.Run(ctx)                // follows the catalog until ctx is done
//	err = p.Serve(ctx, listener) // answers HTTP until ctx is done
package proxy
