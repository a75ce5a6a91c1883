package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultMaxInFlight = 1024

	// UDPSize is the EDNS0 payload size advertised upstream (DNS flag day
	// 2020), and the size of the OPT put back into replies.
	UDPSize = 1232

	// overloadLogEvery is the shortest gap between two "overloaded" log lines.
	overloadLogEvery = 5 * time.Second
)

var (
	// ErrOverloaded is returned at once when MaxInFlight forwards are
	// already running.
	ErrOverloaded = errors.New("forward: too many forwards in flight")
	// ErrNoAnswer is wrapped by the error Forward returns when no upstream
	// gave a usable answer in time.
	ErrNoAnswer = errors.New("no upstream answered")
)

// Config configures a Forwarder. The zero value of each field is its default.
type Config struct {
	// Upstreams are resolvers as "ip:port" ("[v6]:port"); a bare IP means
	// port 53. Host names are refused: resolving them would need DNS.
	// They are tried in this order.
	Upstreams []string
	// Timeout bounds one try (one UDP exchange, or one TCP retry); 0 = 2s.
	// A whole Forward call is bounded by Timeout*6/5.
	Timeout time.Duration
	// MaxInFlight caps concurrent Forward calls; 0 = 1024.
	MaxInFlight int
	// Logger receives the rare state lines (overload) and per-query Debug
	// lines; nil = discard.
	Logger *slog.Logger
	// Registerer receives the svcdns_forward_* metrics; nil = not registered.
	Registerer prometheus.Registerer
}

// Forwarder has dnsserver.Forwarder's method set (this package does not
// import dnsserver).
var _ interface {
	Forward(context.Context, *dns.Msg) (*dns.Msg, error)
} = (*Forwarder)(nil)

// Forwarder sends queries to upstream resolvers. It is safe for concurrent
// use; its zero value is not usable, call New.
type Forwarder struct {
	upstreams []*upstream
	timeout   time.Duration
	budget    time.Duration
	sem       chan struct{}
	log       *slog.Logger
	m         *metrics

	lastOverloadLog atomic.Int64  // unix nanos of the last overload line
	overloadSince   atomic.Uint64 // ErrOverloaded returns since that line
}

type upstream struct {
	name string // "ip:port", the metrics label
	addr netip.AddrPort
	udp  *net.UDPAddr
}

// New validates cfg and returns a Forwarder. It fails when there is no
// upstream, an upstream is not "ip[:port]", or the metrics cannot be
// registered.
func New(cfg Config) (*Forwarder, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("forward: no upstreams")
	}
	f := &Forwarder{
		timeout: cfg.Timeout,
		log:     cfg.Logger,
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	f.budget = f.timeout + f.timeout/5
	max := cfg.MaxInFlight
	if max <= 0 {
		max = DefaultMaxInFlight
	}
	f.sem = make(chan struct{}, max)
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	seen := make(map[netip.AddrPort]bool)
	for _, s := range cfg.Upstreams {
		ap, err := parseUpstream(s)
		if err != nil {
			return nil, err
		}
		if seen[ap] {
			continue
		}
		seen[ap] = true
		f.upstreams = append(f.upstreams, &upstream{
			name: ap.String(),
			addr: ap,
			udp:  net.UDPAddrFromAddrPort(ap),
		})
	}
	names := make([]string, len(f.upstreams))
	for i, u := range f.upstreams {
		names[i] = u.name
	}
	f.m = newMetrics(names)
	if err := f.m.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("forward: register metrics: %w", err)
	}
	return f, nil
}

// parseUpstream accepts "ip:port", "[v6]:port" and a bare IP (port 53).
func parseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("forward: upstream %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	return netip.AddrPort{}, fmt.Errorf("forward: upstream %q: want ip:port, such as 192.0.2.1:53 or [2001:db8::1]:53", s)
}

// Upstreams returns the upstreams in the order they are tried, as "ip:port".
func (f *Forwarder) Upstreams() []string {
	out := make([]string, len(f.upstreams))
	for i, u := range f.upstreams {
		out[i] = u.name
	}
	return out
}

