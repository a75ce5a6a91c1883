package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/cluster"
	"github.com/svcdns/svcdns/httpapi"
)

// clusterConfig is the gossip part of the command line. Addr "" is off.
type clusterConfig struct {
	Addr         string
	Advertise    string
	Join         []string
	Keys         [][]byte
	MaxInstances int
	Timing       cluster.Timing // failure detection; the zero value is svcdns's default
}

type clusterFlags struct {
	addr, advertise, join, key string
	maxInstances               int
	probeInterval              time.Duration
	suspicionMult              int
}

// Bounds of the failure-detection flags: memberlist's probes stop making
// sense below the first (each node sends several packets per interval),
// and above the second a dead node stays in the answers for minutes.
const (
	minProbeInterval = 100 * time.Millisecond
	maxProbeInterval = time.Minute
	maxSuspicionMult = 20
)

func (f *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "cluster-addr", "", "gossip `address` host:port (UDP and TCP) to share the catalog with other svcdns nodes, e.g. 0.0.0.0:7946; a non-loopback address needs --cluster-key (default: off)")
	fs.StringVar(&f.advertise, "cluster-advertise", "", "`address` host[:port] other nodes reach this one's gossip at (default: the --cluster-addr host, or this host's private address for 0.0.0.0)")
	fs.StringVar(&f.join, "join", "", "comma-separated peers `host[:port]` to join (port 7946 when none); retried with backoff until one answers")
	fs.StringVar(&f.key, "cluster-key", "", "base64 AES `key` of 16, 24 or 32 bytes encrypting gossip; a comma list is a keyring whose first key encrypts (prefer SVCDNS_CLUSTER_KEY: flags show in ps)")
	fs.IntVar(&f.maxInstances, "cluster-max-instances", cluster.DefaultMaxInstances, "most `instances` kept of one peer node")
	fs.DurationVar(&f.probeInterval, "cluster-probe-interval", time.Second, "failure detection: how often each node probes one other (memberlist ProbeInterval; the probe timeout is 500ms, or half this when this is 500ms or less)")
	fs.IntVar(&f.suspicionMult, "cluster-suspicion-mult", cluster.DefaultSuspicionMult, "failure detection: a node that failed a probe is suspect this `many` times log10(nodes) probe intervals at least before it is declared dead")
}

// parse validates the flags; src names a flag as the user gave it.
func (f *clusterFlags) parse(src func(string) string) (clusterConfig, error) {
	var cc clusterConfig
	if f.addr == "" {
		for _, name := range []string{"cluster-advertise", "join", "cluster-key"} {
			if given := map[string]string{"cluster-advertise": f.advertise, "join": f.join, "cluster-key": f.key}[name]; given != "" {
				return cc, fmt.Errorf("%s without --cluster-addr: gossip is off", src(name))
			}
		}
		return cc, nil
	}
	if err := checkHostPort(f.addr); err != nil {
		return cc, fmt.Errorf("%s: %w", src("cluster-addr"), err)
	}
	cc.Addr, cc.Advertise, cc.MaxInstances = f.addr, f.advertise, f.maxInstances
	for k := range strings.SplitSeq(f.key, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return cc, fmt.Errorf("%s: key %d is not base64: %w", src("cluster-key"), len(cc.Keys)+1, err)
		}
		if n := len(key); n != 16 && n != 24 && n != 32 {
			return cc, fmt.Errorf("%s: key %d has %d bytes, want 16, 24 or 32 (make one with: head -c 32 /dev/urandom | base64)", src("cluster-key"), len(cc.Keys)+1, n)
		}
		cc.Keys = append(cc.Keys, key)
	}
	if len(cc.Keys) == 0 && !isLoopback(f.addr) {
		return cc, fmt.Errorf("%s %s is not a loopback address: set --cluster-key (or SVCDNS_CLUSTER_KEY) so that only holders of the key can join and write records", src("cluster-addr"), f.addr)
	}
	for j := range strings.SplitSeq(f.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cc.Join = append(cc.Join, j)
		}
	}
	if cc.MaxInstances < 1 {
		return cc, fmt.Errorf("%s %d: want at least 1", src("cluster-max-instances"), cc.MaxInstances)
	}
	if f.probeInterval < minProbeInterval || f.probeInterval > maxProbeInterval {
		return cc, fmt.Errorf("%s %v: want %v to %v", src("cluster-probe-interval"), f.probeInterval, minProbeInterval, maxProbeInterval)
	}
	if f.suspicionMult < 1 || f.suspicionMult > maxSuspicionMult {
		return cc, fmt.Errorf("%s %d: want 1 to %d", src("cluster-suspicion-mult"), f.suspicionMult, maxSuspicionMult)
	}
	cc.Timing = cluster.Timing{ProbeInterval: f.probeInterval, SuspicionMult: f.suspicionMult}
	return cc, nil
}

// newCluster starts gossip, or returns nil when it is off.
func newCluster(cc clusterConfig, node string, cat *catalog.Catalog, log *slog.Logger, reg prometheus.Registerer) (*cluster.Cluster, error) {
	if cc.Addr == "" {
		return nil, nil
	}
	if !catalog.ValidLabel(node) {
		return nil, fmt.Errorf("--node %q: a clustered node's name must be a lower-case DNS label (it is answered as <node>.node.<zone>)", node)
	}
	c, err := cluster.New(cluster.Config{
		Node: node, BindAddr: cc.Addr, AdvertiseAddr: cc.Advertise, Join: cc.Join, Keys: cc.Keys,
		MaxInstances: cc.MaxInstances, Store: cat, Logger: log, Registerer: reg, Timing: cc.Timing,
	})
	if err != nil {
		return nil, fmt.Errorf("--cluster-addr %s: %w", cc.Addr, err)
	}
	return c, nil
}

// clusterAddr is the gossip address for the start line.
func clusterAddr(c *cluster.Cluster) string {
	if c == nil {
		return "off"
	}
	return c.Addr().String()
}

// clusterNodes lists the cluster's nodes for the API, nil when gossip is
// off. The cluster itself starts later (listen binds it); the API serves
// only after that.
func (a *app) clusterNodes(cfg config) func() []httpapi.Node {
	if cfg.Cluster.Addr == "" {
		return nil
	}
	return func() []httpapi.Node {
		if a.gossip == nil {
			return []httpapi.Node{}
		}
		ms := a.gossip.Members()
		out := make([]httpapi.Node, 0, len(ms))
		for _, m := range ms {
			out = append(out, httpapi.Node{
				Name: m.Name, Address: m.Addr.String(), State: m.State, Local: m.Local,
				Instances: m.Instances, Version: m.Version.String(), LastFullState: m.LastFullState.UTC(),
			})
		}
		return out
	}
}
