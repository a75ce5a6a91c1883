package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcdns/svcdns/dnsserver"
	"github.com/svcdns/svcdns/forward"
	"github.com/svcdns/svcdns/httpapi"
	"github.com/svcdns/svcdns/proxy"
)

// config is the validated command line: every flag, each also read from
// SVCDNS_<FLAG> (upper case, '-' as '_'); a flag given on the command line
// wins over its environment variable.
type config struct {
	DNSAddr        string
	HTTPAddr       string
	HTTPToken      string
	PrometheusSD   string // httpapi.SDLabels or httpapi.SDAll
	Domain         string
	Upstreams      []string // nil = none
	UpstreamSource string   // where Upstreams came from, for the start line
	ResolvConf     string
	Allow          dnsserver.ACL
	RecursionAllow dnsserver.ACL
	TTL            uint32
	NegativeTTL    uint32
	DockerHost     string // "" = DOCKER_HOST or the local socket
	NoDocker       bool
	DockerFilters  []string
	AddressMode    dnsserver.AddressMode
	AdvertiseIP    netip.Addr
	Node           string
	Resync         time.Duration
	MaxUDPSize     int
	ReverseZones   []netip.Prefix
	MaxForwards    int
	RateLimit      int
	ProxyAddr      string // "" = no proxy
	ProxyConnect   time.Duration
	ProxyHeader    time.Duration
	ProxyIdle      time.Duration
	LogLevel       slog.Level
	LogFormat      string
	ShowVersion    bool
	Cluster        clusterConfig
}

const (
	envPrefix = "SVCDNS_"
	none      = "none"
)

// rawFlags are the flags read as text and parsed once every source has
// been applied.
type rawFlags struct {
	upstream, allow, recursionAllow, filters string
	ttl, negTTL, addressMode, advertise, lvl string
	reverseZones                             string
	cluster                                  clusterFlags
}

// parseConfig reads args (without the program name) and the environment.
// Usage and errors go to stderr; the error says which flag is wrong.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	var raw rawFlags
	fs := newFlagSet(&cfg, &raw)
	fs.SetOutput(stderr)
	// Environment first, so that the command line overrides it.
	fromEnv, err := setFromEnv(fs, getenv)
	if err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: svcdns takes flags only", fs.Arg(0))
	}
	if cfg.ShowVersion {
		return cfg, nil
	}
	src := flagSources(fs, args, fromEnv)
	for _, step := range []func(*config, rawFlags, func(string) string) error{
		(*config).checkListeners, (*config).parseAnswers, (*config).parseDocker, (*config).parseLogging,
	} {
		if err := step(&cfg, raw, src); err != nil {
			return cfg, err
		}
	}
	if err := cfg.parseUpstreams(raw.upstream); err != nil {
		return cfg, fmt.Errorf("%s: %w", src("upstream"), err)
	}
	if cfg.Cluster, err = raw.cluster.parse(src); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// newFlagSet defines every flag, into cfg or, for those parsed later,
