package catalog_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/svcdns/svcdns/catalog"
)

func TestNewIsEmpty(t *testing.T) {
	cat := catalog.New()
	checkIndex(t, cat, 0)
	if st := stats(t, cat); st != (catalog.Stats{}) {
		t.Errorf("Stats() = %+v, want zero", st)
	}
	idx, svcs := cat.Services(nil)
	if idx != 0 || len(svcs) != 0 {
		t.Errorf("Services() = %d, %v; want 0, none", idx, svcs)
	}
	if ids := allCtrIDs(t, cat); len(ids) != 0 {
		t.Errorf("AllContainers() = %v, want none", ids)
	}
	if _, err := cat.Instance("x"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Instance(x) error = %v, want ErrNotFound", err)
	}
}

// writeStep is one write of a sequence and what it must leave behind.
type writeStep struct {
	name    string
	write   func(*catalog.Catalog) (uint64, error)
	wantErr error // nil: the write succeeds
	raised  bool  // the write changed something and must raise the index by one
	// What the catalog must then hold: the instances and containers of
	// docker/node-a (nil: not checked).
	wantInsts, wantCtrs []string
	check               func(t *testing.T, cat *catalog.Catalog, idx uint64)
}

// runSteps applies steps in order to cat, checking after each one that a
// changing write raised the index by exactly one and returned it, that a
// no-op or failing write returned the current index and left it alone, and
// the state the step wants.
func runSteps(t *testing.T, cat *catalog.Catalog, steps []writeStep) {
	t.Helper()
	for _, s := range steps {
		prev := cat.Index()
		before := stats(t, cat)
		idx, err := s.write(cat)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: error %v", s.name, err)
		case s.wantErr != nil && !errors.Is(err, s.wantErr):
			t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
		}
		want := prev
		if s.raised {
			want = prev + 1
		}
		if idx != want {
			t.Errorf("%s: returned index %d, want %d", s.name, idx, want)
		}
		checkIndex(t, cat, want)
		if !s.raised {
			if after := stats(t, cat); after != before {
				t.Errorf("%s: Stats changed from %+v to %+v", s.name, before, after)
			}
		}
		if s.wantInsts != nil {
			insts, err := cat.Instances(catalog.SourceDocker, nodeA)
			if err != nil {
				t.Fatal(err)
			}
			if got := instIDs(insts); !slices.Equal(got, s.wantInsts) {
				t.Errorf("%s: instances of node-a = %v, want %v", s.name, got, s.wantInsts)
			}
		}
		if s.wantCtrs != nil {
			ctrs, err := cat.Containers(catalog.SourceDocker, nodeA)
			if err != nil {
				t.Fatal(err)
			}
			if got := ctrIDs(ctrs); !slices.Equal(got, s.wantCtrs) {
				t.Errorf("%s: containers of node-a = %v, want %v", s.name, got, s.wantCtrs)
			}
		}
		if s.check != nil {
			s.check(t, cat, idx)
		}
	}
}

func putW(c *catalog.Container, insts ...*catalog.Instance) func(*catalog.Catalog) (uint64, error) {
	return func(cat *catalog.Catalog) (uint64, error) { return cat.PutContainer(c, insts) }
}

