package dnsserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

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
	// RateLimiter limits UDP responses per client network; over the limit
	// a client gets an empty reply with TC set (a "slip"), which sends a
	// real client to TCP. nil = no limit.
	RateLimiter Limiter
	// NSAddrs are the addresses of ns.<zone>, the name server name of the
	// SOA and NS records; none = ns.<zone> answers NODATA.
	NSAddrs []netip.Addr
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
	cat       *catalog.Catalog
	zone      string // lower-case FQDN
	zoneWire  []byte // the zone in wire format
	ttl       uint32
	negTTL    uint32
	mode      AddressMode
	maxUDP    int
	allow     ACL
	recursion ACL
	fwd       Forwarder
	ready     func() bool
	limiter   Limiter
	nsAddrs   []netip.Addr
	log       *slog.Logger
	met       *metrics

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
		cat: cfg.Catalog, zone: zone, ttl: cfg.TTL, negTTL: cfg.NegativeTTL, mode: cfg.AddressMode,
		maxUDP: maxUDP, allow: cfg.Allow, recursion: cfg.RecursionAllow, fwd: cfg.Forwarder,
		ready: cfg.Ready, limiter: cfg.RateLimiter, log: log, met: met,
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

// ServeDNS answers one query. Nothing in it ends the process: a panic
// becomes SERVFAIL and a count.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	client, tcp := clientOf(w.RemoteAddr())
	if uw, ok := w.(*udpWriter); ok && uw.rateChecked {
		// The read loop charged this packet to the limiter already.
	} else if !tcp && h.limiter != nil && !h.limiter.Allow(client) {
		h.write(w, client, h.slip(r))
		return
	}
	if b := h.cachedReply(r, client, tcp); b != nil {
		if _, err := w.Write(*b); err != nil {
			h.log.Debug("write response", "client", client, "err", err)
		}
		replyPool.Put(b)
		return
	}
	h.write(w, client, h.answer(context.Background(), r, client, tcp))
}

func (h *Handler) write(w dns.ResponseWriter, client netip.Addr, resp *dns.Msg) {
	if err := w.WriteMsg(resp); err != nil {
		h.log.Debug("write response", "client", client, "err", err)
	}
}

// slip is the reply to a client over the rate limit: empty, with TC set.
// It costs a spoofed victim less than the answer would, and moves a real
// client to TCP, which is not limited.
func (h *Handler) slip(r *dns.Msg) *dns.Msg {
	h.met.rateLimited.Inc()
	resp := new(dns.Msg)
	if len(r.Question) != 1 {
		return resp.SetRcodeFormatError(r)
	}
	resp.SetReply(r)
	resp.Truncated = true
	h.met.count(r, resp)
	return resp
}

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

// answer computes the reply to r from client, without the cache; it never
// returns nil.
func (h *Handler) answer(ctx context.Context, r *dns.Msg, client netip.Addr, tcp bool) (resp *dns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			h.met.panics.Inc()
			h.log.Error("panic answering a query", "client", client, "question", questionString(r), "panic", p)
			resp = new(dns.Msg)
			resp.SetRcode(r, dns.RcodeServerFailure)
		}
	}()
	resp = h.respond(ctx, r, client, tcp)
	h.met.count(r, resp)
	return resp
}

