package cluster

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// TestChaos throws a random sequence of steps at a cluster of five nodes:
// changes of a node's own records (one at a time and in bursts), kills
// (no leave) and restarts under the same name and address with the same or
// another record set, graceful leaves and returns, partitions between two
// groups and their heals. Then it heals everything and checks that every
// live node's catalog holds exactly the union of every live owner's own
// records, as the owner wrote them (in the owner's namespace on peers),
// and nothing of the nodes that are down.
//
// SVCDNS_CHAOS_SEED replays a seed: the same steps, not the same
// interleaving with gossip. SVCDNS_CHAOS_STEPS sets the number of steps
// (default 30; 12 with -short).
func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SVCDNS_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SVCDNS_CHAOS_SEED: %v", err)
		}
	}
	steps := 30
	if testing.Short() {
		steps = 12
	}
	if s := os.Getenv("SVCDNS_CHAOS_STEPS"); s != "" {
		var err error
		if steps, err = strconv.Atoi(s); err != nil {
			t.Fatalf("SVCDNS_CHAOS_STEPS: %v", err)
		}
	}
	t.Logf("seed %d (SVCDNS_CHAOS_SEED=%d replays it), %d steps", seed, seed, steps)
	c := &chaos{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed)), start: time.Now(), byAddr: map[string]string{}}
	for i := range chaosNodes {
		cn := &chaosNode{name: "n" + strconv.Itoa(i+1), idx: i + 1, recs: map[string]chaosRec{}}
		c.nodes = append(c.nodes, cn)
		for range c.rng.IntN(4) {
			c.add(cn)
		}
		c.up(cn)
	}
	for range steps {
		c.step()
		time.Sleep(time.Duration(c.rng.IntN(150)) * time.Millisecond)
	}
	c.logf("heal all")
	c.mu.Lock()
	c.loss = 0
	c.mu.Unlock()
	c.partition(nil)
	c.converge()
	c.t.Logf("steps:\n  %s", strings.Join(c.steps, "\n  "))
}

const chaosNodes = 5

// chaosRec is one record a node owns: a Docker container with one or two
// instances, published on the host and on a bridge, some on an overlay
// too; or an API registration.
type chaosRec struct {
	api, overlay bool
	svc          string
	tags         []string
	port         uint16
	insts        int
	passing      bool
	host         byte
}

type chaosNode struct {
	name string
	idx  int
	addr string              // its bind address, kept across restarts
	n    *testNode           // nil while down
	recs map[string]chaosRec // its own records, by id
	next int                 // for new ids
}

type chaos struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	nodes []*chaosNode
	start time.Time
	steps []string

	mu     sync.Mutex
	side   map[string]bool   // a partition: the names on one side; nil: none
	loss   float64           // the share of packets and dials lost between any two nodes
	byAddr map[string]string // gossip address -> node name
}

func (c *chaos) logf(format string, args ...any) {
	c.steps = append(c.steps, fmt.Sprintf("%7.3fs ", time.Since(c.start).Seconds())+fmt.Sprintf(format, args...))
}

func (c *chaos) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("seed %d (SVCDNS_CHAOS_SEED=%d to replay): %s\nsteps:\n  %s", c.seed, c.seed,
		fmt.Sprintf(format, args...), strings.Join(c.steps, "\n  "))
}

func (c *chaos) upDown() (up, down []*chaosNode) {
	for _, cn := range c.nodes {
		if cn.n != nil {
			up = append(up, cn)
		} else {
			down = append(down, cn)
		}
	}
	return up, down
}

func (c *chaos) pick(of []*chaosNode) *chaosNode { return of[c.rng.IntN(len(of))] }

func (c *chaos) step() {
	up, down := c.upDown()
	switch r := c.rng.IntN(100); {
	case r < 40:
		c.change(c.pick(up), 1+c.rng.IntN(3))
	case r < 50:
		c.change(c.pick(up), 5+c.rng.IntN(20)) // a burst
	case r < 58 && len(up) > 2:
		cn := c.pick(up)
		c.logf("kill %s", cn.name)
		cn.n.kill()
		cn.n = nil
	case r < 64 && len(up) > 2:
		cn := c.pick(up)
		c.logf("leave %s", cn.name)
		cn.n.stop()
		cn.n = nil
	case r < 78 && len(down) > 0:
		c.restart(c.pick(down))
	case r < 84:
		// Down and back at once: before the others may have noticed.
		cn := c.pick(up)
		c.logf("bounce %s", cn.name)
		if c.rng.IntN(2) == 0 {
			cn.n.kill()
		} else {
			cn.n.stop()
		}
		cn.n = nil
		time.Sleep(time.Duration(c.rng.IntN(100)) * time.Millisecond)
		c.restart(cn)
	case r < 88:
		loss := []float64{0, 0.1, 0.3}[c.rng.IntN(3)]
		c.logf("packet loss %v", loss)
		c.mu.Lock()
		c.loss = loss
		c.mu.Unlock()
	case r < 96:
		var side map[string]bool
		if c.side == nil {
			side = map[string]bool{}
			for _, k := range c.rng.Perm(chaosNodes)[:1+c.rng.IntN(chaosNodes-1)] {
				side[c.nodes[k].name] = true
			}
		}
		c.partition(side)
	default:
		d := time.Duration(300+c.rng.IntN(1500)) * time.Millisecond
		c.logf("pause %v", d)
		time.Sleep(d)
	}
}

