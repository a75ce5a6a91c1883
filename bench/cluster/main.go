// Command cluster measures svcdns's cluster (issue 10, "How it is
// measured"): N nodes of package cluster in this one process on loopback,
// each owning 1,000 instances, gossip encrypted, memberlist's LAN timings
// unless told otherwise. For each N it reports:
//
//   - one change on one node → held by every node: p50 and p99 over the
//     changes of the load phase (from the owner's store change to the
//     write into each peer's store, the last peer deciding);
//   - a node killed (memberlist shut down without leaving) → its records
//     gone from every node;
//   - a new node joining → holding every live node's records, in a real
//     catalog;
//   - gossip bytes (UDP and TCP, as written to and read from the sockets)
//     per node per second, idle and under -rate changes/s cluster-wide.
//
// Node 0 and the joining node keep their peers' records in a real
// *catalog.Catalog; the others in a store that only counts them
// (store.go): 100 catalogs of 100,000 instances do not fit in memory.
//
// With -serve it starts one cluster, prints "ready <join address> <key>"
// when every node holds every record, and runs until stdin closes: a svcdns
// binary joined to it then answers DNS with the peers' records loaded
// (bench/cluster.sh).
//
//	cluster -nodes 10,50,100 -instances 1000 -results results.tsv
package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/svcdns/svcdns/cluster"
)

// size is one cluster to measure: nodes, each owning instances.
type size struct{ nodes, instances int }

