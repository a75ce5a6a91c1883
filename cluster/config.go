package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

// Store is where the cluster reads the local node's records and writes its
// peers'. *catalog.Catalog satisfies it.
//
// NodeRecords is called from the publish goroutine only, Apply from the
// apply goroutine only (never concurrently with itself, never from a
// memberlist callback).
type Store interface {
	// NodeRecords returns every record that node owns, whatever its
	// source, and a channel that is closed when they may have changed.
	NodeRecords(node string) ([]catalog.ContainerRecord, <-chan struct{}, error)
	// Apply writes a batch of puts and deletes in one transaction; errs
	// holds, at its position, why a change was refused.
	Apply(changes []catalog.Change) (idx uint64, errs []error)
}

var _ Store = (*catalog.Catalog)(nil)

// Config configures a node. The zero value of every field but Node,
// BindAddr and Store is a usable default.
type Config struct {
	// Node is this node's name, unique in the cluster: the owner of its
	// records. A live node with the same name makes Run return
	// ErrNameTaken (after a wait: see claim.go).
	Node string
	// BindAddr is the gossip address, host:port, UDP and TCP both. Port 0
	// picks a free port (Addr tells which).
	BindAddr string
	// AdvertiseAddr is the address peers use to reach this node, host or
	// host:port (the bind port when none). Empty: the bind address, or,
	// for a wildcard bind, memberlist's choice of a private address.
	AdvertiseAddr string
	// Join lists peers to join, host or host:port (port 7946 when none);
	// names are resolved at each attempt. Run retries with backoff until
	// one answers, logging each failure.
	Join []string
	// Keys is the keyring: each key 16, 24 or 32 bytes (AES-128/192/256);
	// Keys[0] encrypts, all decrypt. Empty: gossip is not encrypted.
	Keys [][]byte
	// MaxInstances is the most instances kept of one peer (default 10000);
	// a state over it is cut and counted.
	MaxInstances int
	// Store holds the local node's records and receives its peers'.
	Store Store
	// Logger receives one line per event that matters (default: discard).
	Logger *slog.Logger
	// Registerer, if set, registers the cluster's metrics.
	Registerer prometheus.Registerer
	// Timing tunes memberlist; the zero value is its LAN defaults.
	Timing Timing
	// Rejoin is how often Run joins again the join addresses and known
	// peers that are not live members (default 10 s).
	Rejoin time.Duration
	// OnApply, if set, is called from the apply goroutine after each delta
	// or full state of a peer is written to the store. It must not block.
	OnApply func(Applied)

	// noOwnGossip (tests) sends this node's deltas only directly, not by
	// gossip.
	noOwnGossip bool
}

// Timing tunes memberlist. A zero field keeps svcdns's default (shown in
// brackets): memberlist's LAN default, except SuspicionMult.
type Timing struct {
	GossipInterval      time.Duration // [200ms] how often deltas go to GossipNodes peers
	GossipNodes         int           // [3]
	ProbeInterval       time.Duration // [1s] failure detection: one peer probed per interval
	ProbeTimeout        time.Duration // [500ms]
	SuspicionMult       int           // [DefaultSuspicionMult; LAN 4] suspicion lasts SuspicionMult·log10(N)·ProbeInterval at least
	RetransmitMult      int           // [4] each delta is sent RetransmitMult·log10(N+1) times per node
	PushPullInterval    time.Duration // [30s] anti-entropy, stretched above 32 nodes
	GossipToTheDeadTime time.Duration // [30s]
	TCPTimeout          time.Duration // [10s]
	// DeadNodeReclaimTime lets a node that was declared dead come back
	// under its name from another address after this long [5 probe
	// intervals: 5s; 0 in memberlist: only once the dead node is
	// forgotten, GossipToTheDeadTime later]. See defaultReclaimProbes.
	DeadNodeReclaimTime time.Duration
	// LeaveTimeout bounds the wait for a graceful leave to spread [5s].
	LeaveTimeout time.Duration
}

// FastTiming is for tests on loopback: failure detection well under a
// second, push/pull every second.
func FastTiming() Timing {
	return Timing{
		GossipInterval:      20 * time.Millisecond,
		ProbeInterval:       200 * time.Millisecond,
		ProbeTimeout:        100 * time.Millisecond,
		SuspicionMult:       3,
		LeaveTimeout:        500 * time.Millisecond,
		PushPullInterval:    time.Second,
		GossipToTheDeadTime: time.Second,
		TCPTimeout:          time.Second,
		DeadNodeReclaimTime: time.Second,
	}
}

// Defaults.
const (
	DefaultPort         = 7946
	DefaultMaxInstances = 10000
	defaultRejoin       = 10 * time.Second
)

// ErrNameTaken is returned by Run when a live node already has this
// node's name.
var ErrNameTaken = errors.New("node name taken")