// into raw.
func newFlagSet(cfg *config, raw *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("svcdns", flag.ContinueOnError)
	fs.StringVar(&cfg.DNSAddr, "dns-addr", ":53", "UDP and TCP `address` of the DNS server")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8053", "`address` of the HTTP API; a non-loopback address needs --http-token")
	fs.StringVar(&cfg.PrometheusSD, "prometheus-sd", httpapi.SDLabels, "which instances GET /v1/prometheus lists: `labels` (those with SERVICE_METRICS_PORT) or all (every tcp instance at its own port)")
	fs.StringVar(&cfg.HTTPToken, "http-token", "", "bearer `token` that API writes must carry (prefer SVCDNS_HTTP_TOKEN: flags show in ps)")
	fs.StringVar(&cfg.Domain, "domain", dnsserver.DefaultZone, "the `zone` answered from the catalog")
	fs.StringVar(&raw.upstream, "upstream", "", "comma-separated upstream resolvers `ip[:port]` for names outside the zone; none = no forwarding (default: the nameservers of /etc/resolv.conf)")
	fs.StringVar(&cfg.ResolvConf, "resolv-conf", "/etc/resolv.conf", "`file` whose nameservers are the default upstreams (with systemd-resolved: /run/systemd/resolve/resolv.conf)")
	fs.StringVar(&raw.allow, "allow", "loopback,local,private,docker", "`clients` that may query at all: CIDRs, addresses, loopback, local (this host's addresses), private, docker (the Docker networks svcdns sees), any")
	fs.StringVar(&raw.recursionAllow, "recursion-allow", "loopback,local,docker", "`clients` whose names outside the zone are forwarded (same syntax as --allow)")
	fs.StringVar(&raw.ttl, "ttl", "5", "TTL of answers, in `seconds` (5 or 5s)")
	fs.StringVar(&raw.negTTL, "negative-ttl", "5", "TTL of negative answers (the SOA minimum), in `seconds`")
	fs.StringVar(&cfg.DockerHost, "docker-host", "", "Docker `endpoint` (unix:///var/run/docker.sock, tcp://…); none = run without Docker (default: DOCKER_HOST or the local socket)")
	fs.StringVar(&raw.filters, "docker-filter", "", "only watch containers matching these Docker label `filters`, comma-separated: label=env=prod,label=team")
	fs.StringVar(&raw.addressMode, "address-mode", "auto", "which `address` answers give: auto, container or host")
	fs.StringVar(&raw.advertise, "advertise-ip", "", "this host's `address`, answered for ports published on 0.0.0.0 and for host-network containers (default: detected)")
	fs.StringVar(&cfg.Node, "node", "", "`name` of this node, the owner of this Docker host's containers (default: the hostname)")
	fs.DurationVar(&cfg.Resync, "resync", time.Minute, "`interval` of the full Docker resync that repairs missed events")
	fs.IntVar(&cfg.MaxUDPSize, "max-udp-size", dnsserver.DefaultMaxUDPSize, "largest UDP answer in `bytes`, whatever the client's EDNS0 size")
	fs.StringVar(&raw.reverseZones, "reverse-zones", "", "comma-separated `CIDRs` whose reverse zones svcdns answers with authority, besides the Docker networks it sees")
	fs.IntVar(&cfg.MaxForwards, "max-forwards", 1024, "upstream queries in flight at most; past it SERVFAIL at once")
	fs.IntVar(&cfg.RateLimit, "rate-limit", 0, "UDP answers per second per client /24 (IPv6 /56); over it an empty truncated reply sends the client to TCP; 0 = off")
	fs.StringVar(&cfg.ProxyAddr, "proxy-addr", "", "`address` of the HTTP reverse proxy in front of the services (off when empty)")
	fs.DurationVar(&cfg.ProxyConnect, "proxy-connect-timeout", proxy.DefaultConnectTimeout, "`time` the proxy waits to connect to an instance before trying another")
	fs.DurationVar(&cfg.ProxyHeader, "proxy-header-timeout", proxy.DefaultHeaderTimeout, "`time` the proxy waits for an instance's response headers (then 504)")
	fs.DurationVar(&cfg.ProxyIdle, "proxy-idle-timeout", proxy.DefaultIdleTimeout, "`time` an idle keep-alive connection of the proxy, to a client or an instance, stays open")
	fs.StringVar(&raw.lvl, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log `format`: text or json")
	fs.BoolVar(&cfg.ShowVersion, "version", false, "print the version and exit")
	raw.cluster.register(fs)
	return fs
}

// setFromEnv sets every flag whose SVCDNS_<FLAG> variable is set, and
// returns, by flag name, the variable that set it.
func setFromEnv(fs *flag.FlagSet, getenv func(string) string) (map[string]string, error) {
	var errs []error
	fromEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		key := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			fromEnv[f.Name] = key
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
			}
		}
	})
	return fromEnv, errors.Join(errs...)
}

// flagSources returns what names where a flag's value came from, for
// error messages: the flag when the command line set it, else its
// environment variable.
func flagSources(fs *flag.FlagSet, args []string, fromEnv map[string]string) func(name string) string {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = fromEnv[f.Name] == "" || flagGiven(args, f.Name) })
	return func(name string) string {
		if key := fromEnv[name]; key != "" && !onCommandLine[name] {
			return key
		}
		return "--" + name
	}
}