func TestPutContainer(t *testing.T) {
	// Every step builds fresh objects: the catalog owns what it is given,
	// and a no-op write must be detected by value, not by pointer.
	c1 := func() *catalog.Container { return ctr(nodeA, "c1", "web-1", "172.18.0.5/16") }
	c2 := func() *catalog.Container { return ctr(nodeA, "c2", "web-2", "172.18.0.6/16") }
	three := func() []*catalog.Instance {
		c := c1()
		return []*catalog.Instance{
			inst(c, "books-ms", 80),
			inst(c, "books-ms", 443, tags("v1")),
			inst(c, "metrics", 9090),
		}
	}
	paused := func() *catalog.Container { c := c1(); c.Passing = false; return c }
	emptyName := func() *catalog.Container { c := c1(); c.Name, c.Target = "", c.ID; return c }

	runSteps(t, catalog.New(), []writeStep{
		{
			name:      "new container with three instances",
			write:     putW(c1(), three()...),
			raised:    true,
			wantInsts: []string{"c1:443/tcp", "c1:80/tcp", "c1:9090/tcp"},
			wantCtrs:  []string{"c1"},
		},
		{
			name:      "the same again, fresh copies",
			write:     putW(c1(), three()...),
			wantInsts: []string{"c1:443/tcp", "c1:80/tcp", "c1:9090/tcp"},
		},
		{
			name:      "one instance dropped, one changed, one added",
			write:     putW(c1(), inst(c1(), "books-ms", 80, tags("v2")), inst(c1(), "books-ms", 8080)),
			raised:    true,
			wantInsts: []string{"c1:80/tcp", "c1:8080/tcp"},
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				got, err := cat.Instance("c1:80/tcp")
				if err != nil || !slices.Equal(got.Tags, []string{"v2"}) {
					t.Errorf("c1:80/tcp = %+v, %v; want tags [v2]", got, err)
				}
				// The stale instance took its service with it.
				_, svcs := cat.Services(nil)
				if len(svcs) != 1 || svcs[0].Name != "books-ms" || svcs[0].Instances != 2 {
					t.Errorf("Services() = %+v, want only books-ms with 2 instances", svcs)
				}
			},
		},
		{
			name:   "only the container changes (paused)",
			write:  putW(paused(), inst(c1(), "books-ms", 80, tags("v2")), inst(c1(), "books-ms", 8080)),
			raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				if got, _ := cat.ContainersByTarget("web-1"); len(got) != 1 || got[0].Passing {
					t.Errorf("web-1 = %+v, want one paused container", got)
				}
			},
		},
		{
			name:      "only an instance changes",
			write:     putW(paused(), inst(c1(), "books-ms", 80, tags("v2"), failing), inst(c1(), "books-ms", 8080)),
			raised:    true,
			wantInsts: []string{"c1:80/tcp", "c1:8080/tcp"},
		},
		{
			name:   "the container's name is dropped",
			write:  putW(emptyName()),
			raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				if got, _ := cat.ContainersByTarget("web-1"); len(got) != 0 {
					t.Errorf("ContainersByTarget(web-1) = %v after the name went", ctrIDs(got))
				}
			},
			wantInsts: []string{},
			wantCtrs:  []string{"c1"},
		},
		{
			name:      "a second container leaves the first alone",
			write:     putW(c2(), inst(c2(), "books-ms", 80)),
			raised:    true,
			wantInsts: []string{"c2:80/tcp"},
			wantCtrs:  []string{"c1", "c2"},
		},
		{
			name:    "instance of another container",
			write:   putW(c1(), inst(c2(), "books-ms", 81)),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:      "an invalid instance writes nothing of the record",
			write:     putW(c1(), inst(c1(), "books-ms", 80), inst(c1(), "Books.MS", 81)),
			wantErr:   catalog.ErrInvalid,
			wantInsts: []string{"c2:80/tcp"},
		},
		{
			name:    "instance id that only starts with its container's id",
			write:   putW(c1(), withID(inst(c1(), "books-ms", 80), "c1x:80/tcp")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "instance id that is its container's id",
			write:   putW(c1(), withID(inst(c1(), "books-ms", 80), "c1")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "instance id with another separator",
			write:   putW(c1(), withID(inst(c1(), "books-ms", 80), "c1/80")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "container without id",
			write:   putW(ctr(nodeA, "", "web-3")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "container name that is not a DNS label",
			write:   putW(ctr(nodeA, "c3", "Web_3")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "container target that is not DNS labels",
			write:   putW(withTarget(ctr(nodeA, "c3", "web-3"), "web-3..n1")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "container without target",
			write:   putW(withTarget(ctr(nodeA, "c3", "web-3"), "")),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "instance target other than its container's",
			write:   putW(c1(), inst(c1(), "books-ms", 80, func(i *catalog.Instance) { i.Target = "web-9" })),
			wantErr: catalog.ErrInvalid,
		},
		{
			name:    "container without source",
			write:   putW(&catalog.Container{ID: "c3", Node: nodeA}),
			wantErr: catalog.ErrInvalid,
		},
	})
}

func TestDeleteContainer(t *testing.T) {
	cat := catalog.New()
	c1 := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	c2 := ctr(nodeA, "c2", "web-2", "172.18.0.6/16")
	put(t, cat, c1, inst(c1, "books-ms", 80), inst(c1, "metrics", 9090))
	put(t, cat, c2, inst(c2, "books-ms", 80))
	del := func(id string) func(*catalog.Catalog) (uint64, error) {
		return func(cat *catalog.Catalog) (uint64, error) { return cat.DeleteContainer(id) }
	}
	if rec, err := cat.Container("c1"); err != nil || rec.Container.Name != "web-1" || len(rec.Instances) != 2 {
		t.Fatalf("Container(c1) = %+v, %v; want web-1 with 2 instances", rec, err)
	}
	runSteps(t, cat, []writeStep{
		{name: "unknown container", write: del("nope"), wantCtrs: []string{"c1", "c2"}},
		{name: "empty id", write: del(""), wantCtrs: []string{"c1", "c2"}},
		{
			name:      "known container goes with its instances",
			write:     del("c1"),
			raised:    true,
			wantInsts: []string{"c2:80/tcp"},
			wantCtrs:  []string{"c2"},
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(ids, []string{"c2:80/tcp"}) {
					t.Errorf("books-ms = %v, want [c2:80/tcp]", ids)
				}
				// metrics is empty now: gone from the list, and its own
				// index is that of the delete.
				_, svcs := cat.Services(nil)
				if len(svcs) != 1 || svcs[0].Name != "books-ms" {
					t.Errorf("Services() = %+v, want only books-ms", svcs)
				}
				if sidx, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "metrics"}); len(ids) != 0 || sidx != idx {
					t.Errorf("metrics = %d, %v; want %d, none", sidx, ids, idx)
				}
				if got, _ := cat.ContainersByTarget("web-1"); len(got) != 0 {
					t.Errorf("web-1 still resolves to %v", ctrIDs(got))
				}
			},
		},
		{name: "the same again", write: del("c1"), wantCtrs: []string{"c2"}},
	})
	if _, err := cat.Container("c1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Container(c1) after delete: %v, want ErrNotFound", err)
	}
}

