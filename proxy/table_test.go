package proxy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// seed writes Docker instances of this node, one container each, at
// 10.0.0.<n>:8080.
type seedInst struct {
	id, svc string
	route   *catalog.ProxyRoute
	failing bool
	node    string
	pub     string // published host:port
	// addrs replaces the address on bridge; empty but not nil: none (a
	// host-network container, or a peer's container on a bridge).
	addrs []catalog.NetAddr
}

func seed(t *testing.T, insts ...seedInst) *catalog.Catalog {
	t.Helper()
	cat := catalog.New()
	for n, s := range insts {
		node := s.node
		if node == "" {
			node = testNode
		}
		addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(n + 1)})
		addrs := []catalog.NetAddr{{Network: "bridge", Prefix: netip.PrefixFrom(addr, 16)}}
		if s.addrs != nil {
			addrs = s.addrs
		}
		ctr := &catalog.Container{ID: s.id, Name: s.id, Target: s.id, Node: node, Source: catalog.SourceDocker,
			Addrs: addrs, Passing: !s.failing}
		inst := testutil.Instance(ctr, s.svc, 8080, func(i *catalog.Instance) { i.Proxy = s.route })
		if s.pub != "" {
			ap := netip.MustParseAddrPort(s.pub)
			inst.HostIP, inst.HostPort = ap.Addr(), ap.Port()
		}
		if _, err := cat.PutContainer(ctr, []*catalog.Instance{inst}); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

func TestTableMatch(t *testing.T) {
	cat := seed(t,
		seedInst{id: "books1", svc: "books-ms", route: paths("/api/v1/books")},
		seedInst{id: "books2", svc: "books-ms", route: paths("/api/v1/books")},
		seedInst{id: "api1", svc: "api-gw", route: paths("/api")},
		seedInst{id: "root1", svc: "front", route: paths("/")},
		seedInst{id: "host1", svc: "books-admin", route: &catalog.ProxyRoute{Host: "books.example.test", Paths: []string{"/api/v1/books"}}},
		seedInst{id: "host2", svc: "shop", route: &catalog.ProxyRoute{Host: "shop.example.test"}},
		seedInst{id: "plain1", svc: "plain"},
		seedInst{id: "down1", svc: "down", route: paths("/down"), failing: true},
	)
	tbl := buildOnce(cat, &builder{zone: "local", node: testNode})
	tests := []struct{ host, path, want string }{
		{"", "/api/v1/books", "books-ms /api/v1/books"},
		{"", "/api/v1/books/12", "books-ms /api/v1/books"},
		{"", "/api/v1/books/", "books-ms /api/v1/books"},
		{"", "/api/v1/booksx", "api-gw /api"}, // a segment boundary, not a string prefix
		{"", "/api/v1", "api-gw /api"},
		{"", "/apix", "front /"},
		{"", "/", "front /"},
		{"", "*", "front /"},
		{"other.test", "/api/v1/books/1", "books-ms /api/v1/books"},
		{"books.example.test", "/api/v1/books/1", "books-admin books.example.test/api/v1/books"}, // host beats any host
		{"books.example.test", "/api", "api-gw /api"},                                            // no route of the host matches
		{"shop.example.test", "/anything", "shop shop.example.test/"},
		{"plain.service.local", "/x", "plain plain.service.local/"},
		{"books-ms.service.local", "/api/v1/books", "books-ms books-ms.service.local/"},
		{"down.service.local", "/", "down down.service.local/"},
	}
	for _, tt := range tests {
		r := tbl.match(tt.host, tt.path)
		got := "<nil>"
		if r != nil {
			got = r.service + " " + r.key.String()
		}
		if got != tt.want {
			t.Errorf("match(%q, %q) = %s, want %s", tt.host, tt.path, got, tt.want)
		}
	}
	if r := tbl.match("", "/api/v1/books"); len(r.members) != 2 {
		t.Errorf("books-ms route has %d instances, want 2", len(r.members))
	}
	if r := tbl.match("", "/down/x"); r.service != "down" || len(r.members) != 0 {
		t.Errorf("/down/x went to %s with %d instances, want down's route with none (a 503, not front's /)", r.service, len(r.members))
	}
	if r := tbl.match("down.service.local", "/"); len(r.members) != 0 {
		t.Errorf("down's name route has %d instances, want 0", len(r.members))
	}
}