func (cfg *Config) defaults() error {
	if !catalog.ValidLabel(cfg.Node) {
		return fmt.Errorf("node name %q: must be a lower-case DNS label (it is a DNS name: <node>.node.<zone>)", cfg.Node)
	}
	if cfg.Store == nil {
		return errors.New("no store")
	}
	for i, k := range cfg.Keys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return fmt.Errorf("cluster key %d: %d bytes, want 16, 24 or 32 (AES-128, -192 or -256)", i+1, n)
		}
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = DefaultMaxInstances
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Rejoin <= 0 {
		cfg.Rejoin = defaultRejoin
		if cfg.Timing.ProbeInterval > 0 && cfg.Timing.ProbeInterval < 500*time.Millisecond {
			cfg.Rejoin = time.Second
		}
	}
	return nil
}

// memberlistConfig turns cfg into memberlist's, with d as every delegate.
func (cfg *Config) memberlistConfig(d *delegate, logw io.Writer) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Node
	host, port, err := splitHostPort(cfg.BindAddr, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("bind address: %w", err)
	}
	if host, err = bindHost(host); err != nil {
		return nil, fmt.Errorf("bind address: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		host, port, err := splitHostPort(cfg.AdvertiseAddr, port)
		if err != nil {
			return nil, fmt.Errorf("advertise address: %w", err)
		}
		ip, err := resolveOne(host)
		if err != nil {
			return nil, fmt.Errorf("advertise address: %w", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ip.String(), port
	}
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	// memberlist's compression (LZW, a fresh 16 kB table per message) cost
	// more CPU than anything else in a 50-node benchmark; gossip packets
	// are small, and full states only travel where one is missing.
	mc.EnableCompression = false
	cfg.Timing.apply(mc)
	mc.Delegate, mc.Events, mc.Conflict, mc.Merge, mc.Alive = d, d, d, d, d
	mc.LogOutput = logw
	return mc, nil
}

// defaultReclaimProbes is the default DeadNodeReclaimTime in probe
// intervals. It is what a node restarted on a new address waits after its
// old self is declared dead, so short; what it must outlast is a live
// node's refutation of a death it was wrongly declared: memberlist goes on
// gossiping to a dead node for GossipToTheDeadTime (30 s), so a node back
// from a cut hears of its death and refutes it within a gossip round or
// two, far under 5 probe intervals. Only a dead node's name is ever
// reclaimed (memberlist's aliveNode), never a live or suspect one's; and
// memberlist forgets a dead node, name and all, after GossipToTheDeadTime
// whatever this is.
const defaultReclaimProbes = 5

// DefaultSuspicionMult replaces memberlist's LAN default of 4. With 4 a
// node killed in a 100-node cluster stayed in the answers 10.2-11.0 s
// (bench/cluster), over the 10 s svcdns aims for; with 3 it was gone in
// 8.4 and 9.7 s. It also lets one other node's confirmation (Lifeguard needs
// SuspicionMult-2) bring a 3-node cluster's suspicion down to its
// minimum, which with 4 needs two, more than a 3-node cluster has.
const DefaultSuspicionMult = 3

func (t Timing) apply(mc *memberlist.Config) {
	setDur := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setDur(&mc.GossipInterval, t.GossipInterval)
	setInt(&mc.GossipNodes, t.GossipNodes)
	setDur(&mc.ProbeInterval, t.ProbeInterval)
	setDur(&mc.ProbeTimeout, t.ProbeTimeout)
	mc.SuspicionMult = DefaultSuspicionMult
	setInt(&mc.SuspicionMult, t.SuspicionMult)
	setInt(&mc.RetransmitMult, t.RetransmitMult)
	setDur(&mc.PushPullInterval, t.PushPullInterval)
	setDur(&mc.GossipToTheDeadTime, t.GossipToTheDeadTime)
	setDur(&mc.TCPTimeout, t.TCPTimeout)
	mc.DeadNodeReclaimTime = defaultReclaimProbes * mc.ProbeInterval
	setDur(&mc.DeadNodeReclaimTime, t.DeadNodeReclaimTime)
	if mc.ProbeTimeout >= mc.ProbeInterval {
		mc.ProbeTimeout = mc.ProbeInterval / 2
	}
}

// splitHostPort splits host[:port], giving def when there is no port.
func splitHostPort(s string, def int) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare host or IPv6 address.
		if a, perr := netip.ParseAddr(s); perr == nil {
			return a.String(), def, nil
		}
		if s == "" {
			return "", 0, errors.New("empty")
		}
		return s, def, nil
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q of %q: not a port number", ps, s)
	}
	return host, int(p), nil
}

// bindHost is the address to bind for host: "" (every address) and IP
// addresses as they are, a name resolved to one address, IPv4 first, as
// net.Listen does. memberlist binds every address for a host it cannot
// parse as an IP, so "localhost", taken for a loopback address that needs
// no key, would open gossip to the network.
func bindHost(host string) (string, error) {
	if host == "" {
		return "", nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", host, err)
	}
	ip := ips[0]
	for _, cand := range ips {
		if cand.To4() != nil {
			ip = cand
			break
		}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap().String(), nil
}

// resolveOne returns host's address, resolving a name.
func resolveOne(host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	a, _ := netip.AddrFromSlice(ips[0])
	return a.Unmap(), nil
}
