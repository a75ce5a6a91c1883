package dnsserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

// Forwarder resolves names outside the zone. forward.Forwarder is one.
// Forward returns the reply for req (with req's ID and question), or an
// error, which the handler answers with SERVFAIL. It must be safe for
// concurrent use and return by ctx's deadline.
type Forwarder interface {
	Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error)
}

// Limiter limits UDP responses per client; ratelimit.Limiter is one.
// Allow charges one response to client and reports whether it is within
// the limit. It must be safe for concurrent use.
type Limiter interface {
	Allow(client netip.Addr) bool
}

// Config configures a Handler. The zero value of every field but Catalog
// is its default, except where the field says otherwise.
type Config struct {
	Catalog *catalog.Catalog
	// Zone is the domain answered from the catalog; "" = "local".
	Zone string
	// TTL is the TTL of answers, in seconds; 0 is a valid TTL (no caching).
	TTL uint32
	// NegativeTTL is the SOA MINIMUM and the TTL of the SOA in negative
	// answers, which resolvers cache NXDOMAIN and NODATA for (RFC 2308).
	NegativeTTL uint32
	// AddressMode picks the addresses answers give; the zero value is auto.
	AddressMode AddressMode
	// Node is this node's name, as its watcher writes it on its
	// containers. A Docker container of another node (a cluster peer's)
	// is answered with its address on a network that spans hosts to a
	// client on that network (as this host's networks in the catalog say),
	// else with its published host address, else not at all, whatever the
	// address mode but host (published only). "" = every container is this
	// node's.
	Node string
	// Cluster says this node shares its catalog with other nodes (Node
	// is then its name in the cluster): the SRV target of its own
	// instances is <target>.<Node>.container.<zone>, the name its peers
	// give them, so that a target is one instance on every node (a bare
	// <target>.container.<zone> is another node's own container there).
	Cluster bool
	// MaxUDPSize caps the EDNS0 size a UDP answer may fill; 0 = 1232, the
	// size that avoids IP fragmentation (DNS flag day 2020).
	MaxUDPSize int
	// Allow are the clients that may query at all; others get REFUSED. The
	// zero ACL refuses everybody, so callers must set it.
	Allow ACL
	// RecursionAllow are the clients whose names outside the zone are
	// forwarded; others get REFUSED for them.
	RecursionAllow ACL
	// Forwarder resolves names outside the zone; nil = REFUSED.
	Forwarder Forwarder
	// Ready reports whether the catalog is complete; until it is, names of
	// the zone that are not found get SERVFAIL instead of NXDOMAIN, so no
	// client caches a false negative. nil = always ready.
	Ready func() bool
	// NSAddrs are the addresses of ns.<zone>, the name server name of the
	// SOA and NS records; none = ns.<zone> answers NODATA.
	NSAddrs []netip.Addr
	// ReverseZones are subnets whose reverse zones are answered with
	// authority (reverse.go), besides those of the Docker networks in the
	// catalog; none = only those.
	ReverseZones []netip.Prefix
	// Logger gets one Debug line per failed write or forward; nil = discard.
	Logger *slog.Logger
	// Registerer receives the svcdns_dns_* metrics; nil = not registered.
	Registerer prometheus.Registerer
}

// Defaults.
const (
	DefaultZone       = "local"
	DefaultMaxUDPSize = 1232
	minUDPSize        = dns.MinMsgSize // 512: a client without EDNS0, or one advertising less (RFC 6891 6.2.5)
)