func regW(i *catalog.Instance) func(*catalog.Catalog) (uint64, error) {
	return func(cat *catalog.Catalog) (uint64, error) { return cat.RegisterInstance(i) }
}

func TestRegisterInstance(t *testing.T) {
	cat := catalog.New()
	first := apiInst("books-1", "books-ms", 8080, tags("v1"))
	runSteps(t, cat, []writeStep{
		{
			name:   "new instance",
			write:  regW(first),
			raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				got, err := cat.Instance("books-1")
				if err != nil || got != first {
					t.Fatalf("Instance(books-1) = %p, %v; want the registered %p", got, err, first)
				}
				// Its SRV target, books-1.container.<zone>, resolves.
				ctrs, err := cat.ContainersByTarget("books-1")
				if err != nil || len(ctrs) != 1 {
					t.Fatalf("ContainersByTarget(books-1) = %v, %v; want one", ctrIDs(ctrs), err)
				}
				c := ctrs[0]
				if c.ID != "api/books-1" || c.Source != catalog.SourceAPI || !c.Passing || !slices.Equal(c.Addrs, first.Addrs) {
					t.Errorf("container of books-1 = %+v", c)
				}
				if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms", Tag: "v1"}); !slices.Equal(ids, []string{"books-1"}) {
					t.Errorf("v1.books-ms = %v", ids)
				}
			},
		},
		{
			name:  "the same again, a fresh copy",
			write: regW(apiInst("books-1", "books-ms", 8080, tags("v1"))),
		},
		{
			name:   "new port",
			write:  regW(apiInst("books-1", "books-ms", 9090)),
			raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				_, insts, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"})
				if len(insts) != 1 || insts[0].Port != 9090 || len(insts[0].Tags) != 0 {
					t.Errorf("books-ms = %+v, want books-1 on 9090 without tags", insts)
				}
			},
		},
		{
			name:   "moved to another service",
			write:  regW(apiInst("books-1", "orders", 9090)),
			raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				if sidx, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); len(ids) != 0 || sidx != idx {
					t.Errorf("books-ms = %d, %v; want %d, none", sidx, ids, idx)
				}
				if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "orders"}); !slices.Equal(ids, []string{"books-1"}) {
					t.Errorf("orders = %v, want [books-1]", ids)
				}
				if st := stats(t, cat); st.Services != 1 || st.Instances != 1 || st.Containers != 1 {
					t.Errorf("Stats() = %+v, want 1 service, 1 instance, 1 container", st)
				}
			},
		},
	})
}

