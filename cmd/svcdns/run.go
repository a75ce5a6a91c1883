package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/dnsserver"
	"github.com/svcdns/svcdns/forward"
	"github.com/svcdns/svcdns/httpapi"
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "svcdns", Name: "build_info", Help: "Always 1; the version label is the running build.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))

	node := cfg.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil {
			return fmt.Errorf("node name: %w (set --node)", err)
		}
	}
	cat := catalog.New()

	var w *watcher.Watcher
	if !cfg.NoDocker {
		w, err = watcher.New(watcher.Config{
			Catalog: cat, DockerHost: cfg.DockerHost, Node: node, AdvertiseIP: cfg.AdvertiseIP,
			Filters: cfg.DockerFilters, Resync: cfg.Resync,
			Logger: log.With("component", "watcher"), Registerer: reg,
		})
		if err != nil {
			return fmt.Errorf("docker watcher: %w", err)
		}
	}

	var fwd dnsserver.Forwarder
	if len(cfg.Upstreams) > 0 {
		f, err := forward.New(forward.Config{
			Upstreams: cfg.Upstreams, MaxInFlight: cfg.MaxForwards,
			Logger: log.With("component", "forward"), Registerer: reg,
		})
		if err != nil {
			return fmt.Errorf("forwarding: %w", err)
		}
		fwd = f
	}
	var limiter dnsserver.Limiter
	if cfg.RateLimit > 0 {
		limiter = ratelimit.New(cfg.RateLimit, 24, 56)
	}
	ready := func() bool { return true }
	if w != nil {
		ready = w.Synced
	}
	handler, err := dnsserver.NewHandler(dnsserver.Config{
		Catalog: cat, Zone: cfg.Domain, TTL: cfg.TTL, NegativeTTL: cfg.NegativeTTL,
		AddressMode: cfg.AddressMode, MaxUDPSize: cfg.MaxUDPSize,
		Allow: cfg.Allow, RecursionAllow: cfg.RecursionAllow, Forwarder: fwd,
		Ready: ready, RateLimiter: limiter, NSAddrs: nsAddrs(cfg),
		Logger: log.With("component", "dns"), Registerer: reg,
	})
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{
		Catalog: cat, Token: cfg.HTTPToken, Node: node, Gatherer: reg, Registerer: reg,
		Docker: dockerStatus(w), Logger: log.With("component", "http"),
	})
	if err != nil {
		return err
	}

	// Bind every listener before serving any: a port that is taken ends
	// svcdns at once with one line, instead of half a server.
	dnsSrv, err := dnsserver.Listen(dnsserver.ServerConfig{Addr: cfg.DNSAddr, Handler: handler})
	if err != nil {
		return listenError(err, "--dns-addr", cfg.DNSAddr)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		dnsSrv.Close()
		return listenError(err, "--http-addr", cfg.HTTPAddr)
	}

	dockerHost := cfg.DockerHost
	switch {
	case cfg.NoDocker:
		dockerHost = none
	case dockerHost == "":
		dockerHost = "DOCKER_HOST or the local socket"
	}
	log.Info("svcdns started", "version", version, "dns", dnsSrv.Addr(), "http", httpLn.Addr().String(),
		"domain", cfg.Domain, "node", node, "docker", dockerHost, "address_mode", cfg.AddressMode.String(),
		"upstreams", strings.Join(cfg.Upstreams, ","), "upstream_source", cfg.UpstreamSource,
		"allow", cfg.Allow.String(), "recursion_allow", cfg.RecursionAllow.String(),
		"http_token", cfg.HTTPToken != "", "rate_limit", cfg.RateLimit)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return dnsSrv.Serve(gctx, shutdownTimeout, nil) })
	g.Go(func() error { return api.Serve(gctx, httpLn) })
	g.Go(func() error {
		expiryLog := log.With("component", "catalog")
		return cat.RunExpiry(gctx, expiryInterval, func(ids []string) {
			for _, id := range ids {
				expiryLog.Info("instance expired", "id", id)
			}
		})
	})
	if w != nil {
		g.Go(func() error { return w.Run(gctx) })
	}
	err = g.Wait()
	if err != nil {
		log.Error("svcdns stopped", "err", err)
		return err
	}
	log.Info("svcdns stopped")
	return nil
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

// dockerStatus adapts the watcher's status for /healthz; nil without
// Docker.
func dockerStatus(w *watcher.Watcher) func() httpapi.DockerStatus {
	if w == nil {
		return nil
	}
	return func() httpapi.DockerStatus {
		s := w.Status()
		return httpapi.DockerStatus{
			Connected: s.Connected, Synced: s.Synced, LastSync: s.LastSync,
			Events: s.Events, Resyncs: s.Resyncs, Repairs: s.Repairs, LastError: s.LastError,
		}
	}
}

// listenError says which listener could not start and what to do about it.
func listenError(err error, flagName, addr string) error {
	switch {
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %s: %w: ports below 1024 need root or CAP_NET_BIND_SERVICE; use %s 127.0.0.1:5353 (or another port above 1023)", flagName, addr, err, flagName)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %s: %w: another program holds this port (for :53, often systemd-resolved or dnsmasq); stop it or choose another %s", flagName, addr, err, flagName)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: %w: no interface of this host has that address", flagName, addr, err)
	}
	return fmt.Errorf("%s %s: %w", flagName, addr, err)
}
