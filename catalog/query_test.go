package catalog_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// seedBooks stores a multi-port books-ms and, beside it, an orders
// service that no books-ms query may return.
func seedBooks(t *testing.T, cat *catalog.Catalog) {
	t.Helper()
	c1 := ctr(nodeA, "c1", "books-1", "172.18.0.5/16")
	put(t, cat, c1,
		inst(c1, "books-ms", 8080, portName("http"), tags("v1", "primary")),
		inst(c1, "books-ms", 53, proto(catalog.ProtoUDP), portName("dns"), tags("v2")),
	)
	c2 := ctr(nodeA, "c2", "books-2", "172.18.0.6/16")
	c2.Passing = false
	put(t, cat, c2, inst(c2, "books-ms", 8080, portName("http"), tags("v1")))
	c3 := ctr(nodeB, "c3", "books-3", "172.19.0.5/16")
	put(t, cat, c3, inst(c3, "books-ms", 9090, portName("metrics")))
	c4 := ctr(nodeA, "c4", "orders-1", "172.18.0.7/16")
	put(t, cat, c4, inst(c4, "orders", 8080, portName("http"), tags("v1")))
	register(t, cat, apiInst("ext-1", "books-ms", 8080, tags("primary")))
}

func TestServiceQuery(t *testing.T) {
	cat := catalog.New()
	seedBooks(t, cat)
	tests := []struct {
		name string
		q    catalog.ServiceQuery
		want []string
	}{
		{"all", catalog.ServiceQuery{Service: "books-ms"},
			[]string{"c1:53/udp", "c1:8080/tcp", "c2:8080/tcp", "c3:9090/tcp", "ext-1"}},
		{"passing only", catalog.ServiceQuery{Service: "books-ms", PassingOnly: true},
			[]string{"c1:53/udp", "c1:8080/tcp", "c3:9090/tcp", "ext-1"}},
		{"tag", catalog.ServiceQuery{Service: "books-ms", Tag: "v1"},
			[]string{"c1:8080/tcp", "c2:8080/tcp"}},
		{"tag, passing only", catalog.ServiceQuery{Service: "books-ms", Tag: "v1", PassingOnly: true},
			[]string{"c1:8080/tcp"}},
		{"tag on a container and an API instance", catalog.ServiceQuery{Service: "books-ms", Tag: "primary"},
			[]string{"c1:8080/tcp", "ext-1"}},
		{"unknown tag", catalog.ServiceQuery{Service: "books-ms", Tag: "v3"}, nil},
		{"tag is case-sensitive (callers lower-case)", catalog.ServiceQuery{Service: "books-ms", Tag: "V1"}, nil},
		{"tcp", catalog.ServiceQuery{Service: "books-ms", Protocol: catalog.ProtoTCP},
			[]string{"c1:8080/tcp", "c2:8080/tcp", "c3:9090/tcp", "ext-1"}},
		{"udp", catalog.ServiceQuery{Service: "books-ms", Protocol: catalog.ProtoUDP},
			[]string{"c1:53/udp"}},
		{"port number", catalog.ServiceQuery{Service: "books-ms", Port: "8080"},
			[]string{"c1:8080/tcp", "c2:8080/tcp", "ext-1"}},
		{"port name", catalog.ServiceQuery{Service: "books-ms", Port: "http"},
			[]string{"c1:8080/tcp", "c2:8080/tcp"}},
		{"port name and protocol", catalog.ServiceQuery{Service: "books-ms", Port: "dns", Protocol: catalog.ProtoUDP},
			[]string{"c1:53/udp"}},
		{"port name of another protocol", catalog.ServiceQuery{Service: "books-ms", Port: "dns", Protocol: catalog.ProtoTCP}, nil},
		{"port number of another protocol", catalog.ServiceQuery{Service: "books-ms", Port: "53", Protocol: catalog.ProtoTCP}, nil},
		{"port, tag and passing", catalog.ServiceQuery{Service: "books-ms", Port: "http", Tag: "v1", PassingOnly: true},
			[]string{"c1:8080/tcp"}},
		{"unknown port", catalog.ServiceQuery{Service: "books-ms", Port: "8081"}, nil},
		{"port number with a leading zero", catalog.ServiceQuery{Service: "books-ms", Port: "08080"}, nil},
		{"other service", catalog.ServiceQuery{Service: "orders", Tag: "v1"}, []string{"c4:8080/tcp"}},
		{"unknown service", catalog.ServiceQuery{Service: "nope"}, nil},
		{"service names are not prefixes", catalog.ServiceQuery{Service: "books"}, nil},
		{"empty service", catalog.ServiceQuery{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := serviceIDs(t, cat, tt.q)
			if !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("Service(%+v) = %v, want %v", tt.q, got, tt.want)
			}
			// Match agrees with Service, instance by instance.
			_, all, _ := cat.Service(nil, catalog.ServiceQuery{Service: tt.q.Service})
			var matched []*catalog.Instance
			for _, i := range all {
				if tt.q.Match(i) {
					matched = append(matched, i)
				}
			}
			if m := instIDs(matched); !slices.Equal(m, got) {
				t.Errorf("Match selects %v, Service returned %v", m, got)
			}
		})
	}
}