// A TTL heartbeat (the same instance put again with only a later expiry)
// must move the expiry without waking long polls on the service: it
// changes no answer.
func TestRegisterInstanceHeartbeat(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cat := catalog.New()
	books := catalog.ServiceQuery{Service: "books-ms"}
	register(t, cat, apiInst("hb", "books-ms", 8080, expires(t0)))
	svcIdx, _, _ := cat.Service(nil, books)

	ws := memdb.NewWatchSet()
	if _, _, err := cat.Service(ws, books); err != nil {
		t.Fatal(err)
	}
	cat.Services(ws)
	idx, err := cat.RegisterInstance(apiInst("hb", "books-ms", 8080, expires(t0.Add(time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	if idx != cat.Index() {
		t.Errorf("heartbeat returned index %d, Index() = %d", idx, cat.Index())
	}
	if got, _, _ := cat.Service(nil, books); got != svcIdx {
		t.Errorf("books-ms index after a heartbeat = %d, want the unchanged %d", got, svcIdx)
	}
	if !ws.Watch(time.After(quiet)) {
		t.Error("a heartbeat woke a watch on books-ms or on the service list")
	}
	if got, err := cat.Instance("hb"); err != nil || !got.Expires.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Instance(hb) = %+v, %v; want the new expiry", got, err)
	}
	// The old expiry no longer counts.
	if ids, _, err := cat.ExpireInstances(t0); err != nil || len(ids) != 0 {
		t.Errorf("ExpireInstances(old expiry) = %v, %v; want nothing", ids, err)
	}
	if st := stats(t, cat); st.Instances != 1 || st.Containers != 1 {
		t.Errorf("Stats() = %+v, want 1 instance in 1 container", st)
	}

	// A put that moves the expiry and changes something else is a change.
	idx, err = cat.RegisterInstance(apiInst("hb", "books-ms", 9090, expires(t0.Add(2*time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := cat.Service(nil, books); got != idx || got <= svcIdx {
		t.Errorf("books-ms index after a port change = %d, want %d", got, idx)
	}
	if ws.Watch(time.After(5 * time.Second)) {
		t.Error("a port change did not wake the watch")
	}
	if ids, _, _ := cat.ExpireInstances(t0.Add(2 * time.Minute)); !slices.Equal(ids, []string{"hb"}) {
		t.Errorf("ExpireInstances(new expiry) = %v, want [hb]", ids)
	}
}

func TestRegisterInstanceInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*catalog.Instance)
	}{
		{"empty id", func(i *catalog.Instance) { i.ID = "" }},
		{"empty service", func(i *catalog.Instance) { i.Service = "" }},
		{"upper-case service", func(i *catalog.Instance) { i.Service = "Books-MS" }},
		{"dotted service", func(i *catalog.Instance) { i.Service = "v1.books-ms" }},
		{"service starting with a hyphen", func(i *catalog.Instance) { i.Service = "-books" }},
		{"service ending with a hyphen", func(i *catalog.Instance) { i.Service = "books-" }},
		{"underscore service", func(i *catalog.Instance) { i.Service = "_tcp" }},
		{"64-byte service", func(i *catalog.Instance) { i.Service = strings.Repeat("a", 64) }},
		{"non-ASCII service", func(i *catalog.Instance) { i.Service = "\u212Aube" }},
		{"upper-case tag", tags("ok", "V1")},
		{"empty tag", tags("")},
		{"dotted tag", tags("a.b")},
		{"no protocol", proto("")},
		{"upper-case protocol", proto("TCP")},
		{"sctp", proto("sctp")},
		{"docker source", func(i *catalog.Instance) { i.Source = catalog.SourceDocker }},
		{"no source", func(i *catalog.Instance) { i.Source = "" }},
		{"no container id", func(i *catalog.Instance) { i.ContainerID = "" }},
		{"container name not a label", func(i *catalog.Instance) { i.ContainerName = "Books_1" }},
	}
	cat := catalog.New()
	idx := register(t, cat, apiInst("keep", "books-ms", 80))
	before := stats(t, cat)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := apiInst("bad-1", "books-ms", 8080, tt.mod)
			got, err := cat.RegisterInstance(i)
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if got != idx {
				t.Errorf("returned index %d, want the unchanged %d", got, idx)
			}
			checkIndex(t, cat, idx)
			if after := stats(t, cat); after != before {
				t.Errorf("Stats changed from %+v to %+v", before, after)
			}
			if _, err := cat.Instance(i.ID); i.ID != "" && !errors.Is(err, catalog.ErrNotFound) {
				t.Errorf("Instance(%s) error %v, want ErrNotFound", i.ID, err)
			}
		})
	}
}

// An API client must not overwrite, and so hijack, what a Docker watcher
// registered.
func TestRegisterInstanceRefusesDockerID(t *testing.T) {
	cat := catalog.New()
	c := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	dock := inst(c, "books-ms", 80)
	idx := put(t, cat, c, dock)

	got, err := cat.RegisterInstance(apiInst(dock.ID, "evil", 80))
	if !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("error %v, want ErrConflict", err)
	}
	if got != idx {
		t.Errorf("returned index %d, want %d", got, idx)
	}
	checkIndex(t, cat, idx)
	if i, err := cat.Instance(dock.ID); err != nil || i != dock {
		t.Errorf("Instance(%s) = %+v, %v; want the Docker instance untouched", dock.ID, i, err)
	}
	if ids := allCtrIDs(t, cat); !slices.Equal(ids, []string{"c1"}) {
		t.Errorf("containers = %v, want [c1]", ids)
	}
}

