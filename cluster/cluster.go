package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Cluster is one node. Its methods are safe for concurrent use.
type Cluster struct {
	cfg   Config
	ml    *memberlist.Memberlist
	mlp   atomic.Pointer[memberlist.Memberlist] // ml, for callbacks that may run before New returns
	tr    *countingTransport
	h     *holder
	m     *metrics
	d     *delegate
	inbox inbox
	inc   uint64 // this start's incarnation

	local, relay *memberlist.TransmitLimitedQueue

	gapWait, askEvery time.Duration
	leaveTimeout      time.Duration

	nameTaken chan struct{} // closed when a live node has our name
	claim     claim         // what joins were told of our name
	logged    logOnce       // claimants' refusals logged, by name and address
	timing    Timing        // memberlist's timings in effect
	takenOnce sync.Once
	shutOnce  sync.Once
	shut      chan struct{}
	left      atomic.Bool
	sendq     chan sendItem       // messages for the senders (sendLoop)
	queued    queuedStates        // the states in sendq, by node
	direct    chan []byte         // this node's deltas for every live member (directLoop)
	strangers chan netip.AddrPort // askers to join (strangerLoop)
	directMax int                 // the largest direct delta that fits one UDP packet
}

// New checks cfg, binds the gossip address and starts memberlist; the node
// is alone until Run joins it to its peers.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg: cfg, m: newMetrics(), inc: uint64(time.Now().UnixNano()),
		nameTaken: make(chan struct{}), shut: make(chan struct{}), sendq: make(chan sendItem, maxSendQueue),
		direct: make(chan []byte, maxDirectQueue), strangers: make(chan netip.AddrPort, maxStrangers),
	}
	c.inbox.init()
	c.h = newHolder(cfg.Node, cfg.Store, cfg.MaxInstances, cfg.Logger, c.m, cfg.OnApply)
	// The state of a node that has changed nothing yet is as of its
	// start: a peer measures its delay from then (svcdns_cluster_delay_seconds),
	// not from the zero time.
	c.h.selfOwn.ver, c.h.selfOwn.sent = Version{Incarnation: c.inc}, time.Unix(0, int64(c.inc))
	c.d = &delegate{c: c}
	logw := &logBridge{log: cfg.Logger}
	mc, err := cfg.memberlistConfig(c.d, logw)
	if err != nil {
		return nil, err
	}
	c.tr, err = newTransport(mc.BindAddr, mc.BindPort, c.m, log.New(logw, "", 0))
	if err != nil {
		return nil, err
	}
	if mc.BindPort == 0 {
		mc.BindPort = c.tr.port()
		if cfg.AdvertiseAddr == "" || mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
	}
	mc.Transport = c.tr
	c.timing = Timing{ProbeInterval: mc.ProbeInterval, SuspicionMult: mc.SuspicionMult, DeadNodeReclaimTime: mc.DeadNodeReclaimTime}
	c.gapWait = 5 * mc.GossipInterval
	c.directMax = mc.UDPBufferSize - directOverhead - labelOverhead(mc.Label)
	c.leaveTimeout = 5 * time.Second
	if cfg.Timing.LeaveTimeout > 0 {
		c.leaveTimeout = cfg.Timing.LeaveTimeout
	}
	// A full state asked for is not asked again while it may still be on
	// its way: under load (a join of many nodes at once) asking again
	// sooner only sends the same states twice.
	c.askEvery = max(10*mc.GossipInterval, mc.TCPTimeout/5)
	numNodes := func() int {
		if ml := c.mlp.Load(); ml != nil {
			return ml.NumMembers()
		}
		return 1
	}
	c.local = &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: mc.RetransmitMult}
	c.relay = &memberlist.TransmitLimitedQueue{NumNodes: numNodes, RetransmitMult: mc.RetransmitMult}
	ml, err := memberlist.Create(mc)
	if err != nil {
		c.tr.Shutdown()
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	c.ml = ml
	c.mlp.Store(ml)
	if err := c.m.register(cfg.Registerer, c.memberCounts); err != nil {
		ml.Shutdown()
		return nil, err
	}
	return c, nil
}

// Name is this node's name.
func (c *Cluster) Name() string { return c.cfg.Node }

// Addr is the address peers reach this node's gossip at.
func (c *Cluster) Addr() netip.AddrPort {
	n := c.ml.LocalNode()
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// Run joins Config.Join (retrying with backoff), spreads this node's
// changes, applies its peers', and joins again whatever peer is missing.
// It returns nil once ctx is done, after a graceful leave, or ErrNameTaken.
func (c *Cluster) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){c.applyLoop, c.publishLoop, c.joinLoop, c.directLoop, c.strangerLoop}
	for range senders {
		loops = append(loops, c.sendLoop)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case <-c.nameTaken:
		err = fmt.Errorf("%w: %q is held by another live node", ErrNameTaken, c.cfg.Node)
	case <-c.shut:
	}
	cancel()
	wg.Wait()
	if err == nil {
		if lerr := c.Leave(c.leaveTimeout); lerr != nil {
			c.cfg.Logger.Warn("cluster: leave", "err", lerr)
		}
	}
	c.Shutdown()
	return err
}

