package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/cluster"
)

// node is one cluster node of the benchmark.
type node struct {
	idx   int
	name  string
	addr  string
	c     *cluster.Cluster
	count *countStore   // peers' records counted; nil for a real catalog
	cat   *catalogStore // nil for a count store
	done  chan error
	dead  bool

	pending atomic.Bool // a change of the load phase not yet published

	mu       sync.Mutex
	arrivals []arrival // of peers' versions, while recording
}

type arrival struct {
	owner string
	ver   cluster.Version
	at    time.Time
}

// counter is what counts the containers the node's store holds.
func (n *node) counter() counter {
	if n.count != nil {
		return n.count.counter
	}
	return n.cat.counter
}

// held is how many containers of owner the node holds in its store.
func (n *node) held(owner string) int { return int(n.counter().Held(owner)) }

// heldTotal is how many containers of its peers the node holds in its
// store.
func (n *node) heldTotal() int { return int(n.counter().total.Load()) }

// bench is one cluster of the benchmark.
type bench struct {
	o         options
	key       []byte
	log       *slog.Logger
	nodes     []*node
	recording atomic.Bool
}

// start starts n nodes, each joining node 0, node 0 with a real catalog,
// and waits until every node holds every other node's records.
func (b *bench) start(n int) error {
	began := time.Now()
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{b.nodes[0].addr}
		}
		if _, err := b.add(i, i == 0, join); err != nil {
			return err
		}
		if (i+1)%10 == 0 {
			fmt.Fprintf(os.Stderr, "cluster: %d nodes started after %v; node 0 holds %d peer instances\n",
				i+1, time.Since(began).Round(time.Millisecond), b.nodes[0].heldTotal())
		}
	}
	return b.waitHeld(b.nodes, (n-1)*b.o.instances, b.o.form)
}