func TestDeregisterInstance(t *testing.T) {
	cat := catalog.New()
	c := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	put(t, cat, c, inst(c, "books-ms", 80))
	register(t, cat, apiInst("books-1", "books-ms", 8080))
	register(t, cat, apiInst("books-2", "books-ms", 8081))
	dereg := func(id string) func(*catalog.Catalog) (uint64, error) {
		return func(cat *catalog.Catalog) (uint64, error) { return cat.DeregisterInstance(id) }
	}
	books := func(want ...string) func(*testing.T, *catalog.Catalog, uint64) {
		return func(t *testing.T, cat *catalog.Catalog, _ uint64) {
			if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(ids, want) {
				t.Errorf("books-ms = %v, want %v", ids, want)
			}
		}
	}
	runSteps(t, cat, []writeStep{
		{name: "unknown id", write: dereg("nope"), wantErr: catalog.ErrNotFound, check: books("books-1", "books-2", "c1:80/tcp")},
		{name: "empty id", write: dereg(""), wantErr: catalog.ErrNotFound},
		{
			name: "a Docker instance is not the API's to remove", write: dereg("c1:80/tcp"), wantErr: catalog.ErrNotFound,
			wantInsts: []string{"c1:80/tcp"}, wantCtrs: []string{"c1"},
		},
		{
			name: "registered instance", write: dereg("books-1"), raised: true,
			check: func(t *testing.T, cat *catalog.Catalog, idx uint64) {
				books("books-2", "c1:80/tcp")(t, cat, idx)
				if _, err := cat.Instance("books-1"); !errors.Is(err, catalog.ErrNotFound) {
					t.Errorf("Instance(books-1) error %v, want ErrNotFound", err)
				}
				if got, _ := cat.ContainersByTarget("books-1"); len(got) != 0 {
					t.Errorf("the SRV target of books-1 still resolves: %v", ctrIDs(got))
				}
				if ids := allCtrIDs(t, cat); !slices.Equal(ids, []string{"api/books-2", "c1"}) {
					t.Errorf("containers = %v", ids)
				}
			},
		},
		{name: "the same again", write: dereg("books-1"), wantErr: catalog.ErrNotFound},
	})
}

// node-a's records, as a watcher would list them; gen picks a state.
func nodeARecords(gen int) []catalog.ContainerRecord {
	c1 := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	c2 := ctr(nodeA, "c2", "web-2", "172.18.0.6/16")
	c3 := ctr(nodeA, "c3", "orders-1", "172.18.0.7/16")
	c4 := ctr(nodeA, "c4", "web-4", "172.18.0.8/16")
	switch gen {
	case 0:
		return []catalog.ContainerRecord{
			rec(c1, inst(c1, "books-ms", 80)),
			rec(c2, inst(c2, "books-ms", 80)),
			rec(c3, inst(c3, "orders", 80)),
		}
	case 1: // c2 unhealthy, c3 gone, c4 started
		c2.Passing = false
		return []catalog.ContainerRecord{
			rec(c1, inst(c1, "books-ms", 80)),
			rec(c2, inst(c2, "books-ms", 80)),
			rec(c4, inst(c4, "books-ms", 80)),
		}
	case 2: // only an instance of c1 changes: a new tag
		c2.Passing = false
		return []catalog.ContainerRecord{
			rec(c1, inst(c1, "books-ms", 80, tags("v2"))),
			rec(c2, inst(c2, "books-ms", 80)),
			rec(c4, inst(c4, "books-ms", 80)),
		}
	case 3: // c1 stops exposing its port: the container stays, its instance goes
		c2.Passing = false
		return []catalog.ContainerRecord{
			rec(c1),
			rec(c2, inst(c2, "books-ms", 80)),
			rec(c4, inst(c4, "books-ms", 80)),
		}
	}
	return nil
}

