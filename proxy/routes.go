package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Route is one element of GET /v1/routes.
type Route struct {
	Host      string     `json:"host"`          // "" = any host
	Path      string     `json:"path"`          // the path prefix
	Service   string     `json:"service"`       // for a conflict, every service claiming it, comma-separated
	ByName    bool       `json:"by_name"`       // the <service>.service.<zone> route
	Conflict  string     `json:"conflict"`      // why the route goes nowhere; "" when it works
	Instances []Upstream `json:"instances"`     // [] when none
	Index     uint64     `json:"catalog_index"` // the catalog index the table was built at
}

// Upstream is one instance of a route.
type Upstream struct {
	ID       string `json:"id"`
	Address  string `json:"address"` // host:port the proxy connects to
	InFlight int64  `json:"in_flight"`
	Strip    bool   `json:"strip"`
}

// Routes returns the current table, sorted by host and path.
func (p *Proxy) Routes() []Route { return routesOf(p.tbl.Load()) }

func routesOf(t *table) []Route {
	list := t.list()
	out := make([]Route, 0, len(list))
	for _, r := range list {
		rr := Route{Host: r.key.host, Path: r.key.prefix, Service: r.service, ByName: r.byName,
			Conflict: r.conflict, Instances: []Upstream{}, Index: t.index}
		for _, m := range r.members {
			rr.Instances = append(rr.Instances, Upstream{ID: m.b.id, Address: m.b.addr, InFlight: m.b.inflight.Load(), Strip: m.strip})
		}
		out = append(out, rr)
	}
	return out
}

// RoutesHandler answers GET /v1/routes with Routes as JSON, and the
// catalog index of the table in the X-Svcdns-Index header.
func (p *Proxy) RoutesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := p.tbl.Load()
		routes := routesOf(t)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Svcdns-Index", strconv.FormatUint(t.index, 10))
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(routes)
	})
}