type options struct {
	sizes      []size
	instances  int
	idle, load time.Duration
	rate       int
	settle     time.Duration
	form       time.Duration
	timing     cluster.Timing
	results    string
	serve      int
	logLevel   slog.Level
	limit      time.Duration
	cpuProfile string
	joinProf   string
	lockProf   string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(2)
	}
	if o.serve == 0 {
		// A run that hangs prints every goroutine's stack and stops.
		watchdog := time.AfterFunc(o.limit, func() {
			fmt.Fprintf(os.Stderr, "cluster: still running after %v; goroutines:\n", o.limit)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			os.Exit(1)
		})
		defer watchdog.Stop()
	}
	stop, err := startProfiles(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(2)
	}
	err = run(o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	nodes := fs.String("nodes", "10,50,100", "cluster sizes to measure, comma list; N:I gives N nodes I instances each instead of -instances")
	fs.IntVar(&o.instances, "instances", 1000, "instances each node owns")
	fs.DurationVar(&o.idle, "idle", 15*time.Second, "idle window for gossip bytes")
	fs.DurationVar(&o.load, "load", 10*time.Second, "window of the change load")
	fs.IntVar(&o.rate, "rate", 100, "changes per second, cluster-wide, during the load window")
	fs.DurationVar(&o.settle, "settle", 90*time.Second, "longest wait for a kill, a join or the end of the change load")
	fs.DurationVar(&o.form, "form", 180*time.Second, "longest wait for a new cluster to hold every record everywhere")
	fs.DurationVar(&o.timing.ProbeInterval, "probe-interval", 0, "memberlist ProbeInterval (0: LAN default 1s)")
	fs.DurationVar(&o.timing.ProbeTimeout, "probe-timeout", 0, "memberlist ProbeTimeout (0: LAN default 500ms)")
	fs.IntVar(&o.timing.SuspicionMult, "suspicion-mult", 0, "memberlist SuspicionMult (0: svcdns's default, cluster.DefaultSuspicionMult)")
	fs.DurationVar(&o.timing.GossipInterval, "gossip-interval", 0, "memberlist GossipInterval (0: LAN default 200ms)")
	fs.DurationVar(&o.timing.PushPullInterval, "push-pull-interval", 0, "memberlist PushPullInterval (0: LAN default 30s)")
	fs.IntVar(&o.timing.GossipNodes, "gossip-nodes", 0, "memberlist GossipNodes (0: LAN default 3)")
	fs.IntVar(&o.timing.RetransmitMult, "retransmit-mult", 0, "memberlist RetransmitMult (0: LAN default 4)")
	fs.StringVar(&o.results, "results", "", "append results (group<TAB>key<TAB>value) to this file, for bench/plot")
	fs.IntVar(&o.serve, "serve", 0, "start this many nodes, print the join address and key, run until stdin closes")
	fs.DurationVar(&o.limit, "limit", 15*time.Minute, "stop with every goroutine's stack after this long (not in -serve)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.joinProf, "join-cpuprofile", "", "write a CPU profile of the join phase (from the new node's start until it holds every record) to this file, one per cluster size (.<nodes> appended when -nodes lists several)")
	fs.StringVar(&o.lockProf, "lockprofile", "", "write mutex and block profiles of the whole run to this file's .mutex and .block")
	level := fs.String("log-level", "error", "log level of the nodes' cluster logs (to stderr)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("-log-level: %w", err)
	}
	if o.cpuProfile != "" && o.joinProf != "" {
		return o, errors.New("-cpuprofile and -join-cpuprofile: one CPU profile at a time")
	}
	if o.instances < 1 || o.rate < 1 {
		return o, errors.New("-instances and -rate must be positive")
	}
	for _, f := range strings.Split(*nodes, ",") {
		ns, is, found := strings.Cut(strings.TrimSpace(f), ":")
		sz := size{instances: o.instances}
		var err error
		if sz.nodes, err = strconv.Atoi(ns); err != nil || sz.nodes < 2 {
			return o, fmt.Errorf("-nodes %q: want numbers of at least 2", *nodes)
		}
		if found {
			if sz.instances, err = strconv.Atoi(is); err != nil || sz.instances < 1 {
				return o, fmt.Errorf("-nodes %q: instances after ':' must be a positive number", *nodes)
			}
		}
		o.sizes = append(o.sizes, sz)
	}
	return o, nil
}

func run(o options) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	if o.serve > 0 {
		return serve(o, key, logger)
	}
	var res io.Writer = io.Discard
	if o.results != "" {
		f, err := os.OpenFile(o.results, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		res = f
	}
	fmt.Printf("memberlist timings: %s; gossip encrypted (AES-256); %d CPUs, GOMAXPROCS %d; %s\n\n",
		timingString(o.timing), runtime.NumCPU(), runtime.GOMAXPROCS(0), gcString())
	fmt.Println(header)
	var phases []string
	for _, sz := range o.sizes {
		o.instances = sz.instances
		r, err := measure(o, sz.nodes, key, logger)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", sz.nodes, err)
		}
		fmt.Println(r.row())
		r.write(res)
		for _, p := range r.phases {
			phases = append(phases, p.row(sz.nodes))
		}
	}
	fmt.Printf("\nThe Go runtime in each phase (runtime/metrics; one process for all nodes; %s):\n\n%s\n%s\n",
		gcString(), rtHeader, strings.Join(phases, "\n"))
	return nil
}

// serve runs one cluster for bench/cluster.sh until stdin closes.
func serve(o options, key []byte, logger *slog.Logger) error {
	b := &bench{o: o, key: key, log: logger}
	defer b.stop()
	formed := time.Now()
	if err := b.start(o.serve); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes × %d instances held everywhere after %v\n", o.serve, o.instances,
		time.Since(formed).Round(time.Millisecond))
	fmt.Printf("ready %s %s\n", b.nodes[0].addr, base64.StdEncoding.EncodeToString(key))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// timingString says which memberlist timings a run used.
func timingString(t cluster.Timing) string {
	dur := func(d, def time.Duration) string {
		if d == 0 {
			return def.String() + " (LAN default)"
		}
		return d.String()
	}
	num := func(n, def int) string {
		if n == 0 {
			return strconv.Itoa(def) + " (LAN default)"
		}
		return strconv.Itoa(n)
	}
	suspicion := strconv.Itoa(t.SuspicionMult)
	if t.SuspicionMult == 0 {
		suspicion = strconv.Itoa(cluster.DefaultSuspicionMult) + " (svcdns default; LAN 4)"
	}
	return fmt.Sprintf("ProbeInterval %s, ProbeTimeout %s, SuspicionMult %s, GossipInterval %s, GossipNodes %s, RetransmitMult %s, PushPullInterval %s",
		dur(t.ProbeInterval, time.Second), dur(t.ProbeTimeout, 500*time.Millisecond), suspicion,
		dur(t.GossipInterval, 200*time.Millisecond), num(t.GossipNodes, 3), num(t.RetransmitMult, 4), dur(t.PushPullInterval, 30*time.Second))
}

const header = "| nodes | formed / quiet after | change → every node p50 / p99 | per node p50 / p99 | owner published p50 / p99 | kill → gone everywhere (first / last node) | join → all held / its own everywhere | gossip idle out/in per node | under load out/in per node | heap |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

// result is one cluster size's figures.
type result struct {
	nodes, instances             int
	formed, quiet                time.Duration
	quietRate                    float64 // bytes per node per second, out plus in, when quiet came
	changes, missed              int
	allP50, allP99, nodeP50, p99 time.Duration
	pubP50, pubP99               time.Duration
	killFirst, killLast          time.Duration
	join, joinSpread             time.Duration
	joinHeld                     int
	idleOut, idleIn              float64 // bytes per node per second
	loadOut, loadIn              float64
	rate                         float64 // changes/s achieved
	heapMB                       float64
	phases                       []rtPhase
}

func (r result) row() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }
	s := func(d time.Duration) string {
		if d < 0 {
			return fmt.Sprintf("> %.0f s", -d.Seconds()) // not reached within the wait
		}
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	kb := func(v float64) string { return fmt.Sprintf("%.1f", v/1000) }
	missed := ""
	if r.missed > 0 {
		missed = fmt.Sprintf(" (%d of %d never arrived)", r.missed, r.changes)
	}
	return fmt.Sprintf("| %d × %d | %s / %s | %s / %s over %d changes at %.0f/s%s | %s / %s | %s / %s | %s / %s | %s (%d instances) / %s | %s / %s kB/s | %s / %s kB/s | %.0f MB |",
		r.nodes, r.instances, s(r.formed), s(r.quiet), ms(r.allP50), ms(r.allP99), r.changes, r.rate, missed, ms(r.nodeP50), ms(r.p99), ms(r.pubP50), ms(r.pubP99),
		s(r.killFirst), s(r.killLast), s(r.join), r.joinHeld, s(r.joinSpread), kb(r.idleOut), kb(r.idleIn), kb(r.loadOut), kb(r.loadIn), r.heapMB)
}