// checkListeners checks the addresses svcdns listens on, and that an API
// reachable from other hosts has a token.
func (cfg *config) checkListeners(_ rawFlags, src func(string) string) error {
	if err := checkHostPort(cfg.DNSAddr); err != nil {
		return fmt.Errorf("%s: %w", src("dns-addr"), err)
	}
	if err := checkHostPort(cfg.HTTPAddr); err != nil {
		return fmt.Errorf("%s: %w", src("http-addr"), err)
	}
	if cfg.HTTPToken == "" && !isLoopback(cfg.HTTPAddr) {
		return fmt.Errorf("%s %s is not a loopback address: set --http-token (or SVCDNS_HTTP_TOKEN) so that only holders of the token can register and deregister instances", src("http-addr"), cfg.HTTPAddr)
	}
	if cfg.PrometheusSD != httpapi.SDLabels && cfg.PrometheusSD != httpapi.SDAll {
		return fmt.Errorf("%s %q: want %s or %s", src("prometheus-sd"), cfg.PrometheusSD, httpapi.SDLabels, httpapi.SDAll)
	}
	if cfg.ProxyAddr != "" {
		if err := checkHostPort(cfg.ProxyAddr); err != nil {
			return fmt.Errorf("%s: %w", src("proxy-addr"), err)
		}
	}
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{{"proxy-connect-timeout", cfg.ProxyConnect}, {"proxy-header-timeout", cfg.ProxyHeader}, {"proxy-idle-timeout", cfg.ProxyIdle}} {
		if t.d < time.Millisecond {
			return fmt.Errorf("%s %v: want at least 1ms", src(t.flag), t.d)
		}
	}
	return nil
}

// parseAnswers reads what shapes DNS answers and who gets them.
func (cfg *config) parseAnswers(raw rawFlags, src func(string) string) error {
	var err error
	if cfg.Domain, err = dnsserver.NormalizeZone(cfg.Domain); err != nil {
		return fmt.Errorf("%s: %w", src("domain"), err)
	}
	if cfg.Allow, err = dnsserver.ParseACL(raw.allow); err != nil {
		return fmt.Errorf("%s: %w", src("allow"), err)
	}
	if cfg.RecursionAllow, err = dnsserver.ParseACL(raw.recursionAllow); err != nil {
		return fmt.Errorf("%s: %w", src("recursion-allow"), err)
	}
	if cfg.TTL, err = parseSeconds(raw.ttl); err != nil {
		return fmt.Errorf("%s: %w", src("ttl"), err)
	}
	if cfg.NegativeTTL, err = parseSeconds(raw.negTTL); err != nil {
		return fmt.Errorf("%s: %w", src("negative-ttl"), err)
	}
	if cfg.AddressMode, err = dnsserver.ParseAddressMode(raw.addressMode); err != nil {
		return fmt.Errorf("%s: %w", src("address-mode"), err)
	}
	if cfg.MaxUDPSize < 512 || cfg.MaxUDPSize > 65535 {
		return fmt.Errorf("%s %d: want 512 to 65535 bytes", src("max-udp-size"), cfg.MaxUDPSize)
	}
	if cfg.MaxForwards < 1 {
		return fmt.Errorf("%s %d: want at least 1", src("max-forwards"), cfg.MaxForwards)
	}
	if cfg.ReverseZones, err = dnsserver.ParseReverseZones(raw.reverseZones); err != nil {
		return fmt.Errorf("%s: %w", src("reverse-zones"), err)
	}
	if cfg.RateLimit < 0 {
		return fmt.Errorf("%s %d: want 0 (off) or more", src("rate-limit"), cfg.RateLimit)
	}
	return nil
}

// parseDocker reads how svcdns follows Docker and what it answers for
// published ports.
func (cfg *config) parseDocker(raw rawFlags, src func(string) string) error {
	if raw.advertise != "" {
		a, err := netip.ParseAddr(raw.advertise)
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%s %q: want the unicast address other hosts reach this one at", src("advertise-ip"), raw.advertise)
		}
		cfg.AdvertiseIP = a.Unmap()
	}
	if strings.ToLower(cfg.DockerHost) == none {
		cfg.NoDocker, cfg.DockerHost = true, ""
	}
	for f := range strings.SplitSeq(raw.filters, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.DockerFilters = append(cfg.DockerFilters, f)
		}
	}
	if cfg.NoDocker && len(cfg.DockerFilters) > 0 {
		return errors.New("--docker-filter with --docker-host none: there is no Docker to filter")
	}
	if cfg.Resync < time.Second {
		return fmt.Errorf("%s %v: want at least 1s", src("resync"), cfg.Resync)
	}
	return nil
}