// Handler answers DNS queries from the catalog, and forwards names outside
// the zone. It is a dns.Handler, safe for concurrent use; every answer is
// computed from one catalog read and never blocks writers.
type Handler struct {
	cat          *catalog.Catalog
	zone         string // lower-case FQDN
	zoneWire     []byte // the zone in wire format, lower case
	ttl          uint32
	negTTL       uint32
	mode         AddressMode
	node         string
	cluster      bool
	maxUDP       int
	allow        ACL
	recursion    ACL
	fwd          Forwarder
	ready        func() bool
	nsAddrs      []netip.Addr
	reverseZones []netip.Prefix
	log          *slog.Logger
	met          *metrics

	gen atomic.Pointer[generation] // the answer cache of the current catalog index
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler validates cfg and returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("dnsserver: no catalog")
	}
	zone, err := NormalizeZone(cmp.Or(cfg.Zone, DefaultZone))
	if err != nil {
		return nil, err
	}
	maxUDP := cmp.Or(cfg.MaxUDPSize, DefaultMaxUDPSize)
	if maxUDP < minUDPSize || maxUDP > dns.MaxMsgSize {
		return nil, fmt.Errorf("dnsserver: max UDP size %d: want %d to %d", maxUDP, minUDPSize, dns.MaxMsgSize)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cat: cfg.Catalog, zone: zone, ttl: cfg.TTL, negTTL: cfg.NegativeTTL, mode: cfg.AddressMode, node: cfg.Node,
		cluster: cfg.Cluster && cfg.Node != "", maxUDP: maxUDP, allow: cfg.Allow, recursion: cfg.RecursionAllow, fwd: cfg.Forwarder,
		ready: cfg.Ready, log: log, met: met,
	}
	for _, p := range cfg.ReverseZones {
		if !p.IsValid() || p.Bits() == 0 || p.Addr().Is4In6() {
			return nil, fmt.Errorf("dnsserver: reverse zone %s: want a CIDR of IPv4 or IPv6 addresses, not /0", p)
		}
		h.reverseZones = append(h.reverseZones, p.Masked())
	}
	for _, a := range cfg.NSAddrs {
		h.nsAddrs = append(h.nsAddrs, a.Unmap())
	}
	h.zoneWire = make([]byte, len(zone)+1)
	n, err := dns.PackDomainName(zone, h.zoneWire, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: zone %s: %w", zone, err)
	}
	h.zoneWire = h.zoneWire[:n]
	if h.ready == nil {
		h.ready = func() bool { return true }
	}
	return h, nil
}

// NormalizeZone checks a domain and returns it lower-case and fully
// qualified.
func NormalizeZone(zone string) (string, error) {
	z := dns.Fqdn(strings.ToLower(zone))
	if _, ok := dns.IsDomainName(z); !ok || z == "." {
		return "", fmt.Errorf("domain %q is not a domain name", zone)
	}
	for _, l := range dns.SplitDomainName(z) {
		if !catalog.ValidLabel(l) {
			return "", fmt.Errorf("domain %q: label %q is not a DNS label (letters, digits, inner hyphens)", zone, l)
		}
	}
	return z, nil
}

// Zone returns the zone answered from the catalog, a lower-case FQDN.
func (h *Handler) Zone() string { return h.zone }

// QueriesByRcode returns the queries answered so far by response code
// name ("NOERROR", "NXDOMAIN", ..., "other"): svcdns_dns_queries_total
// summed over query types, read from the counters without a registry
// Gather, so it is cheap enough to sample every few seconds (the
// dashboard's query rates).
func (h *Handler) QueriesByRcode() map[string]float64 { return h.met.byRcode() }

// ServeDNS answers one query, over TCP or UDP: it reads the request from
// r once and answers it with respond. A panic while answering becomes
// SERVFAIL and a count in svcdns_dns_panics_total (recoverQuery), as in
// CoreDNS's ServeDNS.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	start := time.Now()
	client, tcp := clientOf(w.RemoteAddr())
	defer h.recoverQuery(w, r, client)
	var req request
	if reject := req.fromMsg(r, client, tcp, h.maxUDP); reject != nil {
		h.met.count(r, reject)
		if err := w.WriteMsg(reject); err != nil {
			h.log.Debug("write response", "client", client, "err", err)
		}
		return
	}
	buf := replyPool.Get().(*[]byte)
	b := h.respond(context.Background(), (*buf)[:0], &req)
	if b != nil {
		h.met.latency.Observe(time.Since(start).Seconds())
		if _, err := w.Write(b); err != nil {
			h.log.Debug("write response", "client", client, "err", err)
		}
		*buf = b[:0]
	}
	replyPool.Put(buf)
}

