// Package httpapi is svcdns's HTTP API: read the catalog, long-poll a
// service for changes, register instances that do not run in Docker, and
// report health and metrics.
//
//	api, err := httpapi.New(httpapi.Config{
//		Catalog:    cat,
//		Token:      token, // "" = writes need no token (loopback only)
//		Node:       "node-1",
//		Gatherer:   reg,   // served at /metrics
//		Registerer: reg,   // svcdns_http_* and svcdns_catalog_*
//		Queries:    dns.QueriesByRcode, // the dashboard's query rates
//		Docker:     func() httpapi.DockerStatus { return w.Status() }, // a watcher.Status
//		Logger:     logger.With("component", "http"),
//	})
//	if err != nil {
//		return err
//	}
//	ln, err := net.Listen("tcp", "127.0.0.1:8053")
//	if err != nil {
//		return err
//	}
//	go cat.RunExpiry(ctx, time.Second, nil) // API instances with a ttl expire
//	return api.Serve(ctx, ln)                // nil after a clean shutdown
//
// # Endpoints
//
//	GET    /v1/services          every service: [{"name","instances","passing"}], by name
//	GET    /v1/services/{name}   its instances: [Instance]; [] when none
//	       ?passing=true         only instances answered in DNS
//	       ?tag=t                only instances carrying tag t
//	       ?index=N&wait=30s     long poll: block until the service changes past N,
//	                             or wait runs out (default and maximum 5m)
//	GET    /v1/containers        every container (SRV target): [Container]
//	PUT    /v1/instances/{id}    register: Registration → 200 Instance   (token)
//	DELETE /v1/instances/{id}    deregister: 204; 404 for an unknown id  (token)
//	GET    /healthz              Health: 200 "ok" or "degraded"; 503 "syncing"
//	GET    /metrics              Prometheus text (when Config.Gatherer is set)
//	GET    /                     the dashboard: HTML, complete without JavaScript
//	GET    /v1/dashboard         Dashboard: everything the page shows; ?q= filters services
//	GET    /v1/events            server-sent events: change, status, reset (events.go)
//	GET    /v1/explain           ?name=&type=&client=: Explanation (when Config.Explain is set)
//
// Every read carries the index it was read at in the X-Svcdns-Index header:
// the service's index for GET /v1/services/{name}, the catalog's elsewhere.
// A client long-polls by passing the last one it got as ?index.
//
// Every error is JSON, {"error":"..."}, saying what is wrong: 400 for bad
// input, 401 (with WWW-Authenticate: Bearer) for a write without the right
// token when Config.Token is set, 404 for an unknown path or id, 405 for a
// wrong method (with Allow), 409 for an id a Docker instance holds, 413 for
// a body over 1 MiB, 429 past Config.MaxLongPolls long polls.
//
// # Dashboard and events
//
// The change log comes from the catalog itself (changes.go): after each
// write the API diffs the services whose index moved, so instances of
// every source show. The query rates are sampled from Config.Queries (the
// DNS server's svcdns_dns_queries_total, read without a Gather) every 5
// seconds. Both run while Serve does.
//
// # Registering
//
// PUT /v1/instances/b1 with
//
//	{"service":"books-ms","address":"10.0.0.1","port":8080,"protocol":"tcp","tags":["v1"],"ttl":"30s"}
//
// makes books-ms.service.<zone> answer 10.0.0.1, and its SRV record point at
// port 8080 of b1.container.<zone>. The id and the service are DNS labels
// (upper case is lowered; "v1.books-ms" is refused, so a service can never
// shadow a tag); protocol defaults to tcp; tags are lowered, sorted and
// deduplicated. With a ttl (1s to 24h) the instance expires unless put again
// in time; putting it again with the same body only moves its expiry.
package httpapi