// restart starts cn again, with its records or (one in three) others;
// one in four moves to a new address, once every live node holds it down
// past FastTiming's DeadNodeReclaimTime (until then its name is taken).
func (c *chaos) restart(cn *chaosNode) {
	if c.rng.IntN(3) == 0 {
		cn.recs = map[string]chaosRec{}
		for range c.rng.IntN(5) {
			c.add(cn)
		}
	}
	if c.rng.IntN(4) == 0 && c.heldDown(cn) {
		time.Sleep(FastTiming().DeadNodeReclaimTime + 200*time.Millisecond)
		cn.addr = ""
	}
	c.up(cn)
}

// heldDown reports whether every live node holds cn dead or left.
func (c *chaos) heldDown(cn *chaosNode) bool {
	up, _ := c.upDown()
	for _, x := range up {
		for _, m := range x.n.Members() {
			if m.Name == cn.name && (m.State == "alive" || m.State == "suspect") {
				return false
			}
		}
	}
	return true
}

// partition cuts the names in side off from the others, both ways; nil
// heals.
func (c *chaos) partition(side map[string]bool) {
	if side != nil {
		c.logf("partition %v | rest", slices.Sorted(maps.Keys(side)))
	} else if c.side != nil {
		c.logf("heal")
	}
	c.mu.Lock()
	c.side = side
	c.mu.Unlock()
}

// cut reports whether traffic between node name and addr is dropped.
func (c *chaos) cut(name, addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	other, ok := c.byAddr[addr]
	return ok && (c.side != nil && c.side[name] != c.side[other] || c.loss > 0 && rand.Float64() < c.loss)
}

// up starts cn (again) under its name and address, with a new catalog
// holding its records, written before or while it joins.
func (c *chaos) up(cn *chaosNode) {
	var join, live []string
	for _, o := range c.nodes {
		if o != cn && o.addr != "" {
			join = append(join, o.addr)
		}
		if o != cn && o.n != nil {
			live = append(live, o.addr)
		}
	}
	n, err := newNode(c.t, cn.name, func(cfg *Config) {
		cfg.Join = join
		if cn.addr != "" {
			cfg.BindAddr = cn.addr
		}
		if len(live) > 0 && c.rng.IntN(4) == 0 {
			// One contact, live (a node whose only contact stays down
			// never joins), maybe across a partition.
			cfg.Join = []string{live[c.rng.IntN(len(live))]}
		}
	})
	if err != nil {
		c.fatalf("restart %s: %v", cn.name, err)
	}
	cn.n, cn.addr = n, n.Addr().String()
	c.mu.Lock()
	c.byAddr[cn.addr] = cn.name
	c.mu.Unlock()
	cut := func(addr string) bool { return c.cut(cn.name, addr) }
	n.tr.cut.Store(&cut)
	early := c.rng.IntN(2) == 0
	c.logf("start %s at %s with %d records (written %s)", cn.name, cn.addr, len(cn.recs), map[bool]string{true: "before", false: "while joining"}[early])
	if !early {
		n.run()
	}
	for _, id := range slices.Sorted(maps.Keys(cn.recs)) {
		c.write(cn, id)
	}
	if early {
		n.run()
	}
}

// change makes k changes of cn's own records: adds, updates, removes.
func (c *chaos) change(cn *chaosNode, k int) {
	var did []string
	for range k {
		ids := slices.Sorted(maps.Keys(cn.recs))
		switch r := c.rng.IntN(10); {
		case r < 4 || len(ids) == 0:
			did = append(did, "+"+c.add(cn))
		case r < 7:
			id := ids[c.rng.IntN(len(ids))]
			rec := cn.recs[id]
			switch c.rng.IntN(4) {
			case 0:
				rec.passing = !rec.passing
			case 1:
				rec.port++
			case 2:
				rec.tags = []string{"t" + strconv.Itoa(c.rng.IntN(3))}
			default:
				rec.host++
			}
			cn.recs[id] = rec
			c.write(cn, id)
			did = append(did, "~"+id)
		default:
			id := ids[c.rng.IntN(len(ids))]
			delete(cn.recs, id)
			c.write(cn, id)
			did = append(did, "-"+id)
		}
	}
	c.logf("change %s: %s", cn.name, strings.Join(did, " "))
}