// recoverQuery is deferred by ServeDNS: a panic answering r is logged,
// counted and answered with SERVFAIL, and the process goes on.
func (h *Handler) recoverQuery(w dns.ResponseWriter, r *dns.Msg, client netip.Addr) {
	p := recover()
	if p == nil {
		return
	}
	h.met.panics.Inc()
	h.log.Error("panic answering a query", "client", client, "question", questionString(r), "panic", p, "stack", string(debug.Stack()))
	resp := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	h.met.count(r, resp)
	if err := w.WriteMsg(resp); err != nil {
		h.log.Debug("write response", "client", client, "err", err)
	}
}

// replyPool recycles the buffers replies are packed into.
var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, DefaultMaxUDPSize); return &b }}

// clientOf returns the client's address (unmapped) and whether it came
// over TCP.
func clientOf(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), false
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), true
	}
	return netip.Addr{}, false
}

// access is what an answer depends on about its client, decided once per
// query: the cache generation, the client's networks in it, and the ACLs.
type access struct {
	gen *generation
	// mask is the set of gen's networks the client is on; 0 in host mode,
	// where no answer depends on them.
	mask uint64
	// keyed: mask tells the client's networks apart (none past
	// maxKeyNetworks), so the cache can keep its answers.
	keyed   bool
	allowed bool // the client may query (--allow)
	ra      bool // a forwarder, and the client may recurse: RA set, names outside the zone forwarded
}

func (h *Handler) access(client netip.Addr) access {
	g := h.currentGeneration()
	mask, keyed := g.networksOf(client)
	onDocker := mask != 0 || !keyed
	a := access{gen: g, mask: mask, keyed: keyed, allowed: h.allow.allows(client, onDocker)}
	a.ra = h.fwd != nil && h.recursion.allows(client, onDocker)
	if h.mode == AddressHost {
		a.mask = 0
	}
	return a
}

// respond appends the packed reply to req to dst; nil when there is none
// to send (a reply that does not pack, logged). For what the cache keeps,
// the cache layer in front of the lookup (fromCache); for the rest, or
// what the cache's lookup found and it does not keep, reply.
func (h *Handler) respond(ctx context.Context, dst []byte, req *request) []byte {
	acc := h.access(req.client)
	var keyBuf [keyHeader + maxWireName]byte
	if key, ok := h.cacheKey(keyBuf[:0], req, &acc); ok {
		b, out, hit := h.fromCache(dst, req, &acc, key)
		if hit {
			return b
		}
		return h.finish(dst, req, h.reply(ctx, req, &acc, &out))
	}
	return h.finish(dst, req, h.reply(ctx, req, &acc, nil))
}

// reply builds the reply to req as a message: refusals, then the lookup's
// answer (out, when the cache's lookup made one; nil to look up here),
// fitted to the client, or the forwarder's.
func (h *Handler) reply(ctx context.Context, req *request, acc *access, out *found) *dns.Msg {
	if !acc.allowed {
		return h.refusal(req, false)
	}
	if req.qclass != dns.ClassINET && req.qclass != dns.ClassANY {
		return h.refusal(req, acc.ra)
	}
	if out == nil {
		f := h.lookup(req.text(), req.qtype, h.viewOf(req.client))
		out = &f
	}
	if !out.ours {
		if !acc.ra || !req.rd {
			// Not ours, and no recursion: for this client, or the client
			// did not ask for it (RFC 1035 4.3.1).
			return h.refusal(req, acc.ra)
		}
		resp := req.reply(h.maxUDP)
		resp.RecursionAvailable = true
		if ex, ok := ctx.Value(explainKey{}).(*explaining); ok {
			ex.forwarded = true // Explain says so, and sends nothing upstream
			return resp
		}
		return h.forward(ctx, req, resp)
	}
	resp := req.reply(h.maxUDP)
	resp.RecursionAvailable = acc.ra
	resp.Authoritative, resp.Rcode, resp.Ns = true, out.rcode, out.ns
	if len(out.res.answer) > 0 {
		shuffle(out.res)
		h.fit(resp, out.res, req.size, req.client)
	}
	return resp
}