// write appends the figures bench/plot draws, grouped by cluster size.
func (r result) write(w io.Writer) {
	g := fmt.Sprintf("%d nodes", r.nodes)
	if r.instances != 1000 {
		g = fmt.Sprintf("%dx%d", r.nodes, r.instances)
	}
	put := func(k string, v float64) {
		if !math.IsNaN(v) && v >= 0 {
			fmt.Fprintf(w, "%s\t%s\t%.3f\n", g, k, v)
		}
	}
	put("change_p50_ms", float64(r.allP50)/1e6)
	put("change_p99_ms", float64(r.allP99)/1e6)
	put("kill_s", r.killLast.Seconds())
	put("join_s", r.join.Seconds())
	put("join_spread_s", r.joinSpread.Seconds())
	put("idle_kBs", (r.idleOut+r.idleIn)/2/1000)
	put("load_kBs", (r.loadOut+r.loadIn)/2/1000)
}

func measure(o options, n int, key []byte, logger *slog.Logger) (result, error) {
	r := result{nodes: n, instances: o.instances}
	b := &bench{o: o, key: key, log: logger}
	defer b.stop()
	runtime.GC() // the previous size's garbage is not this one's
	rtStart := readRuntime()
	began := time.Now()
	if err := b.start(n); err != nil {
		return r, err
	}
	r.formed = time.Since(began)
	rt := readRuntime()
	phase := func(name string) {
		now := readRuntime()
		p := rt.to(now, name)
		rt = now
		r.phases = append(r.phases, p)
		fmt.Fprintf(os.Stderr, "cluster: %d nodes: runtime, %s\n", n, p)
	}
	r.phases = append(r.phases, rtStart.to(rt, "forming"))
	fmt.Fprintf(os.Stderr, "cluster: %d nodes formed, every record everywhere, after %v; runtime, %s\n", n, r.formed.Round(time.Millisecond), r.phases[0])
	var err error
	if r.quiet, r.quietRate, err = b.waitQuiet(o.settle); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes quiet %v after forming: %.0f B/s per node out plus in\n", n, r.quiet.Round(time.Millisecond), r.quietRate)
	phase("settling")

	r.idleOut, r.idleIn = b.bytesPerNode(func() { time.Sleep(o.idle) }, o.idle)
	phase("idle")
	var changes []*change
	r.loadOut, r.loadIn = b.bytesPerNode(func() { changes = b.changeLoad(o.rate, o.load) }, o.load)
	r.rate = float64(len(changes)) / o.load.Seconds()
	fmt.Fprintf(os.Stderr, "cluster: %d nodes: gossip per node out/in %.0f/%.0f B/s idle, %.0f/%.0f B/s under %.0f changes/s\n",
		n, r.idleOut, r.idleIn, r.loadOut, r.loadIn, r.rate)
	if err := b.waitCurrent(o.settle); err != nil {
		return r, err
	}
	phase("change load")
	r.changes = len(changes)
	r.allP50, r.allP99, r.nodeP50, r.p99, r.missed = b.latencies(changes)
	r.pubP50, r.pubP99 = publishing(changes)
	fmt.Fprintf(os.Stderr, "cluster: %d nodes: %d changes, every node p50 %v p99 %v\n", n, len(changes), r.allP50, r.allP99)

	if r.killFirst, r.killLast, err = b.kill(o.settle); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes: killed node's records gone from the first node after %v, from all after %v\n", n, r.killFirst, r.killLast)
	phase("kill")
	if r.join, r.joinSpread, r.joinHeld, err = b.join(o.settle); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "cluster: %d nodes: a new node held %d instances %v after it started; its own were on every node after %v\n",
		n, r.joinHeld, r.join, r.joinSpread)
	phase("join")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMB = float64(ms.HeapInuse) / 1e6
	return r, nil
}

// nodeName is the name of node number i.
func nodeName(i int) string { return fmt.Sprintf("node%03d", i) }

// startProfiles starts the profiles asked for; the returned func writes
// them.
func startProfiles(o options) (func(), error) {
	var stops []func()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if o.lockProf != "" {
		runtime.SetMutexProfileFraction(10)
		runtime.SetBlockProfileRate(int(time.Millisecond))
		stops = append(stops, func() {
			for _, name := range []string{"mutex", "block"} {
				f, err := os.Create(o.lockProf + "." + name)
				if err != nil {
					fmt.Fprintln(os.Stderr, "cluster:", err)
					continue
				}
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}, nil
}
