package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/cluster"
	"github.com/svcdns/svcdns/dnsserver"
	"github.com/svcdns/svcdns/forward"
	"github.com/svcdns/svcdns/httpapi"
	"github.com/svcdns/svcdns/proxy"
	"github.com/svcdns/svcdns/ratelimit"
	"github.com/svcdns/svcdns/watcher"
)

const (
	// shutdownTimeout bounds answering the queries in flight at SIGTERM.
	shutdownTimeout = 5 * time.Second
	// expiryInterval is how often registrations whose TTL ran out are
	// removed: an expired instance leaves answers within this.
	expiryInterval = 250 * time.Millisecond
)

// run is svcdns: it parses the command line, starts every component, and
// returns when ctx is done (nil) or a component fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err}
	}
	if cfg.ShowVersion {
		fmt.Fprintln(stdout, "svcdns", version)
		return nil
	}
	log := newLogger(stderr, cfg)
	node := cfg.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return fmt.Errorf("node name: %w (set --node)", err)
		}
	}
	app, err := newApp(cfg, node, log)
	if err != nil {
		return err
	}
	if app.proxy != nil {
		proxyGC(getenv)
	}
	// Bind every listener before serving any: a port that is taken ends
	// svcdns at once with one line, instead of half a server.
	lns, err := app.listen(cfg)
	if err != nil {
		return err
	}
	logStarted(log, cfg, node, lns)
	if err := app.serve(ctx, lns, log); err != nil {
		log.Error("svcdns stopped", "err", err)
		return err
	}
	log.Info("svcdns stopped")
	return nil
}

// app is every component of a running svcdns, wired to one catalog.
type app struct {
	cat     *catalog.Catalog
	watcher *watcher.Watcher // nil without Docker
	dns     *dnsserver.Handler
	proxy   *proxy.Proxy // nil without --proxy-addr
	api     *httpapi.API
	gossip  *cluster.Cluster // nil without --cluster-addr; bound by listen
	node    string
	reg     prometheus.Registerer
	log     *slog.Logger
}

