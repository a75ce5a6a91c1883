package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// startCluster starts n nodes n1..nN, each joining n1, and waits until
// every node sees all.
func startCluster(t *testing.T, n int, mod func(*Config)) []*testNode {
	t.Helper()
	nodes := []*testNode{startNode(t, "n1", mod)}
	for i := 2; i <= n; i++ {
		nodes = append(nodes, startNode(t, "n"+string(rune('0'+i)), mod, nodes[0]))
	}
	eventually(t, "every node sees all", func() bool {
		for _, x := range nodes {
			if x.ml.NumMembers() != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func TestSpreadToPeers(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	register(t, n1, "books-1", "books-ms", "10.0.0.5")
	register(t, n2, "books-1", "books-ms", "10.0.0.6") // the same API id on another node
	want := map[*testNode][]string{
		n1: {"books-1", "n2/books-1"},
		n2: {"books-1", "n1/books-1"},
		n3: {"n1/books-1", "n2/books-1"},
	}
	for n, w := range want {
		eventually(t, n.Name()+" holds both", func() bool { return slices.Equal(serviceOn(t, n, "books-ms"), w) })
	}
	// The SRV target of a peer's instance carries the owner's name.
	if ctrs, err := n3.cat.ContainersByTarget("books-1.n1"); err != nil || len(ctrs) != 1 || ctrs[0].Node != "n1" {
		t.Errorf("target books-1.n1 on n3: %v %v", ctrs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n3.WaitHeld(ctx, "n1", n1.LocalVersion()); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.cat.DeregisterInstance("books-1"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{n2, n3} {
		eventually(t, n.Name()+" drops n1's", func() bool { return !slices.Contains(serviceOn(t, n, "books-ms"), "n1/books-1") })
	}
	m := n3.Members()
	if len(m) != 3 || m[0].Name != "n1" || m[0].State != "alive" || m[2].Local != true {
		t.Errorf("members %+v", m)
	}
}

// A node that joins late gets every owner's records in its join push/pull.
func TestJoinGetsEverything(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	for i, n := range nodes {
		for k := range 50 {
			register(t, n, "web-"+string(rune('a'+i))+strings.Repeat("x", k%5)+string(rune('a'+k%26))+string(rune('a'+k/26)), "web", "10.0.0.1")
		}
	}
	start := time.Now()
	for _, n := range nodes {
		eventually(t, n.Name()+" holds 100", func() bool { return len(serviceOn(t, n, "web")) == 100 })
	}
	t.Log("spread", time.Since(start))
	start = time.Now()
	late := startNode(t, "late", nil, nodes[1])
	defer func() { t.Log("late", time.Since(start)) }()
	eventually(t, "late holds 100", func() bool { return len(serviceOn(t, late, "web")) == 100 })
}

func TestFailureAndLeave(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	register(t, n2, "a", "web", "10.0.0.2")
	register(t, n3, "b", "web", "10.0.0.3")
	eventually(t, "n1 holds both", func() bool { return len(serviceOn(t, n1, "web")) == 2 })

	n2.kill() // no leave: n1 must detect the failure
	eventually(t, "n1 drops the dead node's", func() bool { return slices.Equal(serviceOn(t, n1, "web"), []string{"n3/b"}) })
	if m := n1.Members(); m[1].Name != "n2" || m[1].State != "dead" {
		t.Errorf("n2 is %+v", m[1])
	}

	if err := n3.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 drops the node that left", func() bool { return len(serviceOn(t, n1, "web")) == 0 })
	// memberlist's news of the leave may come first, its records gone
	// with it (dead), and n3's own leave message after it (left).
	eventually(t, "n1 holds n3 left", func() bool { m := n1.Members(); return m[2].Name == "n3" && m[2].State == "left" })
}

// A restarted node (same name, new incarnation) replaces all it had.
func TestRestartReplaces(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	register(t, n2, "old", "web", "10.0.0.2")
	eventually(t, "n1 holds old", func() bool { return slices.Equal(serviceOn(t, n1, "web"), []string{"n2/old"}) })
	addr := n2.Addr().String()
	n2.kill()
	n2b := startNode(t, "n2", func(c *Config) { c.BindAddr = addr }, n1)
	register(t, n2b, "new", "web", "10.0.0.3")
	eventually(t, "n1 holds only new", func() bool { return slices.Equal(serviceOn(t, n1, "web"), []string{"n2/new"}) })
}

// A peer that joins a node's address while the node starts (peers join a
// dead node's address every Rejoin) is answered by memberlist before
// Create returns: the merge must not read the local node of a memberlist
// New has not stored yet, a nil pointer. This loop meets that window
// within a fraction of a second.
func TestMergeWhileStarting(t *testing.T) {
	n1 := startNode(t, "n1", nil)
	probe := startNode(t, "n2", nil)
	addr := probe.Addr().String()
	probe.kill()
	stop := make(chan struct{})
	joined := make(chan struct{})
	defer func() { close(stop); <-joined }()
	go func() {
		defer close(joined)
		for {
			select {
			case <-stop:
				return
			default:
				n1.ml.Join([]string{addr})
			}
		}
	}()
	deadline := time.Now().Add(time.Second)
	for starts := 0; starts < 150 && time.Now().Before(deadline); {
		c, err := New(Config{Node: "n2", BindAddr: addr, Store: catalog.New(), Timing: FastTiming()})
		if err != nil {
			continue // the port not free yet
		}
		starts++
		time.Sleep(time.Millisecond)
		c.Shutdown()
	}
}

func logTo(buf *testutil.LogBuffer) func(*Config) {
	return func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

func TestWrongKeyRefused(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	var log1, logBad testutil.LogBuffer
	n1 := startNode(t, "n1", func(c *Config) { c.Keys = [][]byte{key}; logTo(&log1)(c) })
	register(t, n1, "a", "web", "10.0.0.1")
	bad := startNode(t, "bad", func(c *Config) {
		c.Keys = [][]byte{bytes.Repeat([]byte{2}, 32)}
		logTo(&logBad)(c)
	}, n1)
	register(t, bad, "b", "web", "10.0.0.2")
	eventually(t, "both sides log the key", func() bool {
		return strings.Contains(log1.String(), keyMismatchMsg) && strings.Contains(logBad.String(), keyMismatchMsg)
	})
	if n := n1.ml.NumMembers(); n != 1 {
		t.Errorf("n1 has %d members", n)
	}
	if got := serviceOn(t, n1, "web"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("n1 holds %v", got)
	}
	if got := serviceOn(t, bad, "web"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("bad holds %v", got)
	}
	// A node with the key in its keyring (rotation) joins.
	good := startNode(t, "good", func(c *Config) { c.Keys = [][]byte{key, bytes.Repeat([]byte{3}, 16)} }, n1)
	eventually(t, "rotated key joins", func() bool { return slices.Equal(serviceOn(t, good, "web"), []string{"n1/a"}) })
}

func TestDuplicateNameRefused(t *testing.T) {
	var log1, logDup testutil.LogBuffer
	n1 := startNode(t, "n1", logTo(&log1))
	n2 := startNode(t, "n2", nil, n1)
	eventually(t, "2 members", func() bool { return n1.ml.NumMembers() == 2 })
	register(t, n2, "a", "web", "10.0.0.1")
	eventually(t, "n1 holds n2's", func() bool { return len(serviceOn(t, n1, "web")) == 1 })

	dup := startNode(t, "n2", logTo(&logDup), n1)
	register(t, dup, "evil", "web", "10.6.6.6")
	// It waits for the holder to be declared dead, as a restarted node
	// would (nameWait: 4.6 s with FastTiming), then gives up.
	waitNameTaken(t, dup)
	for _, want := range []string{
		`msg="cluster: node name held by another address, waiting for it to be declared dead" node=n2 holder=` + n2.Addr().String(),
		`msg="cluster: node name taken" node=n2 holder=` + n2.Addr().String(),
	} {
		if !strings.Contains(logDup.String(), want) {
			t.Errorf("the duplicate's log lacks %q:\n%s", want, logDup.String())
		}
	}
	eventually(t, "n1 logs the refusal", func() bool {
		return strings.Contains(log1.String(), "cluster: refused a node with a taken name")
	})
	if got := serviceOn(t, n1, "web"); !slices.Equal(got, []string{"n2/a"}) {
		t.Errorf("n1 holds %v", got)
	}
}

// Hostile or broken payloads are dropped and counted; nothing panics and
// nobody's data changes.
func TestMalformedDropped(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	n1 := nodes[0]
	register(t, n1, "a", "web", "10.0.0.1")
	good := encodeDelta(&delta{Owner: "n2", Version: Version{1, 1}, Puts: []wireRecord{rec("x", "web")}})
	for _, b := range [][]byte{
		{}, {9}, {wireVersion}, {2, byte(msgDelta)}, {wireVersion, 99},
		good[:len(good)-3], append(slices.Clone(good), 0),
		encodeDelta(&delta{Owner: "Bad Owner", Version: Version{1, 1}}),
		encodePushPull(&pushPull{Sender: "n2", States: [][]byte{{1, 2, 3}}}),
	} {
		n1.d.NotifyMsg(b)
		n1.d.MergeRemoteState(b, false)
	}
	eventually(t, "drops counted", func() bool { return n1.Stats().Dropped >= 15 })
	if got := serviceOn(t, n1, "web"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("n1 holds %v", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	nodes := startCluster(t, 2, nil)
	n := startNode(t, "n3", func(c *Config) { c.Registerer = reg }, nodes[0])
	register(t, nodes[0], "a", "web", "10.0.0.1")
	eventually(t, "n3 holds a", func() bool { return len(serviceOn(t, n, "web")) == 1 })
	// b comes as a delta: n3 holds n1's state by now (a may have come in it).
	register(t, nodes[0], "b", "web", "10.0.0.2")
	eventually(t, "n3 holds b", func() bool { return len(serviceOn(t, n, "web")) == 2 })
	if names := testutil.LintMetrics(t, reg); len(names) != 15 {
		t.Errorf("metrics %v", names)
	}
	// Gossip goes on: every series below moves within a few rounds.
	wanted := []string{"svcdns_cluster_members{alive}", "svcdns_cluster_gossip_bytes_in_total", "svcdns_cluster_gossip_bytes_out_total",
		"svcdns_cluster_gossip_messages_in_total", "svcdns_cluster_gossip_messages_out_total", "svcdns_cluster_push_pulls_total",
		"svcdns_cluster_delay_seconds{delta}", "svcdns_cluster_delay_seconds{state}"}
	var got map[string]float64
	eventually(t, "every series counted", func() bool {
		got = gather(t, reg)
		for _, name := range wanted {
			if got[name] <= 0 {
				return false
			}
		}
		return true
	})
	if got["svcdns_cluster_members{alive}"] != 3 {
		t.Errorf("alive members %v", got["svcdns_cluster_members{alive}"])
	}
}

// The full state of a node that has changed nothing yet (the one every
// join brings) carries its start as the time of its change: the delay
// histogram observed centuries for it, from the zero time.
func TestDelayOfUnchangedState(t *testing.T) {
	reg := prometheus.NewRegistry()
	n1 := startNode(t, "n1", nil)
	startNode(t, "n2", func(c *Config) { c.Registerer = reg }, n1)
	var kinds map[string]*dto.Histogram
	eventually(t, "n2 applies n1's state", func() bool {
		kinds = delayHistograms(t, reg)
		return kinds["state"].GetSampleCount() > 0
	})
	// A bound on sanity, not on speed: both nodes started moments ago.
	if sum := kinds["state"].GetSampleSum(); sum > time.Hour.Seconds() {
		t.Errorf("delay of %d states: %g s in all", kinds["state"].GetSampleCount(), sum)
	}
	// A join brings full states only: nothing spread as a delta yet, so
	// an alert on the deltas' delay sees none of the join's.
	if n := kinds["delta"].GetSampleCount(); n != 0 {
		t.Errorf("%d deltas observed before any change", n)
	}
}

// delayHistograms reads svcdns_cluster_delay_seconds from reg by its kind
// label.
func delayHistograms(t *testing.T, reg prometheus.Gatherer) map[string]*dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if mf.GetName() != "svcdns_cluster_delay_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = m.GetHistogram()
				}
			}
		}
	}
	return out
}

// gather reads reg's series as name{label values} -> value (a histogram's
// sample count).
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				got[name] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return got
}

// cut drops all traffic between n and the others, both ways, until heal.
func cut(n *testNode, others ...*testNode) (heal func()) {
	addrs := map[string]bool{}
	for _, o := range others {
		addrs[o.Addr().String()] = true
	}
	inside := func(a string) bool { return addrs[a] }
	outside := func(a string) bool { return a == n.Addr().String() }
	n.tr.cut.Store(&inside)
	for _, o := range others {
		o.tr.cut.Store(&outside)
	}
	return func() {
		n.tr.cut.Store(nil)
		for _, o := range others {
			o.tr.cut.Store(nil)
		}
	}
}

// Both sides of a cut change; after it heals every node holds every
// change, nothing stale, within a few rejoin rounds.
func TestPartitionHeals(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	register(t, n1, "a1", "web", "10.0.0.1")
	register(t, n3, "c1", "web", "10.0.0.3")
	eventually(t, "n2 holds both", func() bool { return len(serviceOn(t, n2, "web")) == 2 })

	heal := cut(n3, n1, n2)
	eventually(t, "n1 sees n3 dead", func() bool { return slices.Equal(serviceOn(t, n1, "web"), []string{"a1"}) })
	eventually(t, "n3 sees n1 dead", func() bool { return slices.Equal(serviceOn(t, n3, "web"), []string{"c1"}) })
	// Changes on both sides during the cut.
	if _, err := n1.cat.DeregisterInstance("a1"); err != nil {
		t.Fatal(err)
	}
	register(t, n1, "a2", "web", "10.0.0.11")
	if _, err := n3.cat.DeregisterInstance("c1"); err != nil {
		t.Fatal(err)
	}
	register(t, n3, "c2", "web", "10.0.0.33")
	time.Sleep(300 * time.Millisecond)
	heal()
	want := map[*testNode][]string{n1: {"a2", "n3/c2"}, n2: {"n1/a2", "n3/c2"}, n3: {"c2", "n1/a2"}}
	for n, w := range want {
		eventually(t, n.Name()+" converges after the cut", func() bool { return slices.Equal(serviceOn(t, n, "web"), w) })
	}
}

// Two nodes leave (maintenance), a cut separates their hosts from the
// others, and they come back during it, joining each other only. After
// the cut heals, neither side holds anything of the other that leads
// there (the others hold them left, they never knew the others): only
// their join list names the other side, and it is joined while its
// addresses are not live members.
func TestRejoinAcrossHealedCut(t *testing.T) {
	nodes := startCluster(t, 4, nil)
	n1, n3, n4 := nodes[0], nodes[2], nodes[3]
	var all []string
	for _, n := range nodes {
		all = append(all, n.Addr().String())
	}
	register(t, n1, "a", "web", "10.0.0.1")
	for _, n := range []*testNode{n3, n4} {
		n.stop()
	}
	for _, name := range []string{"n3", "n4"} {
		eventually(t, "n1 holds "+name+" left", func() bool {
			m := n1.Members()
			return slices.ContainsFunc(m, func(m Member) bool { return m.Name == name && m.State == "left" })
		})
	}
	// A stream's remote address is its dialer's port, no gossip
	// address: the dialer's side cuts it.
	away, here := map[string]bool{all[2]: true, all[3]: true}, map[string]bool{all[0]: true, all[1]: true}
	var cutOn atomic.Bool
	cutOn.Store(true)
	fromAway := func(a string) bool { return cutOn.Load() && away[a] }
	fromHere := func(a string) bool { return cutOn.Load() && here[a] }
	for _, n := range nodes[:2] {
		n.tr.cut.Store(&fromAway)
	}
	var back []*testNode
	for k, name := range []string{"n3", "n4"} {
		n, err := newNode(t, name, func(c *Config) { c.BindAddr, c.Join = all[2+k], all })
		if err != nil {
			t.Fatal(err)
		}
		n.tr.cut.Store(&fromHere)
		n.run()
		back = append(back, n)
	}
	register(t, back[0], "c", "web", "10.0.0.3")
	eventually(t, "n3 and n4 together", func() bool { return back[0].ml.NumMembers() == 2 && back[1].ml.NumMembers() == 2 })
	cutOn.Store(false)
	eventually(t, "n1 holds n3's", func() bool { return slices.Equal(serviceOn(t, n1, "web"), []string{"a", "n3/c"}) })
	eventually(t, "n3 holds n1's", func() bool { return slices.Equal(serviceOn(t, back[0], "web"), []string{"c", "n1/a"}) })
}