// add makes up a record of cn, writing it when cn is up.
func (c *chaos) add(cn *chaosNode) string {
	cn.next++
	rec := chaosRec{api: c.rng.IntN(3) == 0, overlay: c.rng.IntN(2) == 0, svc: "s" + strconv.Itoa(c.rng.IntN(4)),
		port: uint16(8000 + c.rng.IntN(100)), insts: 1 + c.rng.IntN(2), passing: c.rng.IntN(5) > 0, host: byte(1 + c.rng.IntN(200))}
	id := "c" + strconv.Itoa(cn.next)
	if rec.api {
		id = "a" + strconv.Itoa(cn.next)
	}
	cn.recs[id] = rec
	if cn.n != nil {
		c.write(cn, id)
	}
	return id
}

// write puts cn's record id in its catalog as it is in cn.recs, or
// removes it.
func (c *chaos) write(cn *chaosNode, id string) {
	rec, ok := cn.recs[id]
	var err error
	switch {
	case !ok && strings.HasPrefix(id, "a"):
		_, err = cn.n.cat.DeregisterInstance(id)
	case !ok:
		_, err = cn.n.cat.DeleteContainer(id)
	case rec.api:
		inst := rec.build(cn, id).Instances[0]
		_, err = cn.n.cat.RegisterInstance(inst)
	default:
		r := rec.build(cn, id)
		_, err = cn.n.cat.PutContainer(r.Container, r.Instances)
	}
	if err != nil {
		c.fatalf("write %s on %s: %v", id, cn.name, err)
	}
}

const chaosOverlay = "q7x9k2m4n6p8r0t1v3w5y7z9a"

// build is rec as its owner's catalog holds it.
func (rec chaosRec) build(cn *chaosNode, id string) catalog.ContainerRecord {
	host := netip.AddrFrom4([4]byte{10, 1, byte(cn.idx), rec.host})
	if rec.api {
		inst := testutil.APIInstance(id, rec.svc, host.String(), rec.port, func(i *catalog.Instance) {
			i.Node, i.Tags, i.Passing = cn.name, rec.tags, rec.passing
		})
		ctr := &catalog.Container{ID: inst.ContainerID, Name: id, Target: id, Node: cn.name, Source: catalog.SourceAPI,
			Addrs: inst.Addrs, Passing: rec.passing}
		return catalog.ContainerRecord{Container: ctr, Instances: []*catalog.Instance{inst}}
	}
	ctr := testutil.Container(cn.name, id, id, fmt.Sprintf("172.17.%d.%d/16", cn.idx, rec.host))
	ctr.Passing, ctr.HostIP = rec.passing, host
	if rec.overlay {
		ctr.Addrs = append(ctr.Addrs, catalog.NetAddr{Network: "ov", NetworkID: chaosOverlay, SpansHosts: true,
			Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(cn.idx), rec.host}), 16)})
	}
	var insts []*catalog.Instance
	for k := range rec.insts {
		insts = append(insts, testutil.Instance(ctr, rec.svc, rec.port+uint16(k), func(i *catalog.Instance) {
			i.Tags, i.HostIP, i.HostPort = rec.tags, host, 30000+rec.port+uint16(k)
		}))
	}
	return catalog.ContainerRecord{Container: ctr, Instances: insts}
}

// converge waits until every live node holds what it should (want), and
// still does a few push/pull rounds later: nothing stale comes back.
func (c *chaos) converge() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		diff := c.diff()
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			c.fatalf("not converged 30 s after the heal:\n%s%s", diff, c.members())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.logf("converged")
	time.Sleep(2500 * time.Millisecond)
	if diff := c.diff(); diff != "" {
		c.fatalf("converged, then diverged:\n%s%s", diff, c.members())
	}
}

// diff is what each live node holds that it should not (+) or lacks (-).
func (c *chaos) diff() string {
	up, _ := c.upDown()
	var b strings.Builder
	for _, x := range up {
		got, want := listing(c.t, x.n.cat), c.want(x, up)
		var plus, minus []string
		for len(got)+len(want) > 0 {
			switch {
			case len(want) == 0 || len(got) > 0 && got[0] < want[0]:
				plus, got = append(plus, "+ "+got[0]), got[1:]
			case len(got) == 0 || want[0] < got[0]:
				minus, want = append(minus, "- "+want[0]), want[1:]
			default:
				got, want = got[1:], want[1:]
			}
		}
		if lines := append(minus, plus...); len(lines) > 0 {
			if len(lines) > 40 {
				lines = append(lines[:40], fmt.Sprintf("... %d more", len(lines)-40))
			}
			fmt.Fprintf(&b, "%s:\n  %s\n", x.name, strings.Join(lines, "\n  "))
		}
	}
	return b.String()
}