// Leave tells the peers this node is going (they drop its records at
// once), waiting at most timeout for the news to spread.
func (c *Cluster) Leave(timeout time.Duration) error {
	if c.left.Swap(true) {
		return nil
	}
	select {
	case <-c.shut:
		return nil
	default:
	}
	// Peers drop a leaving node's records when they hear it from the node
	// itself: memberlist reports leaving and failed nodes alike. Sent to
	// each live member directly, and gossiped for any it misses.
	msg := encodeLeave(c.cfg.Node, c.inc)
	c.local.QueueBroadcast(broadcast(msg))
	for _, n := range c.h.liveNodes() {
		_ = c.ml.SendBestEffort(n, msg)
	}
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave the cluster: %w", err)
	}
	return nil
}

// Shutdown stops gossip at once, without leaving: to the peers it is a
// failed node. Run returns after it.
func (c *Cluster) Shutdown() error {
	var err error
	c.shutOnce.Do(func() {
		close(c.shut)
		err = c.ml.Shutdown()
	})
	return err
}

// LocalVersion is the version of this node's records last published.
func (c *Cluster) LocalVersion() Version {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return c.h.selfOwn.ver
}

// Held is the version of owner's records held here (the local node's own
// for the local node).
func (c *Cluster) Held(owner string) (Version, bool) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if owner == c.cfg.Node {
		return c.h.selfOwn.ver, true
	}
	o := c.h.owners[owner]
	if o == nil || o.ver.IsZero() {
		return Version{}, false
	}
	return o.ver, true
}

// WaitHeld blocks until the version of owner held here is v or newer, or
// ctx is done.
func (c *Cluster) WaitHeld(ctx context.Context, owner string, v Version) error {
	for {
		c.h.mu.Lock()
		held := c.h.selfOwn.ver
		if o := c.h.owners[owner]; owner != c.cfg.Node && o != nil {
			held = o.ver
		} else if owner != c.cfg.Node {
			held = Version{}
		}
		ch := c.h.changed
		c.h.mu.Unlock()
		if held.AtLeast(v) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s at %v (holding %v): %w", owner, v, held, ctx.Err())
		}
	}
}

// Members lists the cluster's members as this node sees them, sorted by
// name, this node included. Peers come from what the cluster holds (their
// state as memberlist last reported it through the event delegate), never
// from the *memberlist.Node values of memberlist's Members(), which it
// rewrites in place without a lock the caller could take.
func (c *Cluster) Members() []Member {
	self := c.ml.LocalNode()
	local := Member{Name: c.cfg.Node, Addr: nodeAddr(self), State: "alive", Local: true}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	local.Instances, local.Version = c.h.selfOwn.insts, c.h.selfOwn.ver
	out := make([]Member, 0, len(c.h.owners)+1)
	out = append(out, local)
	for _, o := range c.h.owners {
		if o.state == "" {
			continue // known only from its records, never seen as a member
		}
		mb := Member{Name: o.name, Addr: o.addr, State: o.state, Version: o.ver, LastFullState: o.lastFull}
		if o.member {
			mb.Instances = o.instances // a node away has its records out of the answers
		}
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Cluster) memberCounts() map[string]int {
	out := make(map[string]int, 4)
	for _, mb := range c.Members() {
		out[mb.State]++
	}
	return out
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	m := c.m
	st := Stats{
		MsgsIn: m.msgsIn.Load(), MsgsOut: m.msgsOut.Load(), BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load(),
		PushPulls: m.pushPulls.Load(), DeltasApplied: m.deltasApplied.Load(), StatesApplied: m.statesApplied.Load(),
		StaleDropped: m.staleDropped.Load(), Dropped: m.dropped.Load(), StateRequests: m.stateRequests.Load(),
		InstancesCut: m.instancesCut.Load(), RecordsRefused: m.refused.Load(), StrangerJoins: m.strangerJoins.Load(),
	}
	st.Members = c.ml.NumMembers()
	st.LiveMember = st.Members
	st.Queued = c.local.NumQueued() + c.relay.NumQueued() + len(c.direct) + len(c.sendq)
	st.Behind = c.h.behindCount()
	return st
}

func nodeAddr(n *memberlist.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	default:
		return "left"
	}
}

// ---- joining ----