func TestServiceIndex(t *testing.T) {
	cat := catalog.New()
	c1 := ctr(nodeA, "c1", "books-1", "172.18.0.5/16")
	booksIdx := put(t, cat, c1, inst(c1, "books-ms", 80))
	c2 := ctr(nodeA, "c2", "orders-1", "172.18.0.6/16")
	put(t, cat, c2, inst(c2, "orders", 80))
	ordersIdx := put(t, cat, c2, inst(c2, "orders", 81))

	tests := []struct {
		name string
		svc  string
		want uint64
		n    int
	}{
		{"untouched by writes to another service", "books-ms", booksIdx, 1},
		{"the service's own last change", "orders", ordersIdx, 1},
		{"unknown service: the catalog index", "nope", cat.Index(), 0},
	}
	for _, tt := range tests {
		idx, insts, err := cat.Service(nil, catalog.ServiceQuery{Service: tt.svc})
		if err != nil || idx != tt.want || len(insts) != tt.n {
			t.Errorf("%s: Service(%s) = %d, %d instances, %v; want %d, %d, nil", tt.name, tt.svc, idx, len(insts), err, tt.want, tt.n)
		}
	}
	if cat.Index() <= booksIdx {
		t.Fatalf("Index() = %d, want above books-ms's %d", cat.Index(), booksIdx)
	}

	// A no-op write to books-ms keeps its index; a failing one too.
	if _, err := cat.PutContainer(ctr(nodeA, "c1", "books-1", "172.18.0.5/16"), []*catalog.Instance{inst(c1, "books-ms", 80)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.PutContainer(c1, []*catalog.Instance{inst(c1, "Books", 80)}); err == nil {
		t.Fatal("PutContainer with service Books succeeded")
	}
	if idx, _, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"}); idx != booksIdx {
		t.Errorf("books-ms index after no-op writes = %d, want %d", idx, booksIdx)
	}
	// A filter does not change the index: it is the service's.
	if idx, insts, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms", Tag: "none"}); idx != booksIdx || len(insts) != 0 {
		t.Errorf("books-ms tag none = %d, %d instances; want %d, 0", idx, len(insts), booksIdx)
	}
}

func TestServicesAndStats(t *testing.T) {
	cat := catalog.New()
	seedBooks(t, cat)
	want := []catalog.ServiceSummary{
		{Name: "books-ms", Instances: 5, Passing: 4},
		{Name: "orders", Instances: 1, Passing: 1},
	}
	idx, got := cat.Services(nil)
	if idx != cat.Index() || !slices.Equal(got, want) {
		t.Errorf("Services() = %d, %+v; want %d, %+v", idx, got, cat.Index(), want)
	}
	wantSt := catalog.Stats{Index: cat.Index(), Services: 2, Instances: 6, Passing: 5, Containers: 5}
	if st := stats(t, cat); st != wantSt {
		t.Errorf("Stats() = %+v, want %+v", st, wantSt)
	}

	// An emptied service leaves the list and the counts, and the list
	// stays sorted by name.
	if _, err := cat.DeleteContainer("c4"); err != nil {
		t.Fatal(err)
	}
	c5 := ctr(nodeA, "c5", "auth-1", "172.18.0.8/16")
	put(t, cat, c5, inst(c5, "auth", 80))
	want = []catalog.ServiceSummary{
		{Name: "auth", Instances: 1, Passing: 1},
		{Name: "books-ms", Instances: 5, Passing: 4},
	}
	if _, got := cat.Services(nil); !slices.Equal(got, want) {
		t.Errorf("Services() after changes = %+v, want %+v", got, want)
	}
	wantSt = catalog.Stats{Index: cat.Index(), Services: 2, Instances: 6, Passing: 5, Containers: 5}
	if st := stats(t, cat); st != wantSt {
		t.Errorf("Stats() after changes = %+v, want %+v", st, wantSt)
	}
}

