package proxy

import (
	"cmp"
	"fmt"
	"maps"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// routeKey is what a route answers: a host ("" = any) and a path prefix.
type routeKey struct {
	host, prefix string
}

func (k routeKey) String() string {
	if k.host == "" {
		return k.prefix
	}
	return k.host + k.prefix
}

// member is a backend in one route; strip is the instance's own choice, so
// that a new version may change it during a blue-green move.
type member struct {
	b     *backend
	strip bool
}

// route is one entry of the table. A route claimed by two services has
// conflict set and no members.
type route struct {
	key      routeKey
	service  string
	byName   bool // the <service>.service.<zone> route
	conflict string
	members  []member
	met      *routeMetrics
	proxy    *Proxy
	// rp is the route's ReverseProxy, its Transport the route itself, so
	// that balancing and retries see which route a request took.
	rp *httputil.ReverseProxy
}

// table is the route table, immutable once built.
type table struct {
	index uint64
	// byHost holds the routes of each host; "" is the routes for any
	// host. Inside a host, routes are found by prefix.
	byHost map[string]map[string]*route
	// next is closed when a newer table replaces this one.
	next chan struct{}
}

// match finds the route for a request's host (lower-case, no port) and
// path: among the routes of its host, then among those for any host, the
// longest prefix that ends at a segment boundary of path.
func (t *table) match(host, path string) *route {
	if path == "" || path[0] != '/' {
		path = "/" // "*" (OPTIONS) and CONNECT authority forms
	}
	if routes := t.byHost[host]; routes != nil && host != "" {
		if r := longest(routes, path); r != nil {
			return r
		}
	}
	if routes := t.byHost[""]; routes != nil {
		return longest(routes, path)
	}
	return nil
}

// route is the route of key k, nil when there is none.
func (t *table) route(k routeKey) *route { return t.byHost[k.host][k.prefix] }

// longest tries path, then each prefix of it that ends before a '/', then
// "/": a map lookup per segment, whatever the number of routes.
func longest(routes map[string]*route, path string) *route {
	if r := routes[path]; r != nil {
		return r
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			if r := routes[path[:i]]; r != nil {
				return r
			}
		}
	}
	return routes["/"]
}

// builder turns the catalog's instances into tables. It is used by one
// goroutine (Run's) and keeps, from one build to the next, each service's
// share of the routes and the catalog index it was made at: a build
// redoes only the services whose index moved and the routes they touch,
// so that a change reaches the table in about the same time with 10 or
// 10,000 services. Backends are kept by instance id, so that an instance
// keeps its count of requests in flight across builds.
type builder struct {
	zone      string // lower-case, no trailing dot
	node      string
	published bool
	gen       uint64 // build number, to find the services that left
	services  map[string]*svcShare
	claims    map[routeKey]*claim
	backends  map[string]*backend // instance id -> backend
	// transport makes a backend's transport, on its first request; nil:
	// none (a builder that only makes tables, in tests).
	transport func(*backend) *h1Transport
}

// svcShare is what one service claims: members per route key.
type svcShare struct {
	index  uint64
	gen    uint64
	routes map[routeKey][]member
	byName routeKey
}

// claim is every service's wish for one route key.
type claim struct {
	services map[string][]member
	byName   bool
}

// build makes the next table from prev (nil: none yet) and the catalog. It
// returns the keys whose route changed, for the log.
func (b *builder) build(cat *catalog.Catalog, prev *table) (*table, []routeKey) {
	if b.services == nil {
		b.services, b.claims, b.backends = map[string]*svcShare{}, map[routeKey]*claim{}, map[string]*backend{}
	}
	b.gen++
	dirty := map[routeKey]bool{}
	idx := cat.EachService(func(svc string, index uint64, insts []*catalog.Instance) {
		old := b.services[svc]
		if old != nil && old.index == index {
			old.gen = b.gen
			return
		}
		share := b.share(svc, index, insts)
		b.replace(svc, old, share, dirty)
		b.services[svc] = share
	})
	for svc, old := range b.services {
		if old.gen != b.gen {
			b.replace(svc, old, nil, dirty)
			delete(b.services, svc)
		}
	}
	return b.table(idx, prev, dirty)
}

// share is what the instances of svc claim. An instance that is not
// passing, or that the proxy cannot reach, still claims its routes: they
// answer 503 naming the service rather than falling through to another
// route.
func (b *builder) share(svc string, index uint64, insts []*catalog.Instance) *svcShare {
	sh := &svcShare{index: index, gen: b.gen, routes: map[routeKey][]member{},
		byName: routeKey{host: svc + ".service." + b.zone, prefix: "/"}}
	routed := slices.ContainsFunc(insts, func(i *catalog.Instance) bool { return i.Proxy != nil })
	sh.routes[sh.byName] = nil // the name route stays, to answer 503, with no instance
	for _, inst := range insts {
		if inst.Protocol != catalog.ProtoTCP || inst.Port == 0 {
			continue
		}
		var m member
		if inst.Passing {
			m.b = b.backend(inst)
		}
		// The service's own host name goes to the instances that have a
		// route when some do (the others' port may not even speak HTTP),
		// else to every instance.
		if m.b != nil && (!routed || inst.Proxy != nil) {
			sh.routes[sh.byName] = append(sh.routes[sh.byName], m)
		}
		r := inst.Proxy
		if r == nil {
			continue
		}
		m.strip = r.Strip
		paths := r.Paths
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for _, p := range paths {
			k := routeKey{host: r.Host, prefix: p}
			if m.b != nil {
				sh.routes[k] = append(sh.routes[k], m)
			} else if _, ok := sh.routes[k]; !ok {
				sh.routes[k] = nil
			}
		}
	}
	return sh
}