// refusal is the REFUSED reply to req; ra says whether the client may
// recurse.
func (h *Handler) refusal(req *request, ra bool) *dns.Msg {
	resp := req.reply(h.maxUDP)
	resp.RecursionAvailable = ra
	resp.Rcode = dns.RcodeRefused
	return resp
}

// finish counts resp and packs it into dst.
func (h *Handler) finish(dst []byte, req *request, resp *dns.Msg) []byte {
	h.met.countRcode(req.qtype, resp.Rcode)
	b, err := packInto(dst, resp)
	if err != nil {
		h.log.Debug("pack response", "client", req.client, "question", req.text(), "err", err)
		return nil
	}
	return b
}

// packInto packs m into dst's storage (dst is empty; a larger buffer is
// made when m does not fit its capacity).
func packInto(dst []byte, m *dns.Msg) ([]byte, error) {
	return m.PackBuffer(dst[:cap(dst)])
}

// found is what a lookup found for a name: whether it is ours (a name of
// the zone or of a served reverse zone, or the reverse name of a known
// address; anything else is forwarded or refused), the rcode, a positive answer's records, and a
// negative answer's SOA.
type found struct {
	ours  bool
	rcode int
	res   result
	ns    []dns.RR
}

// lookup answers a name (as sent: the records carry its case) from the
// catalog in the view v.
func (h *Handler) lookup(name string, qtype uint16, v view) found {
	lname := lowerASCII(name)
	labels, inZone := splitRelative(lname, h.zone)
	var res result
	var err error
	soaOwner := h.zone
	if !inZone {
		var ours bool
		if res, soaOwner, ours, err = h.servedReverse(dns.Question{Name: name, Qtype: qtype}, lname); !ours {
			return found{}
		}
	}
	if qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return found{ours: true, rcode: dns.RcodeRefused}
	}
	if inZone {
		res, err = h.lookupZone(name, labels, qtype, v)
	} else if soaOwner == "" {
		return found{ours: true, res: res} // a known address outside the served zones
	}
	if errors.Is(err, errNXDomain) && !h.ready() {
		err = errNotReady
	}
	if err == nil {
		return found{ours: true, res: res}
	}
	out := found{ours: true, rcode: rcodeFor(err)}
	switch out.rcode {
	case dns.RcodeServerFailure:
		if !errors.Is(err, errNotReady) {
			h.log.Warn("zone lookup failed", "question", name, "err", err)
		}
	case dns.RcodeSuccess, dns.RcodeNameError:
		out.ns = []dns.RR{soaRR(soaOwner, h.zone, h.cat.Index(), h.negTTL, h.negTTL)}
	}
	return out
}

// lowerASCII lower-cases the ASCII letters of s only (DNS names compare
// case-insensitively in ASCII alone, RFC 4343), keeping its length; it
// returns s itself when there is nothing to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// errNotReady is a zone name not found before the catalog is complete.
var errNotReady = errors.New("catalog not synced yet")

// rcodeFor maps a lookup error to its rcode; SERVFAIL for anything that is
// not a sentinel.
func rcodeFor(err error) int {
	switch {
	case err == nil, errors.Is(err, errNoData):
		return dns.RcodeSuccess
	case errors.Is(err, errNXDomain):
		return dns.RcodeNameError
	case errors.Is(err, errRefused):
		return dns.RcodeRefused
	}
	return dns.RcodeServerFailure
}

// forward sends a name outside the zone upstream and fits the reply to the
// client; resp, SERVFAIL, when that fails.
func (h *Handler) forward(ctx context.Context, req *request, resp *dns.Msg) *dns.Msg {
	r, err := req.message()
	if err == nil {
		var up *dns.Msg
		if up, err = h.fwd.Forward(ctx, r); err == nil {
			up.RecursionAvailable = true
			up.Authoritative = false
			if !req.tcp {
				up.Truncate(req.size)
			}
			return up
		}
	}
	h.log.Debug("forward failed", "question", req.text(), "err", err)
	resp.Rcode = dns.RcodeServerFailure
	return resp
}

func questionString(r *dns.Msg) string {
	if r == nil || len(r.Question) == 0 {
		return ""
	}
	q := r.Question[0]
	return q.Name + " " + dns.TypeToString[q.Qtype]
}