// newApp builds the components: the catalog, the Docker watcher that
// writes it, and the DNS handler, the proxy and the API that read it.
func newApp(cfg config, node string, log *slog.Logger) (*app, error) {
	reg := newRegistry()
	a := &app{cat: catalog.New(), node: node, reg: reg, log: log}
	var err error
	if !cfg.NoDocker {
		a.watcher, err = watcher.New(watcher.Config{
			Catalog: a.cat, DockerHost: cfg.DockerHost, Node: node, AdvertiseIP: cfg.AdvertiseIP,
			Filters: cfg.DockerFilters, Resync: cfg.Resync,
			Logger: log.With("component", "watcher"), Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("docker watcher: %w", err)
		}
	}
	if a.dns, err = newDNSHandler(cfg, node, a.cat, a.watcher, log, reg); err != nil {
		return nil, err
	}
	var routes http.Handler
	if cfg.ProxyAddr != "" {
		a.proxy, err = proxy.New(proxy.Config{
			Catalog: a.cat, Zone: cfg.Domain, Node: node, Published: cfg.AddressMode == dnsserver.AddressHost,
			ConnectTimeout: cfg.ProxyConnect, HeaderTimeout: cfg.ProxyHeader, IdleTimeout: cfg.ProxyIdle,
			Logger: log.With("component", "proxy"), Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		routes = a.proxy.RoutesHandler()
	}
	a.api, err = httpapi.New(httpapi.Config{
		Catalog: a.cat, Token: cfg.HTTPToken, Node: node, Gatherer: reg, Registerer: reg, Queries: a.dns.QueriesByRcode,
		Docker: dockerStatus(a.watcher), Logger: log.With("component", "http"), Routes: routes,
		Explain: explainFunc(a.dns), PrometheusSD: cfg.PrometheusSD, Cluster: a.clusterNodes(cfg),
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// newRegistry is the metrics registry every component registers on, with
// the Go runtime's and the process's metrics and the build.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "svcdns", Name: "build_info", Help: "Always 1; the version label is the running build.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	return reg
}

// newDNSHandler builds the DNS handler of node with its forwarder;
// w, when not nil, says when the catalog has Docker's containers.
func newDNSHandler(cfg config, node string, cat *catalog.Catalog, w *watcher.Watcher, log *slog.Logger, reg prometheus.Registerer) (*dnsserver.Handler, error) {
	var fwd dnsserver.Forwarder
	if len(cfg.Upstreams) > 0 {
		f, err := forward.New(forward.Config{
			Upstreams: cfg.Upstreams, MaxInFlight: cfg.MaxForwards,
			Logger: log.With("component", "forward"), Registerer: reg,
		})
		if err != nil {
			return nil, fmt.Errorf("forwarding: %w", err)
		}
		fwd = f
	}
	ready := func() bool { return true }
	if w != nil {
		ready = w.Synced
	}
	return dnsserver.NewHandler(dnsserver.Config{
		Catalog: cat, Zone: cfg.Domain, TTL: cfg.TTL, NegativeTTL: cfg.NegativeTTL,
		AddressMode: cfg.AddressMode, Node: node, Cluster: cfg.Cluster.Addr != "", MaxUDPSize: cfg.MaxUDPSize,
		Allow: cfg.Allow, RecursionAllow: cfg.RecursionAllow, Forwarder: fwd,
		Ready: ready, NSAddrs: nsAddrs(cfg), ReverseZones: cfg.ReverseZones,
		Logger: log.With("component", "dns"), Registerer: reg,
	})
}

// rateLimiter is the UDP server's limit of --rate-limit; nil for none.
func rateLimiter(cfg config) dnsserver.Limiter {
	if cfg.RateLimit <= 0 {
		return nil
	}
	return ratelimit.New(cfg.RateLimit, 24, 56)
}

// listeners are the bound sockets of a svcdns about to serve.
type listeners struct {
	dns   *dnsserver.Server
	http  net.Listener
	proxy net.Listener // nil without the proxy
	// cluster is the gossip address bound, "off" without it.
	cluster string
}

// listen binds every listener, or none: on an error, those bound are
// closed.
func (a *app) listen(cfg config) (*listeners, error) {
	dnsSrv, err := dnsserver.Listen(dnsserver.ServerConfig{Addr: cfg.DNSAddr, Handler: a.dns, RateLimiter: rateLimiter(cfg)})
	if err != nil {
		return nil, listenError(err, "--dns-addr", cfg.DNSAddr)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		dnsSrv.Close()
		return nil, listenError(err, "--http-addr", cfg.HTTPAddr)
	}
	lns := &listeners{dns: dnsSrv, http: httpLn}
	if a.proxy != nil {
		if lns.proxy, err = net.Listen("tcp", cfg.ProxyAddr); err != nil {
			dnsSrv.Close()
			httpLn.Close()
			return nil, listenError(err, "--proxy-addr", cfg.ProxyAddr)
		}
	}
	if a.gossip, err = newCluster(cfg.Cluster, a.node, a.cat, a.log.With("component", "cluster"), a.reg); err != nil {
		dnsSrv.Close()
		httpLn.Close()
		if lns.proxy != nil {
			lns.proxy.Close()
		}
		return nil, err
	}
	lns.cluster = clusterAddr(a.gossip)
	return lns, nil
}

// logStarted writes the start line: the addresses bound (tests and
// scripts read them from it: testutil.StartedLine) and the settings that
// matter when reading a log.
func logStarted(log *slog.Logger, cfg config, node string, lns *listeners) {
	proxyAddr := "off"
	if lns.proxy != nil {
		proxyAddr = lns.proxy.Addr().String()
	}
	dockerHost := cfg.DockerHost
	switch {
	case cfg.NoDocker:
		dockerHost = none
	case dockerHost == "":
		dockerHost = "DOCKER_HOST or the local socket"
	}
	log.Info("svcdns started", "version", version, "dns", lns.dns.Addr(), "http", lns.http.Addr().String(), "proxy", proxyAddr,
		"domain", cfg.Domain, "node", node, "docker", dockerHost, "address_mode", cfg.AddressMode.String(),
		"upstreams", strings.Join(cfg.Upstreams, ","), "upstream_source", cfg.UpstreamSource,
		"allow", cfg.Allow.String(), "recursion_allow", cfg.RecursionAllow.String(),
		"http_token", cfg.HTTPToken != "", "rate_limit", cfg.RateLimit, "cluster", lns.cluster)
}

// serve runs every component on its listeners until ctx is done (nil) or
// one fails, which stops the others.
func (a *app) serve(ctx context.Context, lns *listeners, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return lns.dns.Serve(gctx, shutdownTimeout, nil) })
	g.Go(func() error { return a.api.Serve(gctx, lns.http) })
	g.Go(func() error {
		expiryLog := log.With("component", "catalog")
		return a.cat.RunExpiry(gctx, expiryInterval, func(ids []string) {
			for _, id := range ids {
				expiryLog.Info("instance expired", "id", id)
			}
		})
	})
	if a.watcher != nil {
		g.Go(func() error { return a.watcher.Run(gctx) })
	}
	if a.proxy != nil {
		g.Go(func() error { return a.proxy.Run(gctx) })
		g.Go(func() error { return a.proxy.Serve(gctx, lns.proxy) })
	}
	if a.gossip != nil {
		g.Go(func() error { return a.gossip.Run(gctx) })
	}
	return g.Wait()
}

func newLogger(w io.Writer, cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// nsAddrs are the addresses of ns.<zone>: the DNS listener's own address
// when it is a specific one, else the advertise address if given.
func nsAddrs(cfg config) []netip.Addr {
	host, _, _ := net.SplitHostPort(cfg.DNSAddr)
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		return []netip.Addr{a.Unmap()}
	}
	if cfg.AdvertiseIP.IsValid() {
		return []netip.Addr{cfg.AdvertiseIP}
	}
	return nil
}

// proxyGC trades memory for CPU when the proxy runs: every request
// allocates a few KB, and with Go's default GOGC=100 the collector takes
// a sixth of a proxy core. GOGC=400 runs it a quarter as often; a soft
// limit of 1 GiB keeps a large catalog from growing five-fold. GOGC and
// GOMEMLIMIT in the environment win.
func proxyGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// dockerStatus adapts the watcher's status for /healthz; nil without
// Docker.
func dockerStatus(w *watcher.Watcher) func() httpapi.DockerStatus {
	if w == nil {
		return nil
	}
	return func() httpapi.DockerStatus { return w.Status() }
}

// listenError says which listener could not start and what to do about it.
func listenError(err error, flagName, addr string) error {
	switch {
	case errors.Is(err, syscall.EACCES):
		hint := "run as root, give svcdns CAP_NET_BIND_SERVICE, or choose a port above 1023"
		if flagName == "--dns-addr" {
			hint += " (--dns-addr 127.0.0.1:5353)"
		}
		return fmt.Errorf("%s %s: %w: ports below 1024 need root or CAP_NET_BIND_SERVICE; %s", flagName, addr, err, hint)
	case errors.Is(err, syscall.EADDRINUSE):
		holder := "another program holds this port"
		if _, port, _ := net.SplitHostPort(addr); port == "53" {
			holder += " (often systemd-resolved or dnsmasq)"
		}
		return fmt.Errorf("%s %s: %w: %s; stop it or choose another %s", flagName, addr, err, holder, flagName)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: %w: no interface of this host has that address", flagName, addr, err)
	}
	return fmt.Errorf("%s %s: %w", flagName, addr, err)
}