// joinLoop joins Config.Join, retrying with backoff until one answers,
// then every Rejoin joins again the configured addresses and the known
// peers that are not live members: memberlist stops gossiping to dead
// nodes after GossipToTheDeadTime, so the two sides of a long cut would
// never meet again on their own.
func (c *Cluster) joinLoop(ctx context.Context) {
	if len(c.cfg.Join) == 0 {
		c.claim.joined() // the first node: the others join it
	} else {
		delay := min(c.cfg.Rejoin/10, time.Second)
		for attempt := 1; ; attempt++ {
			start := time.Now()
			n, err := c.join(c.cfg.Join)
			if n > 0 {
				c.claim.joined()
				c.cfg.Logger.Info("cluster: joined", "contacted", n, "members", c.ml.NumMembers())
				break
			}
			if c.checkClaim(start, attempt) {
				// Refused for the name: the peers answer, and
				// the name may be free in a probe interval.
				if !sleep(ctx, c.timing.ProbeInterval) {
					return
				}
				continue
			}
			c.cfg.Logger.Warn("cluster: join failed, retrying", "join", c.cfg.Join, "attempt", attempt, "retry_in", delay, "err", oneLine(err))
			if !sleep(ctx, delay) {
				return
			}
			delay = min(delay*2, 30*time.Second)
		}
	}
	t := time.NewTicker(c.cfg.Rejoin)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if addrs := c.missing(ctx); len(addrs) > 0 {
			before := c.ml.NumMembers()
			// A join address that reaches a member under another
			// address (a NAT, this node's other interface) is joined
			// each time: only a join that found members is news.
			if n, err := c.join(addrs); n > 0 && c.ml.NumMembers() > before {
				c.cfg.Logger.Info("cluster: rejoined", "contacted", n, "members", c.ml.NumMembers())
			} else if n == 0 {
				c.cfg.Logger.Debug("cluster: rejoin failed", "addrs", addrs, "err", err)
			}
		}
	}
}

// join joins addrs once, all at the same time (memberlist tries a list
// one after another, each up to TCPTimeout: one unreachable address would
// hold the others back); a name is resolved at each attempt.
func (c *Cluster) join(addrs []string) (int, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		n    int
		errs []error
	)
	for _, a := range addrs {
		host, port, err := splitHostPort(a, DefaultPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("join address %q: %w", a, err))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := c.ml.Join([]string{net.JoinHostPort(host, strconv.Itoa(port))})
			mu.Lock()
			defer mu.Unlock()
			n += k
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if n == 0 && isKeyError(err) {
		c.cfg.Logger.Warn(keyMismatchMsg, "peers", addrs, "err", oneLine(err))
	}
	return n, err
}

// maxStrangers bounds the askers waiting to be joined; one past it is
// not, and asks again.
const maxStrangers = 64

// joinStranger queues addr, the address of a peer that asked for this
// node's state without being a live member here, to be joined. It never
// blocks (the apply loop calls it).
func (c *Cluster) joinStranger(addr netip.AddrPort) {
	select {
	case c.strangers <- addr:
	default:
	}
}

// strangerLoop joins the askers joinStranger queues, each at most once
// per askEvery (it asks again until it is answered): a push/pull with
// each tells both sides of the other and of every member either knows,
// with their states or digests, as memberlist's own periodic push/pull
// would, only now.
func (c *Cluster) strangerLoop(ctx context.Context) {
	last := make(map[netip.AddrPort]time.Time)
	for {
		var addr netip.AddrPort
		select {
		case <-ctx.Done():
			return
		case addr = <-c.strangers:
		}
		if time.Since(last[addr]) < c.askEvery {
			continue
		}
		if len(last) >= maxOwners {
			clear(last)
		}
		last[addr] = time.Now()
		c.m.strangerJoins.Inc()
		if n, err := c.join([]string{addr.String()}); n > 0 {
			c.cfg.Logger.Debug("cluster: joined a peer that asked before it was known", "addr", addr, "members", c.ml.NumMembers())
		} else {
			c.cfg.Logger.Debug("cluster: join a peer that asked before it was known", "addr", addr, "err", oneLine(err))
		}
	}
}

// missing lists the addresses to join again: the dead peers' (memberlist
// lists no dead node, so they come from what is held here), and the join
// addresses that are neither a live member's nor this node's. After a
// partition heals, each side may hold nothing of the other that is still
// true (its nodes restarted during it and joined only their own side, or
// left before it and came back during it), and only the join list still
// names them. A live member's address is not joined again: every node
// would push/pull with it each Rejoin.
func (c *Cluster) missing(ctx context.Context) []string {
	out := c.h.deadAddrs()
	live := c.h.liveAddrSet()
	live[c.Addr()] = true
	for _, a := range c.cfg.Join {
		if !allLive(ctx, a, live) {
			out = append(out, a)
		}
	}
	return out
}

// allLive reports whether every address the join address a names (a name
// is resolved) is in live.
func allLive(ctx context.Context, a string, live map[netip.AddrPort]bool) bool {
	host, port, err := splitHostPort(a, DefaultPort)
	if err != nil {
		return false
	}
	ips := []netip.Addr{}
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = append(ips, ip)
	} else if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return false
	}
	for _, ip := range ips {
		if !live[netip.AddrPortFrom(ip.Unmap(), uint16(port))] {
			return false
		}
	}
	return len(ips) > 0
}

// oneLine flattens memberlist's multi-line join errors for a log field.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "* ", "")), " ")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var errTooManyOwners = errors.New("too many owners")