// Forward resolves req's single question upstream and returns the reply with
// req's ID and question (see the package doc for what else it changes). The
// error wraps ErrOverloaded, ErrNoAnswer, or ctx's error when ctx ended
// first. req is not modified.
func (f *Forwarder) Forward(ctx context.Context, req *dns.Msg) (*dns.Msg, error) {
	if req == nil || len(req.Question) != 1 {
		return nil, errors.New("forward: query must have exactly one question")
	}
	select {
	case f.sem <- struct{}{}:
	default:
		f.overloaded()
		return nil, ErrOverloaded
	}
	defer func() { <-f.sem }()
	f.m.inFlight.Inc()
	defer f.m.inFlight.Dec()

	q := upstreamQuery(req)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, f.budget)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var (
		errs []string
		tc   *dns.Msg // a truncated UDP reply whose TCP retry failed
	)
	for i, u := range f.upstreams {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			break
		}
		per := min(f.timeout, left/time.Duration(len(f.upstreams)-i))
		resp, trunc, err := f.try(ctx, u, q, per, deadline, len(f.upstreams)-i)
		if err == nil {
			return finish(req, resp), nil
		}
		if trunc != nil && tc == nil {
			tc = trunc
		}
		errs = append(errs, u.name+": "+err.Error())
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("forward %s: %w", qstring(req), err)
	}
	if d, ok := parent.Deadline(); ok && !time.Now().Before(d) {
		// The caller's deadline ended the last try; its timer may not
		// have fired yet.
		return nil, fmt.Errorf("forward %s: %w", qstring(req), context.DeadlineExceeded)
	}
	if tc != nil {
		// A truncated answer beats SERVFAIL: the client sees TC and can
		// come back over TCP.
		return finish(req, tc), nil
	}
	f.m.failed.Inc()
	err := fmt.Errorf("forward %s: %w: %s", qstring(req), ErrNoAnswer, strings.Join(errs, "; "))
	f.log.Debug("forward failed", "question", qstring(req), "err", err)
	return nil, err
}

// try asks one upstream: UDP, then TCP when the UDP reply is truncated. It
// returns a usable reply, or an error and possibly the truncated UDP reply.
func (f *Forwarder) try(ctx context.Context, u *upstream, q *dns.Msg, per time.Duration, deadline time.Time, left int) (resp, trunc *dns.Msg, err error) {
	defer func() {
		if r := result(resp, trunc, err); r != "" {
			f.m.responses.WithLabelValues(u.name, r).Inc()
		}
	}()
	start := time.Now()
	resp, truncated, err := f.exchange(ctx, u, q, "udp", earliest(start.Add(per), deadline))
	if err == nil && truncated {
		if resp != nil && rcodeKind(resp.Rcode) == "" {
			trunc = resp // a fallback if TCP fails
		}
		tcpStart := time.Now()
		per = min(f.timeout, time.Until(deadline)/time.Duration(left))
		resp, _, err = f.exchange(ctx, u, q, "tcp", earliest(tcpStart.Add(per), deadline))
		if err != nil {
			return nil, trunc, err
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if kind := rcodeKind(resp.Rcode); kind != "" {
		f.m.errors.WithLabelValues(u.name, kind).Inc()
		return nil, nil, rcodeError{resp.Rcode}
	}
	return resp, nil, nil
}

// rcodeKind returns the error kind of an rcode that means "ask the next
// upstream", or "" for an answer to pass on.
func rcodeKind(rcode int) string {
	switch rcode {
	case dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeYXDomain:
		return ""
	case dns.RcodeServerFailure:
		return kindServfail
	case dns.RcodeRefused:
		return kindRefused
	default:
		return kindRcode
	}
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

// upstreamQuery builds the message sent upstream: req's header flags and
// question, no other records, and our own OPT (1232 bytes, the client's DO).
// The ID is set per try.
func upstreamQuery(req *dns.Msg) *dns.Msg {
	q := new(dns.Msg)
	q.Opcode = req.Opcode
	q.RecursionDesired = req.RecursionDesired
	q.CheckingDisabled = req.CheckingDisabled
	q.AuthenticatedData = req.AuthenticatedData
	q.Question = []dns.Question{req.Question[0]}
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(UDPSize, do)
	return q
}

// finish turns an accepted upstream reply into the reply for req.
func finish(req, resp *dns.Msg) *dns.Msg {
	resp.Id = req.Id
	resp.Question = []dns.Question{req.Question[0]}
	extra := resp.Extra[:0]
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	resp.Extra = extra
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(UDPSize, opt.Do())
	}
	resp.Compress = true
	return resp
}

// overloaded counts an ErrOverloaded and logs at most one line per
// overloadLogEvery, with how many were refused since the previous line.
func (f *Forwarder) overloaded() {
	f.m.overloaded.Inc()
	f.overloadSince.Add(1)
	now := time.Now().UnixNano()
	last := f.lastOverloadLog.Load()
	if now-last < int64(overloadLogEvery) || !f.lastOverloadLog.CompareAndSwap(last, now) {
		return
	}
	n := f.overloadSince.Swap(0)
	f.log.Warn("forwarding overloaded, refusing queries",
		"max_in_flight", cap(f.sem), "refused", n)
}

func qstring(m *dns.Msg) string {
	q := m.Question[0]
	return q.Name + " " + dns.Type(q.Qtype).String()
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