func TestReplaceNode(t *testing.T) {
	cat := catalog.New()
	// What belongs to others: node-b's containers and an API instance.
	c9 := ctr(nodeB, "c9", "web-1", "172.19.0.5/16")
	otherInst := inst(c9, "books-ms", 80)
	put(t, cat, c9, otherInst)
	ext := apiInst("ext-1", "books-ms", 8080)
	register(t, cat, ext)

	steps := []struct {
		name      string
		records   []catalog.ContainerRecord
		want      catalog.ReplaceResult // Index aside
		wantCtrs  []string              // docker/node-a
		wantInsts []string
	}{
		{
			name:      "first sync",
			records:   nodeARecords(0),
			want:      catalog.ReplaceResult{Added: 3},
			wantCtrs:  []string{"c1", "c2", "c3"},
			wantInsts: []string{"c1:80/tcp", "c2:80/tcp", "c3:80/tcp"},
		},
		{
			name:      "identical resync",
			records:   nodeARecords(0),
			wantCtrs:  []string{"c1", "c2", "c3"},
			wantInsts: []string{"c1:80/tcp", "c2:80/tcp", "c3:80/tcp"},
		},
		{
			name:      "one added, one removed, one updated",
			records:   nodeARecords(1),
			want:      catalog.ReplaceResult{Added: 1, Removed: 1, Updated: 1},
			wantCtrs:  []string{"c1", "c2", "c4"},
			wantInsts: []string{"c1:80/tcp", "c2:80/tcp", "c4:80/tcp"},
		},
		{
			name:      "identical resync after changes",
			records:   nodeARecords(1),
			wantCtrs:  []string{"c1", "c2", "c4"},
			wantInsts: []string{"c1:80/tcp", "c2:80/tcp", "c4:80/tcp"},
		},
		{
			name:      "only an instance changed",
			records:   nodeARecords(2),
			want:      catalog.ReplaceResult{Updated: 1},
			wantCtrs:  []string{"c1", "c2", "c4"},
			wantInsts: []string{"c1:80/tcp", "c2:80/tcp", "c4:80/tcp"},
		},
		{
			name:      "an instance went, its container stays",
			records:   nodeARecords(3),
			want:      catalog.ReplaceResult{Updated: 1},
			wantCtrs:  []string{"c1", "c2", "c4"},
			wantInsts: []string{"c2:80/tcp", "c4:80/tcp"},
		},
		{
			name:      "Docker host now empty",
			records:   nil,
			want:      catalog.ReplaceResult{Removed: 3},
			wantCtrs:  []string{},
			wantInsts: []string{},
		},
		{
			name:      "empty again",
			records:   []catalog.ContainerRecord{},
			wantCtrs:  []string{},
			wantInsts: []string{},
		},
	}
	for _, s := range steps {
		prev := cat.Index()
		_, prevBooks, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"})
		res, err := cat.ReplaceNode(catalog.SourceDocker, nodeA, s.records)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.want
		want.Index = prev
		if want.Repairs() > 0 {
			want.Index = prev + 1 // one transaction, one index
		}
		if res != want {
			t.Errorf("%s: ReplaceNode = %+v, want %+v", s.name, res, want)
		}
		if res.Repairs() != s.want.Added+s.want.Removed+s.want.Updated {
			t.Errorf("%s: Repairs() = %d", s.name, res.Repairs())
		}
		checkIndex(t, cat, want.Index)

		ctrs, _ := cat.Containers(catalog.SourceDocker, nodeA)
		if got := ctrIDs(ctrs); !slices.Equal(got, s.wantCtrs) {
			t.Errorf("%s: containers of node-a = %v, want %v", s.name, got, s.wantCtrs)
		}
		insts, _ := cat.Instances(catalog.SourceDocker, nodeA)
		if got := instIDs(insts); !slices.Equal(got, s.wantInsts) {
			t.Errorf("%s: instances of node-a = %v, want %v", s.name, got, s.wantInsts)
		}
		// Others' objects are untouched: the very same objects.
		if got, err := cat.Instance(otherInst.ID); err != nil || got != otherInst {
			t.Errorf("%s: node-b's instance = %+v, %v; want it untouched", s.name, got, err)
		}
		if got, err := cat.Instance(ext.ID); err != nil || got != ext {
			t.Errorf("%s: API instance = %+v, %v; want it untouched", s.name, got, err)
		}
		if got, _ := cat.Containers(catalog.SourceDocker, nodeB); len(got) != 1 || got[0] != c9 {
			t.Errorf("%s: node-b's containers = %v, want c9 untouched", s.name, ctrIDs(got))
		}
		if want.Repairs() == 0 {
			_, books, _ := cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"})
			if !slices.Equal(instIDs(books), instIDs(prevBooks)) {
				t.Errorf("%s: a no-op resync changed books-ms from %v to %v", s.name, instIDs(prevBooks), instIDs(books))
			}
		}
	}
	// c3 (orders) went in the third step; only node-b and the API instance
	// are left in books-ms.
	if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(ids, []string{"c9:80/tcp", "ext-1"}) {
		t.Errorf("books-ms at the end = %v", ids)
	}
	if _, svcs := cat.Services(nil); len(svcs) != 1 {
		t.Errorf("Services() at the end = %+v, want only books-ms", svcs)
	}
}

