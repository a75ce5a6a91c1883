package catalog_test

import (
	"net/netip"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// Long polls and RunExpiry start goroutines; none may outlive its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	nodeA = "node-a"
	nodeB = "node-b"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

var (
	ctr  = testutil.Container
	inst = testutil.Instance
)

// apiInst builds an instance as the HTTP API registers it, at 192.0.2.10.
func apiInst(id, svc string, port uint16, mods ...func(*catalog.Instance)) *catalog.Instance {
	return testutil.APIInstance(id, svc, "192.0.2.10", port, mods...)
}

func tags(t ...string) func(*catalog.Instance) { return func(i *catalog.Instance) { i.Tags = t } }
func proto(p string) func(*catalog.Instance)   { return func(i *catalog.Instance) { i.Protocol = p } }
func portName(n string) func(*catalog.Instance) {
	return func(i *catalog.Instance) { i.PortName = n }
}
func failing(i *catalog.Instance) { i.Passing = false }

func rec(c *catalog.Container, insts ...*catalog.Instance) catalog.ContainerRecord {
	return catalog.ContainerRecord{Container: c, Instances: insts}
}

// put stores a container and its instances and returns the new index.
func put(t *testing.T, cat *catalog.Catalog, c *catalog.Container, insts ...*catalog.Instance) uint64 {
	t.Helper()
	idx, err := cat.PutContainer(c, insts)
	if err != nil {
		t.Fatalf("PutContainer(%s): %v", c.ID, err)
	}
	return idx
}

func register(t *testing.T, cat *catalog.Catalog, i *catalog.Instance) uint64 {
	t.Helper()
	idx, err := cat.RegisterInstance(i)
	if err != nil {
		t.Fatalf("RegisterInstance(%s): %v", i.ID, err)
	}
	return idx
}

func instIDs(insts []*catalog.Instance) []string {
	out := make([]string, 0, len(insts))
	for _, i := range insts {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}

func ctrIDs(ctrs []*catalog.Container) []string {
	out := make([]string, 0, len(ctrs))
	for _, c := range ctrs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// serviceIDs returns the sorted ids of what q selects, and the index.
func serviceIDs(t *testing.T, cat *catalog.Catalog, q catalog.ServiceQuery) (uint64, []string) {
	t.Helper()
	idx, insts, err := cat.Service(nil, q)
	if err != nil {
		t.Fatalf("Service(%+v): %v", q, err)
	}
	for _, i := range insts {
		if i.Service != q.Service {
			t.Fatalf("Service(%q) returned instance %s of %q", q.Service, i.ID, i.Service)
		}
	}
	return idx, instIDs(insts)
}

func allCtrIDs(t *testing.T, cat *catalog.Catalog) []string {
	t.Helper()
	_, ctrs, err := cat.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	return ctrIDs(ctrs)
}

func stats(t *testing.T, cat *catalog.Catalog) catalog.Stats {
	t.Helper()
	st, err := cat.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkIndex asserts that the lock-free index, the committed index and
// want agree.
func checkIndex(t *testing.T, cat *catalog.Catalog, want uint64) {
	t.Helper()
	if got := cat.Index(); got != want {
		t.Errorf("Index() = %d, want %d", got, want)
	}
	if got := stats(t, cat).Index; got != want {
		t.Errorf("Stats().Index = %d, want %d", got, want)
	}
}

// withTarget sets c's target, as a writer with its own naming does.
func withTarget(c *catalog.Container, target string) *catalog.Container {
	c.Target = target
	return c
}

// withID gives i another id.
func withID(i *catalog.Instance, id string) *catalog.Instance {
	i.ID = id
	return i
}