// add starts node number i, with a real catalog or a count store.
func (b *bench) add(i int, real bool, join []string) (*node, error) {
	nd := &node{idx: i, name: nodeName(i), done: make(chan error, 1)}
	recs := ownRecords(nd.name, i, b.o.instances)
	var store cluster.Store
	if real {
		nd.cat = &catalogStore{Catalog: catalog.New(), counter: newCounter()}
		if _, err := nd.cat.ReplaceNode(catalog.SourceDocker, nd.name, recs); err != nil {
			return nil, fmt.Errorf("load %s's records: %w", nd.name, err)
		}
		store = nd.cat
	} else {
		nd.count = newCountStore(nd.name, recs)
		store = nd.count
	}
	c, err := cluster.New(cluster.Config{
		Node: nd.name, BindAddr: "127.0.0.1:0", Join: join, Keys: [][]byte{b.key},
		Store: store, Logger: b.log.With("node", nd.name), Timing: b.o.timing,
		OnApply: func(a cluster.Applied) {
			if b.recording.Load() {
				nd.mu.Lock()
				nd.arrivals = append(nd.arrivals, arrival{a.Owner, a.Version, a.Received})
				nd.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", nd.name, err)
	}
	nd.c, nd.addr = c, c.Addr().String()
	go func() { nd.done <- c.Run(context.Background()) }()
	b.nodes = append(b.nodes, nd)
	return nd, nil
}

// stop shuts every node down without leaving (a leave of 100 nodes is
// slow and measures nothing). A node whose Run does not return within
// 30 s is named, and left behind.
func (b *bench) stop() {
	for _, nd := range b.nodes {
		if !nd.dead {
			go func() { _ = nd.c.Shutdown() }()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range b.nodes {
		if nd.dead {
			continue
		}
		select {
		case <-nd.done:
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "cluster: %s did not stop within 30 s of Shutdown\n", nd.name)
		}
	}
}

// live is every node not killed.
func (b *bench) live() []*node {
	var out []*node
	for _, nd := range b.nodes {
		if !nd.dead {
			out = append(out, nd)
		}
	}
	return out
}

// waitHeld waits until each of nodes holds want peer containers.
func (b *bench) waitHeld(nodes []*node, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		var worst *node
		for _, nd := range nodes {
			if nd.heldTotal() != want {
				behind++
				worst = nd
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v, %d nodes do not hold %d peer instances (%s holds %d; %+v; its members: %s)",
				timeout, behind, want, worst.name, worst.heldTotal(), worst.c.Stats(), memberStates(worst))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bytesPerNode runs fn and returns the gossip bytes sent and received per
// live node per second of window meanwhile.
func (b *bench) bytesPerNode(fn func(), window time.Duration) (out, in float64) {
	nodes := b.live()
	sum := func() (o, i uint64) {
		for _, nd := range nodes {
			st := nd.c.Stats()
			o += st.BytesOut
			i += st.BytesIn
		}
		return o, i
	}
	o0, i0 := sum()
	s0 := b.stats(nodes)
	began := time.Now()
	fn()
	took := time.Since(began)
	o1, i1 := sum()
	s1 := b.stats(nodes)
	fmt.Fprintf(os.Stderr, "cluster: %d nodes over %v: %d push/pulls, %d full states asked for, %d applied, %d deltas applied, %d stale dropped\n",
		len(nodes), took.Round(time.Millisecond), s1.PushPulls-s0.PushPulls, s1.StateRequests-s0.StateRequests,
		s1.StatesApplied-s0.StatesApplied, s1.DeltasApplied-s0.DeltasApplied, s1.StaleDropped-s0.StaleDropped)
	div := float64(len(nodes)) * took.Seconds()
	_ = window
	return float64(o1-o0) / div, float64(i1-i0) / div
}

// stats sums the nodes' counters.
func (b *bench) stats(nodes []*node) cluster.Stats {
	var sum cluster.Stats
	for _, nd := range nodes {
		st := nd.c.Stats()
		sum.PushPulls += st.PushPulls
		sum.StateRequests += st.StateRequests
		sum.StatesApplied += st.StatesApplied
		sum.DeltasApplied += st.DeltasApplied
		sum.StaleDropped += st.StaleDropped
	}
	return sum
}

// change is one change of the load phase: a node's record replaced at
// at, published as version ver.
type change struct {
	owner     *node
	at        time.Time
	ver       atomic.Pointer[cluster.Version]
	published time.Duration // from at until the owner's LocalVersion moved
}

// changeLoad makes rate changes per second, cluster-wide, for d, each on a
// random count-store node with no change of its own still unpublished, and
// records every arrival meanwhile.
func (b *bench) changeLoad(rate int, d time.Duration) []*change {
	var pool []*node
	for _, nd := range b.live() {
		if nd.count != nil {
			pool = append(pool, nd)
		}
	}
	for _, nd := range b.nodes {
		nd.mu.Lock()
		nd.arrivals = nd.arrivals[:0]
		nd.mu.Unlock()
	}
	b.recording.Store(true)
	var changes []*change
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	seq := 0
	for time.Now().Before(end) {
		<-tick.C
		nd := pool[rand.IntN(len(pool))]
		for tries := 0; tries < 10 && nd.pending.Load(); tries++ {
			nd = pool[rand.IntN(len(pool))]
		}
		if nd.pending.Load() {
			continue
		}
		nd.pending.Store(true)
		seq++
		before := nd.c.LocalVersion()
		ch := &change{owner: nd, at: time.Now()}
		nd.count.Change(seq%b.o.instances, uint16(40000+seq%20000))
		changes = append(changes, ch)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nd.pending.Store(false)
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if v := nd.c.LocalVersion(); v != before {
					ch.published = time.Since(ch.at)
					ch.ver.Store(&v)
					return
				}
			}
		}()
	}
	wg.Wait()
	return changes
}

// waitCurrent waits until every live node holds every other live node's
// latest version, then stops recording arrivals.
func (b *bench) waitCurrent(timeout time.Duration) error {
	defer b.recording.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	nodes := b.live()
	for _, owner := range nodes {
		v := owner.c.LocalVersion()
		for _, nd := range nodes {
			if nd != owner {
				if err := nd.c.WaitHeld(ctx, owner.name, v); err != nil {
					return fmt.Errorf("%s: %w", nd.name, err)
				}
			}
		}
	}
	return nil
}

// publishing returns p50 and p99 of the time from a change in the
// owner's store until the owner published it (its LocalVersion moved).
func publishing(changes []*change) (p50, p99 time.Duration) {
	var ds []time.Duration
	for _, ch := range changes {
		if ch.ver.Load() != nil {
			ds = append(ds, ch.published)
		}
	}
	return pct(ds, 50), pct(ds, 99)
}

// latencies returns, over the changes, the time until every other live
// node held it (p50, p99) and until each node did (p50, p99 over all
// change × node pairs), and how many changes some node never recorded.
func (b *bench) latencies(changes []*change) (allP50, allP99, nodeP50, nodeP99 time.Duration, missed int) {
	nodes := b.live()
	byNode := make(map[*node]map[string][]arrival, len(nodes))
	for _, nd := range nodes {
		m := map[string][]arrival{}
		nd.mu.Lock()
		for _, a := range nd.arrivals {
			m[a.owner] = append(m[a.owner], a)
		}
		nd.mu.Unlock()
		byNode[nd] = m
	}
	var all, each []time.Duration
	for _, ch := range changes {
		v := ch.ver.Load()
		if v == nil {
			missed++
			continue
		}
		var last time.Duration
		ok := true
		for _, nd := range nodes {
			if nd == ch.owner {
				continue
			}
			i := slices.IndexFunc(byNode[nd][ch.owner.name], func(a arrival) bool { return a.ver.AtLeast(*v) })
			if i < 0 {
				ok = false
				break
			}
			d := byNode[nd][ch.owner.name][i].at.Sub(ch.at)
			each = append(each, d)
			last = max(last, d)
		}
		if !ok {
			missed++
			continue
		}
		all = append(all, last)
	}
	return pct(all, 50), pct(all, 99), pct(each, 50), pct(each, 99), missed
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	return ds[max(0, min(len(ds)-1, i-1))]
}

// kill shuts the last count-store node down without leaving, as a killed
// process, and returns when its records were gone from the first and from
// every other node.
func (b *bench) kill(timeout time.Duration) (first, last time.Duration, err error) {
	victim := b.nodes[len(b.nodes)-1]
	_ = victim.c.Shutdown()
	<-victim.done
	victim.dead = true
	began := time.Now()
	left := b.live()
	for len(left) > 0 {
		if time.Since(began) > timeout {
			return 0, 0, fmt.Errorf("%s killed: %d nodes still hold its records after %v (%s: %d; its members: %s)",
				victim.name, len(left), timeout, left[0].name, left[0].held(victim.name), memberStates(left[0]))
		}
		left = slices.DeleteFunc(left, func(nd *node) bool { return nd.held(victim.name) == 0 })
		if first == 0 && len(left) < len(b.live()) {
			first = time.Since(began)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return first, time.Since(began), nil
}

// join starts a new node with a real catalog, joining node 0, and returns
// how long until it held every live node's records (and how many it
// held), and until every live node held its own.
func (b *bench) join(timeout time.Duration) (held, spread time.Duration, n int, err error) {
	others := b.live()
	want := len(others) * b.o.instances
	stopProfile, err := b.startJoinProfile()
	if err != nil {
		return 0, 0, 0, err
	}
	defer stopProfile()
	began := time.Now()
	nd, err := b.add(len(b.nodes), true, []string{b.nodes[0].addr})
	if err != nil {
		return 0, 0, 0, err
	}
	for held == 0 || spread == 0 {
		if time.Since(began) > timeout {
			// Not reached: reported as "> timeout", the other figures kept.
			fmt.Fprintf(os.Stderr, "cluster: joined %s: after %v it holds %d of %d peer instances, and %d nodes do not hold its %d\n",
				nd.name, timeout, nd.heldTotal(), want, len(others), b.o.instances)
			if held == 0 {
				held = -timeout
			}
			if spread == 0 {
				spread = -timeout
			}
			break
		}
		if held == 0 && nd.heldTotal() == want {
			held = time.Since(began)
			stopProfile()
		}
		others = slices.DeleteFunc(others, func(o *node) bool { return o.held(nd.name) == b.o.instances })
		if spread == 0 && len(others) == 0 {
			spread = time.Since(began)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := nd.cat.Stats()
	if err != nil {
		return 0, 0, 0, err
	}
	return held, spread, st.Instances - b.o.instances, nil
}

// startJoinProfile starts the CPU profile of the join phase when
// -join-cpuprofile asks for one; the func returned stops it, and does
// nothing after the first call.
func (b *bench) startJoinProfile() (func(), error) {
	if b.o.joinProf == "" {
		return func() {}, nil
	}
	name := b.o.joinProf
	if len(b.o.sizes) > 1 {
		name = fmt.Sprintf("%s.%d", name, len(b.nodes))
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// memberStates is how nd sees its members, for error messages.
func memberStates(nd *node) string {
	var out []string
	for _, m := range nd.c.Members() {
		out = append(out, fmt.Sprintf("%s=%s/%d", m.Name, m.State, m.Instances))
	}
	return strings.Join(out, " ")
}

// quietWindow is how often waitQuiet reads the counters.
const quietWindow = 2 * time.Second

// waitQuiet waits until the cluster has stopped sending what forming it
// left: over two windows in a row nothing waits to go out (deltas,
// direct sends, full states), no node is behind any peer, no full state
// was asked for or applied, and the gossip byte rate no longer falls
// (the second window within 10% of the first). It returns how long that
// took and the last window's bytes per node per second (out plus in).
func (b *bench) waitQuiet(timeout time.Duration) (time.Duration, float64, error) {
	nodes := b.live()
	began := time.Now()
	read := func() (bytes uint64, st cluster.Stats) {
		for _, nd := range nodes {
			s := nd.c.Stats()
			bytes += s.BytesOut + s.BytesIn
			st.StateRequests += s.StateRequests
			st.StatesApplied += s.StatesApplied
			st.Queued += s.Queued
			st.Behind += s.Behind
		}
		return bytes, st
	}
	prevBytes, prev := read()
	prevRate, calm := math.Inf(1), 0
	for {
		time.Sleep(quietWindow)
		bytes, st := read()
		rate := float64(bytes-prevBytes) / float64(len(nodes)) / quietWindow.Seconds()
		still := st.Queued == 0 && st.Behind == 0 && st.StateRequests == prev.StateRequests && st.StatesApplied == prev.StatesApplied
		switch {
		case !still:
			calm = 0
		case rate >= 0.9*prevRate:
			calm++
		default:
			calm = 1
		}
		if calm >= 2 {
			return time.Since(began), rate, nil
		}
		if time.Since(began) > timeout {
			return 0, 0, fmt.Errorf("not quiet after %v: %d messages queued, %d peers behind, %d states asked for and %d applied in the last %v, %.0f B/s per node",
				timeout, st.Queued, st.Behind, st.StateRequests-prev.StateRequests, st.StatesApplied-prev.StatesApplied, quietWindow, rate)
		}
		prevBytes, prev, prevRate = bytes, st, rate
	}
}