func TestTableNoRoute(t *testing.T) {
	cat := seed(t, seedInst{id: "books1", svc: "books-ms", route: paths("/api/v1/books")})
	tbl := buildOnce(cat, &builder{zone: "local", node: testNode})
	for _, c := range [][2]string{{"", "/"}, {"", "/api/v1"}, {"nope.service.local", "/"}} {
		if r := tbl.match(c[0], c[1]); r != nil {
			t.Errorf("match(%q, %q) = %v, want no route", c[0], c[1], r.key)
		}
	}
}

func TestTableConflict(t *testing.T) {
	cat := seed(t,
		seedInst{id: "a1", svc: "books-ms", route: paths("/api/v1/books", "/shared")},
		seedInst{id: "b1", svc: "papers-ms", route: paths("/api/v1/books")},
		seedInst{id: "c1", svc: "other", route: paths("/shared/sub")},
	)
	tbl := buildOnce(cat, &builder{zone: "local", node: testNode})
	r := tbl.match("", "/api/v1/books/1")
	if r.conflict == "" || len(r.members) != 0 {
		t.Fatalf("conflicting route %v: conflict %q, %d members", r.key, r.conflict, len(r.members))
	}
	for _, want := range []string{"books-ms", "papers-ms", "/api/v1/books"} {
		if !strings.Contains(r.conflict, want) {
			t.Errorf("conflict %q does not name %s", r.conflict, want)
		}
	}
	// Routes that are not in conflict still work.
	if r := tbl.match("", "/shared/x"); r.service != "books-ms" || r.conflict != "" {
		t.Errorf("/shared/x went to %s (%s)", r.service, r.conflict)
	}
	if r := tbl.match("", "/shared/sub/x"); r.service != "other" {
		t.Errorf("/shared/sub/x went to %s", r.service)
	}
}

// TestAddressing: where the proxy reaches an instance, by its node, its
// networks and what it publishes, with and without --address-mode host.
// An instance it cannot reach is no member of its route, which stays and
// answers 503.
func TestAddressing(t *testing.T) {
	ov := catalog.NetAddr{Network: "ov", Prefix: netip.MustParsePrefix("10.0.9.5/24"), NetworkID: "ovid", SpansHosts: true}
	ov6 := catalog.NetAddr{Network: "ov", Prefix: netip.MustParsePrefix("fd00:9::5/64"), NetworkID: "ovid", SpansHosts: true}
	br := catalog.NetAddr{Network: "br", Prefix: netip.MustParsePrefix("172.18.0.5/16")}
	br6 := catalog.NetAddr{Network: "br", Prefix: netip.MustParsePrefix("fd00:18::5/64")}
	none := []catalog.NetAddr{}
	tests := []struct {
		name          string
		in            seedInst
		want, wantPub string // host:port in the default mode and with published; "": not routable
	}{
		{"local on a bridge", seedInst{}, "10.0.0.1:8080", "10.0.0.1:8080"},
		{"local, published", seedInst{pub: "192.0.2.1:32768"}, "10.0.0.1:8080", "192.0.2.1:32768"},
		{"local, overlay listed before its bridge", seedInst{addrs: []catalog.NetAddr{ov, br}}, "172.18.0.5:8080", "172.18.0.5:8080"},
		{"local, bridge IPv6 only, and overlay", seedInst{addrs: []catalog.NetAddr{ov, br6}}, "[fd00:18::5]:8080", "[fd00:18::5]:8080"},
		{"local, overlay only, published", seedInst{addrs: []catalog.NetAddr{ov, ov6}, pub: "192.0.2.1:32768"}, "192.0.2.1:32768", "192.0.2.1:32768"},
		{"local, overlay only, unpublished", seedInst{addrs: []catalog.NetAddr{ov}}, "", ""},
		{"local, host network", seedInst{addrs: none, pub: "192.0.2.1:8080"}, "192.0.2.1:8080", "192.0.2.1:8080"},
		{"peer, published", seedInst{node: "node-2", addrs: none, pub: "192.0.2.2:32769"}, "192.0.2.2:32769", "192.0.2.2:32769"},
		{"peer, unpublished on its bridge", seedInst{node: "node-2", addrs: none}, "", ""},
		{"peer on an overlay, published", seedInst{node: "node-2", addrs: []catalog.NetAddr{ov}, pub: "192.0.2.2:32769"}, "192.0.2.2:32769", "192.0.2.2:32769"},
		{"peer on an overlay, unpublished", seedInst{node: "node-2", addrs: []catalog.NetAddr{ov}}, "", ""},
	}
	for _, tt := range tests {
		in := tt.in
		in.id, in.svc, in.route = "c1", "s", paths("/s")
		cat := seed(t, in)
		for _, published := range []bool{false, true} {
			want := tt.want
			if published {
				want = tt.wantPub
			}
			routes := routesOf(buildOnce(cat, &builder{zone: "local", node: testNode, published: published}))
			var got []string
			for _, r := range routes {
				if r.Path != "/s" {
					continue
				}
				got = append(got, "route")
				for _, u := range r.Instances {
					got = append(got, u.Address)
				}
			}
			if want := strings.Join(append([]string{"route"}, strings.Fields(want)...), " "); strings.Join(got, " ") != want {
				t.Errorf("%s, published=%t: /v1/routes lists %q, want %q", tt.name, published, got, want)
			}
		}
	}
}