func TestAllContainers(t *testing.T) {
	cat := catalog.New()
	for _, id := range []string{"c3", "c1", "c2"} {
		put(t, cat, ctr(nodeA, id, "", "172.18.0.5/16"))
	}
	register(t, cat, apiInst("b", "books-ms", 80))
	idx, ctrs, err := cat.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range ctrs {
		ids = append(ids, c.ID)
	}
	if want := []string{"api/b", "c1", "c2", "c3"}; !slices.Equal(ids, want) || idx != cat.Index() {
		t.Errorf("AllContainers() = %d, %v; want %d, %v in id order", idx, ids, cat.Index(), want)
	}
}

func TestContainersByTarget(t *testing.T) {
	cat := catalog.New()
	put(t, cat, ctr(nodeA, "a1", "web", "172.18.0.5/16"))
	put(t, cat, ctr(nodeB, "b1", "web", "172.19.0.5/16")) // same target on another node
	put(t, cat, ctr(nodeA, "a2", "web-2", "172.18.0.6/16"))
	put(t, cat, withTarget(ctr(nodeA, "a3", "", "172.18.0.7/16"), "3f0c1e2d4b5a"))  // no name: the writer picked a target
	put(t, cat, withTarget(ctr(nodeB, "b2", "web", "172.19.0.6/16"), "web.node-b")) // qualified by its writer
	put(t, cat, withTarget(ctr(nodeB, "b3", "web", "172.19.0.7/16"), "node-b.web")) // web.node-b's labels reversed
	put(t, cat, withTarget(ctr(nodeB, "b4", "", "172.19.0.8/16"), "a.b.c"))
	register(t, cat, apiInst("ext-1", "books-ms", 80))
	tests := []struct {
		target string
		want   []string
	}{
		{"web", []string{"a1", "b1"}},
		{"web-2", []string{"a2"}},
		{"3f0c1e2d4b5a", []string{"a3"}},
		{"web.node-b", []string{"b2"}},
		{"node-b.web", []string{"b3"}},
		{"a.b.c", []string{"b4"}},
		{"c.b.a", nil},
		{"node-b", nil},
		{"b.c", nil},
		{"a.b", nil},
		{"ext-1", []string{"api/ext-1"}},
		{"we", nil},
		{"3f0c", nil}, // a target, never a prefix
		{"WEB", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := cat.ContainersByTarget(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if ids := ctrIDs(got); !slices.Equal(ids, tt.want) && len(ids)+len(tt.want) > 0 {
			t.Errorf("ContainersByTarget(%q) = %v, want %v", tt.target, ids, tt.want)
		}
	}
}

func TestContainersByAddr(t *testing.T) {
	cat := catalog.New()
	put(t, cat, ctr(nodeA, "v4", "", "172.18.0.5/16"))
	put(t, cat, ctr(nodeA, "dual", "", "172.18.0.6/16", "fd00:1::6/64", "10.1.0.6/24"))
	put(t, cat, ctr(nodeA, "v6", "", "2001:db8::7/64"))
	put(t, cat, ctr(nodeA, "mapped", "", "::ffff:192.168.1.9/120")) // Docker never does this; an address is an address
	put(t, cat, ctr(nodeB, "other-node", "", "172.18.0.5/16"))      // the same IP on another Docker host
	put(t, cat, ctr(nodeA, "none", ""))
	tests := []struct {
		addr string
		want []string
	}{
		{"172.18.0.5", []string{"other-node", "v4"}},
		{"172.18.0.6", []string{"dual"}},
		{"10.1.0.6", []string{"dual"}},
		{"fd00:1::6", []string{"dual"}},
		{"2001:db8::7", []string{"v6"}},
		{"::ffff:172.18.0.6", []string{"dual"}}, // a v4 client seen on a dual-stack socket
		{"192.168.1.9", []string{"mapped"}},
		{"::ffff:192.168.1.9", []string{"mapped"}},
		{"172.18.0.0", nil}, // the network is not an address of the container
		{"172.18.0.7", nil},
		{"fd00:1::7", nil},
		{"::", nil},
	}
	for _, tt := range tests {
		got, err := cat.ContainersByAddr(netip.MustParseAddr(tt.addr))
		if err != nil {
			t.Fatal(err)
		}
		if ids := ctrIDs(got); !slices.Equal(ids, tt.want) && len(ids)+len(tt.want) > 0 {
			t.Errorf("ContainersByAddr(%s) = %v, want %v", tt.addr, ids, tt.want)
		}
	}
	// Once the container goes, so does its reverse entry.
	if _, err := cat.DeleteContainer("dual"); err != nil {
		t.Fatal(err)
	}
	if got, _ := cat.ContainersByAddr(netip.MustParseAddr("fd00:1::6")); len(got) != 0 {
		t.Errorf("ContainersByAddr(fd00:1::6) after delete = %v", ctrIDs(got))
	}
}

func TestNetworks(t *testing.T) {
	cat := catalog.New()
	put(t, cat, ctr(nodeA, "c1", "", "172.18.0.5/16", "fd00:1::5/64"))
	put(t, cat, ctr(nodeA, "c2", "", "172.18.0.6/16", "fd00:1::6/64"))  // same networks
	put(t, cat, ctr(nodeA, "c3", "", "10.0.0.5/32", "2001:db8::1/128")) // host routes
	put(t, cat, ctr(nodeB, "c4", "", "172.18.200.1/24"))                // inside the /16, but its own network
	put(t, cat, &catalog.Container{ID: "c5", Target: "c5", Node: nodeA, Source: catalog.SourceDocker,
		Addrs: []catalog.NetAddr{{Network: "none"}}}) // no address at all
	register(t, cat, apiInst("ext-1", "books-ms", 80)) // an API address is a /32
	got := cat.Networks()
	slices.SortFunc(got, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	want := []netip.Prefix{pfx("172.18.0.0/16"), pfx("172.18.200.0/24"), pfx("fd00:1::/64")}
	if !slices.Equal(got, want) {
		t.Errorf("Networks() = %v, want %v", got, want)
	}
}

func TestHasTag(t *testing.T) {
	cat := catalog.New()
	c1 := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	put(t, cat, c1, inst(c1, "books-ms", 80, tags("v1", "shared")))
	c2 := ctr(nodeA, "c2", "web-2", "172.18.0.6/16")
	put(t, cat, c2, inst(c2, "books-ms", 80, tags("v2", "shared"), failing))
	register(t, cat, apiInst("ext-1", "orders", 80, tags("api")))
	tests := []struct {
		tag  string
		want bool
	}{
		{"v1", true},
		{"api", true},
		{"shared", true},
		{"v2", false}, // only on a failing instance
		{"v3", false},
		{"V1", false},
		{"books-ms", false}, // a service is not a tag
		{"", false},
	}
	for _, tt := range tests {
		if got := cat.HasTag(tt.tag); got != tt.want {
			t.Errorf("HasTag(%q) = %v; want %v", tt.tag, got, tt.want)
		}
	}
	if _, err := cat.DeleteContainer("c1"); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "shared"} {
		if cat.HasTag(tag) {
			t.Errorf("HasTag(%q) after its only passing instance went = true", tag)
		}
	}
}

func TestInstancesAndContainersByOwner(t *testing.T) {
	cat := catalog.New()
	seedBooks(t, cat)
	tests := []struct {
		src        catalog.Source
		node       string
		insts      []string
		containers []string
	}{
		{catalog.SourceDocker, nodeA, []string{"c1:53/udp", "c1:8080/tcp", "c2:8080/tcp", "c4:8080/tcp"}, []string{"c1", "c2", "c4"}},
		{catalog.SourceDocker, nodeB, []string{"c3:9090/tcp"}, []string{"c3"}},
		{catalog.SourceAPI, "", []string{"ext-1"}, []string{"api/ext-1"}},
		{catalog.SourceAPI, nodeA, nil, nil},
		{catalog.SourceDocker, "node", nil, nil}, // not a prefix match
	}
	for _, tt := range tests {
		insts, err := cat.Instances(tt.src, tt.node)
		if err != nil {
			t.Fatal(err)
		}
		if got := instIDs(insts); !slices.Equal(got, tt.insts) && len(got)+len(tt.insts) > 0 {
			t.Errorf("Instances(%s, %q) = %v, want %v", tt.src, tt.node, got, tt.insts)
		}
		ctrs, err := cat.Containers(tt.src, tt.node)
		if err != nil {
			t.Fatal(err)
		}
		if got := ctrIDs(ctrs); !slices.Equal(got, tt.containers) && len(got)+len(tt.containers) > 0 {
			t.Errorf("Containers(%s, %q) = %v, want %v", tt.src, tt.node, got, tt.containers)
		}
	}
}

// Reads hand out the objects stored, not copies: cheap, and the reason the
// types say callers must never modify them.
func TestReadsShareStoredObjects(t *testing.T) {
	cat := catalog.New()
	c := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	i := inst(c, "books-ms", 80)
	put(t, cat, c, i)
	if got, _ := cat.Instance(i.ID); got != i {
		t.Error("Instance returned a copy")
	}
	if _, got, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"}); len(got) != 1 || got[0] != i {
		t.Error("Service returned a copy")
	}
	if got, _ := cat.ContainersByTarget("web-1"); len(got) != 1 || got[0] != c {
		t.Error("ContainersByTarget returned a copy")
	}
	if got, _ := cat.ContainersByAddr(c.Addrs[0].Addr()); len(got) != 1 || got[0] != c {
		t.Error("ContainersByAddr returned a copy")
	}
}