// replace takes old's claims out (nil: none) and puts new's in (nil:
// none), marking the keys that change, and drops the backends only old
// had.
func (b *builder) replace(svc string, old, new *svcShare, dirty map[routeKey]bool) {
	if old != nil {
		for k, ms := range old.routes {
			if c := b.claims[k]; c != nil {
				delete(c.services, svc)
				if len(c.services) == 0 {
					delete(b.claims, k)
				}
			}
			dirty[k] = true
			for _, m := range ms {
				if m.b != nil && b.backends[m.b.id] == m.b && (new == nil || !new.has(m.b)) {
					delete(b.backends, m.b.id)
					m.b.leave()
				}
			}
		}
	}
	if new != nil {
		for k, ms := range new.routes {
			c := b.claims[k]
			if c == nil {
				c = &claim{services: map[string][]member{}, byName: k == new.byName}
				b.claims[k] = c
			}
			c.services[svc] = ms
			dirty[k] = true
		}
	}
}

func (sh *svcShare) has(be *backend) bool {
	for _, ms := range sh.routes {
		for _, m := range ms {
			if m.b == be {
				return true
			}
		}
	}
	return false
}

// table is prev with the routes of the dirty keys made again.
func (b *builder) table(idx uint64, prev *table, dirty map[routeKey]bool) (*table, []routeKey) {
	t := &table{index: idx, byHost: map[string]map[string]*route{}, next: make(chan struct{})}
	cloned := map[string]bool{}
	if prev != nil {
		for h, m := range prev.byHost {
			t.byHost[h] = m // shared until a dirty key needs its own copy
		}
	}
	var changed []routeKey
	for k := range dirty {
		if !cloned[k.host] {
			t.byHost[k.host] = maps.Clone(t.byHost[k.host])
			if t.byHost[k.host] == nil {
				t.byHost[k.host] = map[string]*route{}
			}
			cloned[k.host] = true
		}
		c := b.claims[k]
		if c == nil {
			delete(t.byHost[k.host], k.prefix)
		} else {
			t.byHost[k.host][k.prefix] = newRoute(k, c)
		}
		changed = append(changed, k)
	}
	for h := range cloned {
		if len(t.byHost[h]) == 0 {
			delete(t.byHost, h)
		}
	}
	slices.SortFunc(changed, compareKeys)
	return t, changed
}

// newRoute decides a route from its claims: one service's members, or a
// conflict between several.
func newRoute(k routeKey, c *claim) *route {
	r := &route{key: k, byName: c.byName}
	if len(c.services) > 1 {
		svcs := slices.Sorted(maps.Keys(c.services))
		r.conflict = fmt.Sprintf("route %s is claimed by services %s: svcdns routes it to neither until one of them gives it up",
			k, strings.Join(svcs, " and "))
		r.service = strings.Join(svcs, ",")
		return r
	}
	for svc, ms := range c.services {
		r.service, r.members = svc, ms
	}
	return r
}

func compareKeys(a, b routeKey) int {
	return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.prefix, b.prefix))
}

// routes lists every route of t, sorted by host and prefix.
func (t *table) list() []*route {
	var out []*route
	for _, m := range t.byHost {
		for _, r := range m {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *route) int { return compareKeys(a.key, b.key) })
	return out
}

// backend returns the backend of inst, the one it had when its address and
// service are the same, or nil when the proxy cannot reach the instance.
//
// An instance registered again under another service gets a new backend:
// replace drops the backends that only the old service's share had, and
// it may do the old service after the new one took the instance (a
// service that no instance is left in is dropped after every other), which
// would make a backend leave while the new service's route holds it.
func (b *builder) backend(inst *catalog.Instance) *backend {
	ap, ok := b.address(inst)
	if !ok {
		return nil
	}
	addr := ap.String()
	be := b.backends[inst.ID]
	if be == nil || be.addr != addr || be.service != inst.Service {
		if be != nil {
			be.leave()
		}
		be = newBackend(inst.ID, inst.Service, addr)
		be.newTransport = b.transport
		b.backends[inst.ID] = be
	}
	return be
}

// address is where the proxy reaches an instance. An instance of this
// node: at its address on a network this host routes to (a bridge, see
// catalog.Instance.HostReachable; never an overlay's, which the host
// cannot reach), or at its published address when published is set or it
// has no such address (only overlays, or the host network). An instance of
// another node, or one registered through the API: at its published
// address only, never a peer's overlay address. ok is false when none of
// these exists: the instance is then no member of its routes.
func (b *builder) address(inst *catalog.Instance) (netip.AddrPort, bool) {
	pub := netip.AddrPortFrom(inst.HostIP, inst.HostPort)
	if inst.Source == catalog.SourceAPI || inst.Node != b.node || b.published && inst.Published() {
		return pub, inst.Published()
	}
	if a, ok := inst.HostReachable(); ok {
		return netip.AddrPortFrom(a.Addr(), inst.Port), true
	}
	return pub, inst.Published()
}