func (cfg *config) parseLogging(raw rawFlags, src func(string) string) error {
	if err := cfg.LogLevel.UnmarshalText([]byte(raw.lvl)); err != nil {
		return fmt.Errorf("%s %q: want debug, info, warn or error", src("log-level"), raw.lvl)
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return fmt.Errorf("%s %q: want text or json", src("log-format"), cfg.LogFormat)
	}
	return nil
}

// parseUpstreams sets the upstream resolvers: the flag's list, none, or
// the nameservers of resolv.conf that are not svcdns itself.
func (cfg *config) parseUpstreams(flagValue string) error {
	switch strings.ToLower(strings.TrimSpace(flagValue)) {
	case none:
		cfg.UpstreamSource = none
		return nil
	case "":
		ups, err := upstreamsFromResolvConf(cfg.ResolvConf, cfg.DNSAddr)
		if err != nil {
			// Not fatal: svcdns still answers its zone.
			cfg.UpstreamSource = fmt.Sprintf("none (%v)", err)
			return nil
		}
		cfg.Upstreams, cfg.UpstreamSource = ups, cfg.ResolvConf
		return nil
	}
	for u := range strings.SplitSeq(flagValue, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, aerr := netip.ParseAddr(u)
			if aerr != nil {
				return fmt.Errorf("%q: want ip or ip:port ([v6]:port); host names would need DNS to resolve", u)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		if isSelf(ap, cfg.DNSAddr) {
			return fmt.Errorf("%s is svcdns's own --dns-addr %s: it would forward to itself", u, cfg.DNSAddr)
		}
		cfg.Upstreams = append(cfg.Upstreams, u)
	}
	if len(cfg.Upstreams) == 0 {
		return errors.New("empty list: give resolvers or none")
	}
	cfg.UpstreamSource = "--upstream"
	return nil
}

// upstreamsFromResolvConf reads the host's resolvers, leaving out svcdns's
// own addresses when it serves port 53 (so it never asks itself).
func upstreamsFromResolvConf(path, dnsAddr string) ([]string, error) {
	host, port, _ := net.SplitHostPort(dnsAddr)
	var self []netip.Addr
	if port == "53" {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			self = append(self, a)
		} else {
			self = localAddrs()
		}
	}
	ups, err := forward.FromResolvConf(path, self)
	if err != nil {
		return nil, err
	}
	if len(ups) == 0 {
		return nil, fmt.Errorf("%s lists no nameserver other than svcdns itself", path)
	}
	return ups, nil
}

// localAddrs are every address of this host, loopback included.
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// isSelf reports whether upstream is svcdns's own DNS listener: the same
// port, and the listener's address or, for a wildcard listener, any
// address of this host.
func isSelf(upstream netip.AddrPort, dnsAddr string) bool {
	host, port, err := net.SplitHostPort(dnsAddr)
	if err != nil || port != strconv.Itoa(int(upstream.Port())) {
		return false
	}
	up := upstream.Addr().Unmap()
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		return a.Unmap() == up
	}
	if host == "localhost" {
		return up.IsLoopback()
	}
	return slices.Contains(localAddrs(), up)
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port, such as 127.0.0.1:5353 or :53", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: host %q is not an IP address", addr, host)
		}
	}
	return nil
}

// isLoopback reports whether a listen address only accepts local clients.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// parseSeconds reads a TTL given as seconds ("5") or as a duration ("5s",
// "1m"); TTLs are whole seconds from 0 to a day.
func parseSeconds(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.Atoi(s); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("%q: want seconds (5) or a duration (5s)", s)
	}
	if d < 0 || d > 24*time.Hour || d%time.Second != 0 {
		return 0, fmt.Errorf("%q: want whole seconds from 0 to 86400", s)
	}
	return uint32(d / time.Second), nil
}

// flagGiven reports whether args set flag name (-name, --name, with or
// without =value).
func flagGiven(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