// A rebuild keeps the backend (and its in-flight count) of an instance
// whose address did not change.
func TestBuildKeepsBackends(t *testing.T) {
	cat := seed(t, seedInst{id: "a1", svc: "s", route: paths("/s")})
	b := &builder{zone: "local", node: testNode}
	t1, _ := b.build(cat, nil)
	first := t1.match("", "/s").members[0].b
	first.inflight.Add(3)
	t2, _ := b.build(cat, t1)
	second := t2.match("", "/s").members[0].b
	if first != second || second.inflight.Load() != 3 {
		t.Errorf("rebuild made a new backend (%p -> %p, in flight %d)", first, second, second.inflight.Load())
	}
}

func TestStripPrefix(t *testing.T) {
	for _, tt := range [][3]string{
		{"/api/v1/books/12", "/api/v1/books", "/12"},
		{"/api/v1/books", "/api/v1/books", "/"},
		{"/api/v1/books/", "/api/v1/books", "/"},
		{"/other", "/api", "/other"},
	} {
		if got := stripPrefix(tt[0], tt[1]); got != tt[2] {
			t.Errorf("stripPrefix(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
}

func buildOnce(cat *catalog.Catalog, b *builder) *table {
	t, _ := b.build(cat, nil)
	return t
}

// An incremental build (only the services whose index moved) gives the
// same table as a build from scratch, after every step of a sequence of
// changes: routes that come, move, collide and go.
func TestBuildIncrementalMatchesFresh(t *testing.T) {
	cat := catalog.New()
	reg := func(id, svc string, route *catalog.ProxyRoute, passing bool) {
		_, err := cat.RegisterInstance(testutil.APIInstance(id, svc, "10.1.0.1", 8080, func(i *catalog.Instance) {
			i.Node, i.Passing, i.Proxy = testNode, passing, route
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	dereg := func(id string) {
		if _, err := cat.DeregisterInstance(id); err != nil {
			t.Fatal(err)
		}
	}
	steps := []func(){
		func() { reg("a1", "a", paths("/a", "/shared"), true) },
		func() { reg("a2", "a", paths("/a"), true) },
		func() { reg("b1", "b", paths("/shared"), true) }, // conflict on /shared
		func() { reg("c1", "c", &catalog.ProxyRoute{Host: "c.test"}, true) },
		func() { reg("a1", "a", paths("/a"), true) }, // a gives /shared up
		func() { reg("b1", "b", paths("/shared"), false) },
		func() { dereg("a2") },
		func() { reg("d1", "d", nil, true) },
		func() { dereg("a1") },
		func() { dereg("b1"); dereg("c1") },
	}
	inc := &builder{zone: "local", node: testNode}
	var prev *table
	render := func(tb *table) string {
		var b strings.Builder
		for _, r := range routesOf(tb) {
			fmt.Fprintf(&b, "%s%s %s %q", r.Host, r.Path, r.Service, r.Conflict)
			for _, u := range r.Instances {
				fmt.Fprintf(&b, " %s", u.ID)
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	for i, step := range steps {
		step()
		prev, _ = inc.build(cat, prev)
		fresh := buildOnce(cat, &builder{zone: "local", node: testNode})
		if got, want := render(prev), render(fresh); got != want {
			t.Fatalf("step %d: incremental table\n%s\nfrom scratch\n%s", i, got, want)
		}
	}
	if len(inc.backends) != 1 || len(inc.services) != 1 {
		t.Errorf("after the last step: %d backends, %d services kept, want 1 and 1 (d)", len(inc.backends), len(inc.services))
	}
}