func (c *chaos) members() string {
	up, _ := c.upDown()
	var b strings.Builder
	for _, x := range up {
		fmt.Fprintf(&b, "%s members:", x.name)
		for _, m := range x.n.Members() {
			fmt.Fprintf(&b, " %s=%s@%v", m.Name, m.State, m.Version)
		}
		b.WriteString("\n  held (id@seq):")
		x.n.h.mu.Lock()
		for _, name := range slices.Sorted(maps.Keys(x.n.h.owners)) {
			o := x.n.h.owners[name]
			var ids []string
			for id, hr := range o.records {
				ids = append(ids, fmt.Sprintf("%s@%d", id, hr.seq))
			}
			slices.Sort(ids)
			fmt.Fprintf(&b, " %s%v shown=%t tombs=%v ahead=%v", name, ids, o.shown, o.tombs, o.ahead)
		}
		x.n.h.mu.Unlock()
		b.WriteString("\n")
	}
	return b.String()
}

// want is what x's catalog should hold, sorted: every live owner's
// records, its own as written, a peer's in the peer's namespace, and a
// node row for each live node.
func (c *chaos) want(x *chaosNode, up []*chaosNode) []string {
	var out []string
	for _, o := range up {
		out = append(out, "node "+o.name)
		for id, rec := range o.recs {
			r := rec.build(o, id)
			if o != x {
				r = peerView(o.name, r)
			}
			out = append(out, recordLines(r)...)
			for _, i := range r.Instances {
				out = append(out, fmt.Sprintf("svc %s %s passing=%t", i.Service, i.ID, i.Passing))
			}
		}
	}
	slices.Sort(out)
	return out
}

// peerView is owner's record as a peer holds it (package doc): ids in
// the owner's namespace, the target qualified with its name, of a Docker
// container only the addresses on networks that span hosts.
func peerView(owner string, r catalog.ContainerRecord) catalog.ContainerRecord {
	api := r.Container.Source == catalog.SourceAPI
	addrs := func(in []catalog.NetAddr) []catalog.NetAddr {
		return slices.DeleteFunc(slices.Clone(in), func(a catalog.NetAddr) bool { return a.SpansHosts == api })
	}
	ctr := *r.Container
	ctr.ID = owner + "/" + ctr.ID
	if api {
		ctr.ID = "api/" + owner + "/" + strings.TrimPrefix(r.Container.ID, "api/")
	}
	ctr.Target += "." + owner
	ctr.Addrs = addrs(ctr.Addrs)
	out := catalog.ContainerRecord{Container: &ctr}
	for _, in := range r.Instances {
		i := *in
		i.ID, i.ContainerID, i.Target, i.Addrs = owner+"/"+i.ID, ctr.ID, ctr.Target, addrs(i.Addrs)
		out.Instances = append(out.Instances, &i)
	}
	return out
}

// listing is what cat holds, sorted: a line per container, instance,
// node, and instance under its service (the lookup tree DNS reads), with
// every field a reader uses.
func listing(t *testing.T, cat *catalog.Catalog) []string {
	_, ctrs, err := cat.AllContainers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ctr := range ctrs {
		r, err := cat.Container(ctr.ID)
		if err != nil {
			continue // gone since
		}
		out = append(out, recordLines(r)...)
	}
	nodes, err := cat.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		out = append(out, "node "+n.Name)
	}
	cat.EachService(func(svc string, _ uint64, insts []*catalog.Instance) {
		for _, i := range insts {
			out = append(out, fmt.Sprintf("svc %s %s passing=%t", svc, i.ID, i.Passing))
		}
	})
	slices.Sort(out)
	return out
}

// recordLines are the lines of r: its container and its instances.
func recordLines(r catalog.ContainerRecord) []string {
	c := r.Container
	out := []string{fmt.Sprintf("ctr %s node=%s src=%s name=%s target=%s passing=%t host=%v addrs=%s",
		c.ID, c.Node, c.Source, c.Name, c.Target, c.Passing, c.HostIP, addrString(c.Addrs))}
	for _, i := range r.Instances {
		out = append(out, fmt.Sprintf("inst %s ctr=%s node=%s src=%s svc=%s tags=%v %d/%s name=%s target=%s passing=%t host=%v:%d addrs=%s",
			i.ID, i.ContainerID, i.Node, i.Source, i.Service, i.Tags, i.Port, i.Protocol, i.ContainerName, i.Target, i.Passing,
			i.HostIP, i.HostPort, addrString(i.Addrs)))
	}
	return out
}

func addrString(addrs []catalog.NetAddr) string {
	var s []string
	for _, a := range addrs {
		s = append(s, fmt.Sprintf("%s/%s/%v/%t", a.Network, a.NetworkID, a.Prefix, a.SpansHosts))
	}
	return "[" + strings.Join(s, " ") + "]"
}