func TestReplaceNodeRejects(t *testing.T) {
	valid := func() catalog.ContainerRecord {
		c := ctr(nodeA, "c5", "web-5", "172.18.0.9/16")
		return rec(c, inst(c, "books-ms", 80))
	}
	tests := []struct {
		name string
		bad  catalog.ContainerRecord
	}{
		{"container of another node", func() catalog.ContainerRecord {
			c := ctr(nodeB, "c7", "web-7", "172.19.0.7/16")
			return rec(c, inst(c, "books-ms", 80))
		}()},
		{"container of another source", func() catalog.ContainerRecord {
			c := ctr(nodeA, "c7", "web-7", "172.18.0.7/16")
			c.Source = catalog.SourceAPI
			return rec(c)
		}()},
		{"no container", catalog.ContainerRecord{}},
		{"invalid container", rec(ctr(nodeA, "c7", "Web_7"))},
		{"invalid instance", func() catalog.ContainerRecord {
			c := ctr(nodeA, "c7", "web-7", "172.18.0.7/16")
			return rec(c, inst(c, "books-ms", 80, proto("sctp")))
		}()},
		{"instance of another container", func() catalog.ContainerRecord {
			c := ctr(nodeA, "c7", "web-7", "172.18.0.7/16")
			return rec(c, inst(ctr(nodeA, "c8", "web-8"), "books-ms", 80))
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := catalog.New()
			if _, err := cat.ReplaceNode(catalog.SourceDocker, nodeA, nodeARecords(0)); err != nil {
				t.Fatal(err)
			}
			prev := cat.Index()
			before := stats(t, cat)
			// A valid record first and the bad one last: the whole
			// replace is one transaction, so neither c5 nor the removal of
			// c1..c3 may take effect.
			res, err := cat.ReplaceNode(catalog.SourceDocker, nodeA, []catalog.ContainerRecord{valid(), tt.bad})
			if !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if res.Index != prev {
				t.Errorf("result index %d, want the unchanged %d", res.Index, prev)
			}
			checkIndex(t, cat, prev)
			if after := stats(t, cat); after != before {
				t.Errorf("Stats changed from %+v to %+v", before, after)
			}
			if ids := allCtrIDs(t, cat); !slices.Equal(ids, []string{"c1", "c2", "c3"}) {
				t.Errorf("containers = %v, want [c1 c2 c3]", ids)
			}
		})
	}
}

// Source's contract: "A source only ever replaces or deletes what it
// registered itself." The catalog keys containers and instances by id
// alone, so a write whose id is already held by another owner (source and
// node) must leave that owner's objects alone: it fails with ErrConflict,
// as RegisterInstance does for an instance id held by Docker, or skips
// what it may not take.
func TestWritesNeverTakeOverAnotherOwner(t *testing.T) {
	tests := []struct {
		name  string
		write func(*catalog.Catalog) (uint64, error)
	}{
		{
			// The HTTP API names the row "api/<id>", but the catalog
			// takes ContainerID from its caller.
			name:  "RegisterInstance with the id of a Docker container",
			write: regW(apiInst("ext-9", "evil", 80, func(i *catalog.Instance) { i.ContainerID = "c1" })),
		},
		{
			name: "PutContainer with the id of an API instance",
			write: func(cat *catalog.Catalog) (uint64, error) {
				c := ctr(nodeA, "c2", "web-2", "172.18.0.6/16")
				return cat.PutContainer(c, []*catalog.Instance{inst(c, "books-ms", 80, func(i *catalog.Instance) { i.ID = "ext-1" })})
			},
		},
		{
			// Two svcdns nodes pointed at the same Docker host, or a
			// node renamed: the same container ids under two owners.
			name: "ReplaceNode of node-b with node-a's container",
			write: func(cat *catalog.Catalog) (uint64, error) {
				c := ctr(nodeB, "c1", "web-1", "172.18.0.5/16")
				res, err := cat.ReplaceNode(catalog.SourceDocker, nodeB, []catalog.ContainerRecord{rec(c, inst(c, "books-ms", 80))})
				return res.Index, err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := catalog.New()
			c1 := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
			dock := inst(c1, "books-ms", 80)
			put(t, cat, c1, dock)
			ext := apiInst("ext-1", "books-ms", 8080)
			register(t, cat, ext)
			_, before, _ := cat.AllContainers()

			// ErrInvalid too: ids say where an instance lives, so most
			// takeovers are not even well-formed.
			if _, err := tt.write(cat); err != nil && !errors.Is(err, catalog.ErrConflict) && !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("error %v, want nil, ErrConflict or ErrInvalid", err)
			}

			if got, err := cat.Instance(dock.ID); err != nil || got != dock {
				t.Errorf("node-a's instance %s = %+v, %v; want it untouched", dock.ID, got, err)
			}
			if got, err := cat.Instance(ext.ID); err != nil || got != ext {
				t.Errorf("API instance %s = %+v, %v; want it untouched", ext.ID, got, err)
			}
			_, after, _ := cat.AllContainers()
			for _, b := range before {
				if !slices.Contains(after, b) {
					t.Errorf("container %s (%s/%s) was replaced or removed", b.ID, b.Source, b.Node)
				}
			}
		})
	}
}