func (h *Handler) respond(ctx context.Context, r *dns.Msg, client netip.Addr, tcp bool) *dns.Msg {
	resp := new(dns.Msg)
	if r.Response || r.Opcode != dns.OpcodeQuery {
		return resp.SetRcode(r, dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return resp.SetRcodeFormatError(r)
	}
	resp.SetReply(r)
	opt := r.IsEdns0()
	size := minUDPSize
	if opt != nil {
		// The reply's OPT says what we accept, and copies DO (RFC 3225).
		resp.SetEdns0(uint16(h.maxUDP), opt.Do())
		if opt.Version() != 0 {
			resp.Rcode = dns.RcodeBadVers // RFC 6891 6.1.3
			return resp
		}
		size = max(minUDPSize, min(int(opt.UDPSize()), h.maxUDP))
	}
	q := r.Question[0]
	nets := h.networks()
	onDocker := nets.contains(client)
	if !h.allow.allows(client, onDocker) {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	recursion := h.fwd != nil && h.recursion.allows(client, onDocker)
	resp.RecursionAvailable = recursion
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	res, ours := h.local(resp, q, view{mode: h.mode, client: client}, true)
	if !ours {
		if !recursion {
			resp.Rcode = dns.RcodeRefused
			return resp
		}
		return h.forward(ctx, r, resp, size, tcp)
	}
	if resp.Rcode == dns.RcodeSuccess && len(res.answer) > 0 {
		shuffle(res)
		h.fit(resp, res, size, tcp)
	}
	return resp
}

// local answers q if it is a name of the zone, or the reverse name of a
// known address: the rcode, the AA bit and the SOA of a negative answer go
// into resp, the positive answer is returned for the caller to order and
// fit. It reports false for any other name, which is forwarded or refused.
// ready says whether to honour Config.Ready (the cache never stores what
// depends on it).
func (h *Handler) local(resp *dns.Msg, q dns.Question, v view, ready bool) (result, bool) {
	name := lowerASCII(q.Name)
	labels, inZone := splitRelative(name, h.zone)
	if !inZone {
		addr, ok := reverseAddr(name)
		if !ok {
			return result{}, false
		}
		res, err := h.reverse(q.Name, addr, q.Qtype)
		if err != nil {
			h.log.Warn("reverse lookup failed", "question", q.Name, "err", err)
		}
		if len(res.answer) == 0 {
			return result{}, false
		}
		resp.Authoritative = true
		return res, true
	}
	resp.Authoritative = true
	if q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR {
		resp.Rcode = dns.RcodeRefused
		return result{}, true
	}
	res, err := h.lookupZone(q.Name, labels, q.Qtype, v)
	if errors.Is(err, errNXDomain) && ready && !h.ready() {
		err = errNotReady
	}
	if err == nil {
		return res, true
	}
	resp.Rcode = rcodeFor(err)
	switch resp.Rcode {
	case dns.RcodeServerFailure:
		if !errors.Is(err, errNotReady) {
			h.log.Warn("zone lookup failed", "question", q.Name, "err", err)
		}
	case dns.RcodeSuccess, dns.RcodeNameError:
		resp.Ns = []dns.RR{soaRR(h.zone, h.zone, h.cat.Index(), h.negTTL, h.negTTL)}
	}
	return result{}, true
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

// shuffle puts the answers, each with its glue, in random order: clients
// that take the first record spread over all instances.
func shuffle(res result) {
	rand.Shuffle(len(res.answer), func(i, j int) {
		res.answer[i], res.answer[j] = res.answer[j], res.answer[i]
		if res.glue != nil {
			res.glue[i], res.glue[j] = res.glue[j], res.glue[i]
		}
	})
}

// fit puts as many answers, each with its glue, into resp as fit the
// client's size: everything over TCP, whole records only over UDP, with TC
// set when any answer had to be left out.
func (h *Handler) fit(resp *dns.Msg, res result, size int, tcp bool) {
	resp.Compress = true
	opt := resp.IsEdns0()
	res.assemble(resp, len(res.answer), opt)
	if tcp {
		size = dns.MaxMsgSize
	}
	if resp.Len() <= size {
		return
	}
	// The largest n whose message fits: lengths grow with n, so a binary
	// search finds it in log2(len) packings.
	lo, hi := 0, len(res.answer) // fits(lo) is assumed; hi does not fit
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		res.assemble(resp, mid, opt)
		if resp.Len() <= size {
			lo = mid
		} else {
			hi = mid
		}
	}
	res.assemble(resp, lo, opt)
	resp.Truncated = true
	h.met.truncated.Inc()
}

// assemble puts the first n answers into resp, with their glue, each
// record once, and opt (if not nil) last.
func (res result) assemble(resp *dns.Msg, n int, opt *dns.OPT) {
	resp.Answer = res.answer[:n]
	resp.Extra = resp.Extra[:0]
	if res.glue != nil {
		for _, g := range res.glue[:n] {
			for _, rr := range g {
				if !containsRR(resp.Extra, rr) {
					resp.Extra = append(resp.Extra, rr)
				}
			}
		}
	}
	if opt != nil {
		resp.Extra = append(resp.Extra, opt)
	}
}

func containsRR(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}

// forward sends a name outside the zone upstream and fits the reply to the
// client.
func (h *Handler) forward(ctx context.Context, r, resp *dns.Msg, size int, tcp bool) *dns.Msg {
	up, err := h.fwd.Forward(ctx, r)
	if err != nil {
		h.log.Debug("forward failed", "question", questionString(r), "err", err)
		resp.Rcode = dns.RcodeServerFailure
		return resp
	}
	up.RecursionAvailable = true
	up.Authoritative = false
	if !tcp {
		up.Truncate(size)
	}
	return up
}

func questionString(r *dns.Msg) string {
	if r == nil || len(r.Question) == 0 {
		return ""
	}
	q := r.Question[0]
	return q.Name + " " + dns.TypeToString[q.Qtype]
}