// A batch applies in one index step, and a refused change (bad input,
// another owner's container) leaves the rest of the batch to apply: the
// watcher writes whatever events are queued with one Apply.
func TestApplyBatch(t *testing.T) {
	cat := catalog.New()
	c0 := ctr(nodeA, "c0", "web-0", "172.18.0.2/16")
	put(t, cat, c0, inst(c0, "books-ms", 80))
	foreign := ctr(nodeB, "cb", "web-b", "172.18.0.9/16")
	before := put(t, cat, foreign, inst(foreign, "books-ms", 80))

	c1 := ctr(nodeA, "c1", "web-1", "172.18.0.3/16")
	c1v2 := ctr(nodeA, "c1", "web-1", "172.18.0.3/16")
	bad := ctr(nodeA, "c2", "Not_A_Label", "172.18.0.4/16")
	takeover := ctr(nodeA, "cb", "web-b", "172.18.0.9/16")
	changes := []catalog.Change{
		{Put: &catalog.ContainerRecord{Container: c1, Instances: []*catalog.Instance{inst(c1, "books-ms", 80)}}},
		{Put: &catalog.ContainerRecord{Container: bad, Instances: []*catalog.Instance{inst(bad, "books-ms", 80)}}},
		{Put: &catalog.ContainerRecord{Container: takeover, Instances: []*catalog.Instance{inst(takeover, "orders", 80)}}},
		{Delete: "c0"},
		{Delete: "never-there"},
		// The same container twice in one batch: the last one counts.
		{Put: &catalog.ContainerRecord{Container: c1v2, Instances: []*catalog.Instance{inst(c1v2, "orders", 8080)}}},
	}
	idx, errs := cat.Apply(changes)
	if idx != before+1 {
		t.Errorf("Apply returned index %d, want one step past %d", idx, before)
	}
	wantErr := []error{nil, catalog.ErrInvalid, catalog.ErrConflict, nil, nil, nil}
	if len(errs) != len(changes) {
		t.Fatalf("errs = %v, want one per change", errs)
	}
	for k, want := range wantErr {
		if (want == nil) != (errs[k] == nil) || want != nil && !errors.Is(errs[k], want) {
			t.Errorf("change %d: error %v, want %v", k, errs[k], want)
		}
	}
	if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(ids, []string{"cb:80/tcp"}) {
		t.Errorf("books-ms = %v, want only node-b's cb:80/tcp", ids)
	}
	if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "orders"}); !slices.Equal(ids, []string{"c1:8080/tcp"}) {
		t.Errorf("orders = %v, want [c1:8080/tcp]", ids)
	}
	if ids := allCtrIDs(t, cat); !slices.Equal(ids, []string{"c1", "cb"}) {
		t.Errorf("containers = %v, want [c1 cb]", ids)
	}

	// A batch where every change is refused changes nothing.
	idx, errs = cat.Apply(changes[1:3])
	if idx != before+1 || errs[0] == nil || errs[1] == nil {
		t.Errorf("refused batch: index %d, errors %v; want the unchanged %d and two errors", idx, errs, before+1)
	}
}
