package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// rr parses one record in zone-file syntax; the test fails on a typo.
func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil || r == nil {
		t.Fatalf("bad test record %q: %v", s, err)
	}
	return r
}

// rrStrings renders records for comparison: zone syntax, order-free, with
// the SOA serial (the catalog index) zeroed and OPT left out.
func rrStrings(rrs []dns.RR) []string {
	out := []string{}
	for _, r := range rrs {
		switch x := r.(type) {
		case *dns.OPT:
			continue
		case *dns.SOA:
			c := *x
			c.Serial = 0
			r = &c
		}
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

func wantStrings(t testing.TB, lines []string) []string {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rrs = append(rrs, rr(t, l))
	}
	return rrStrings(rrs)
}

func pfx(s string) catalog.NetAddr {
	net, p, _ := strings.Cut(s, "=")
	return catalog.NetAddr{Network: net, Prefix: netip.MustParsePrefix(p)}
}

// dockerContainer stores one container with its instances, as the watcher
// would; its target is its name unless set.
func dockerContainer(t testing.TB, cat *catalog.Catalog, ctr *catalog.Container, insts ...*catalog.Instance) {
	t.Helper()
	ctr.Source, ctr.Node = catalog.SourceDocker, "n1"
	if ctr.Target == "" {
		ctr.Target = ctr.Name
	}
	if _, err := cat.PutContainer(ctr, testutil.Own(ctr, insts...)); err != nil {
		t.Fatal(err)
	}
}

func apiInstance(t testing.TB, cat *catalog.Catalog, id, svc, addr string, port uint16, proto string, tags ...string) {
	t.Helper()
	inst := testutil.APIInstance(id, svc, addr, port, func(i *catalog.Instance) { i.Protocol, i.Tags, i.Node = proto, tags, "n1" })
	if _, err := cat.RegisterInstance(inst); err != nil {
		t.Fatal(err)
	}
}

const hostIP = "192.168.1.10"

// replyTimeout bounds a test client's wait for a reply the server sends:
// a failure timeout only, long enough for a loaded CI machine under -race
// (miekg's client default, 2 s, is not).
const replyTimeout = 10 * time.Second

// seed fills a catalog with the cases of the naming table:
//
//	books-1  bridge 172.17.0.2, 8080/tcp published on 192.168.1.10:32768, tag v1
//	books-2  bridge 172.17.0.3, 8080/tcp, tag v2
//	books-3  bridge 172.17.0.4, unhealthy
//	multi    front 10.10.0.5 + fd00:10::5, back 10.20.0.5; web 80/tcp "http" and 443/tcp
//	dnsd     bridge 172.17.0.9, resolver 53/udp and 53/tcp
//	worker-1 bridge 172.17.0.10, worker with no port
//	hostnet  host network, node-exporter 9100 on 192.168.1.10
//	(no name) bridge 172.17.0.11, id 0123456789ab…, legacy 7000/tcp
//	api      b1 10.0.0.1:9000 (api-svc, tag blue), v6 fd00::5:80 (ipv6-svc)
func seed(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat := catalog.New()
	bridge := func(ip string) []catalog.NetAddr { return []catalog.NetAddr{pfx("bridge=" + ip + "/16")} }
	host := netip.MustParseAddr(hostIP)

	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("1", 64), Name: "books-1", Addrs: bridge("172.17.0.2"), HostIP: host, Passing: true},
		&catalog.Instance{Service: "books-ms", Port: 8080, Tags: []string{"v1"}, HostIP: host, HostPort: 32768, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("2", 64), Name: "books-2", Addrs: bridge("172.17.0.3"), Passing: true},
		&catalog.Instance{Service: "books-ms", Port: 8080, Tags: []string{"v2"}, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("3", 64), Name: "books-3", Addrs: bridge("172.17.0.4"), Passing: false},
		&catalog.Instance{Service: "books-ms", Port: 8080, Passing: false})
	multi := []catalog.NetAddr{pfx("back=10.20.0.5/24"), pfx("front=10.10.0.5/24"), pfx("front=fd00:10::5/64")}
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("4", 64), Name: "multi", Addrs: multi, Passing: true},
		&catalog.Instance{Service: "web", Port: 80, PortName: "http", Passing: true},
		&catalog.Instance{Service: "web", Port: 443, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("5", 64), Name: "dnsd", Addrs: bridge("172.17.0.9"), Passing: true},
		&catalog.Instance{Service: "resolver", Port: 53, Protocol: catalog.ProtoUDP, Passing: true},
		&catalog.Instance{Service: "resolver", Port: 53, Protocol: catalog.ProtoTCP, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("6", 64), Name: "worker-1", Addrs: bridge("172.17.0.10"), Passing: true},
		&catalog.Instance{Service: "worker", Port: 0, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: strings.Repeat("7", 64), Name: "hostnet", HostIP: host, Passing: true},
		&catalog.Instance{Service: "node-exporter", Port: 9100, HostIP: host, HostPort: 9100, Passing: true})
	dockerContainer(t, cat, &catalog.Container{ID: "0123456789ab" + strings.Repeat("8", 52), Name: "", Target: "0123456789ab", Addrs: bridge("172.17.0.11"), Passing: true},
		&catalog.Instance{Service: "legacy", Port: 7000, Passing: true})
	apiInstance(t, cat, "b1", "api-svc", "10.0.0.1", 9000, catalog.ProtoTCP, "blue")
	apiInstance(t, cat, "v6", "ipv6-svc", "fd00::5", 80, catalog.ProtoTCP)
	return cat
}

// testConfig is a handler configuration with everyone allowed and
// recursion for loopback.
func testConfig(cat *catalog.Catalog) Config {
	any, _ := ParseACL("any")
	lo, _ := ParseACL("loopback,docker")
	return Config{Catalog: cat, TTL: 5, NegativeTTL: 3, Allow: any, RecursionAllow: lo,
		NSAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
}

func newHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// query builds a query; edns 0 means none.
func newQuery(name string, qtype uint16, edns uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	return m
}

// fakeForwarder answers every forwarded query from a function.
type fakeForwarder struct {
	fn    func(*dns.Msg) (*dns.Msg, error)
	calls atomic.Int64
}

var _ Forwarder = (*fakeForwarder)(nil)

func (f *fakeForwarder) Forward(_ context.Context, req *dns.Msg) (*dns.Msg, error) {
	f.calls.Add(1)
	return f.fn(req)
}

var errUpstream = errors.New("upstream down")

// recorder is a dns.ResponseWriter that keeps the reply, whichever way it
// was written: a message, or the cache's packed bytes.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	wire   []byte
}

func newRecorder(client netip.Addr, tcp bool) *recorder {
	ap := netip.AddrPortFrom(client, 40000)
	if tcp {
		return &recorder{remote: net.TCPAddrFromAddrPort(ap)}
	}
	return &recorder{remote: net.UDPAddrFromAddrPort(ap)}
}

func (w *recorder) LocalAddr() net.Addr  { return w.remote }
func (w *recorder) RemoteAddr() net.Addr { return w.remote }
func (w *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
func (w *recorder) Write(b []byte) (int, error) {
	w.wire = append([]byte(nil), b...)
	w.msg = new(dns.Msg)
	return len(b), w.msg.Unpack(w.wire)
}
func (w *recorder) Close() error        { return nil }
func (w *recorder) TsigStatus() error   { return nil }
func (w *recorder) TsigTimersOnly(bool) {}
func (w *recorder) Hijack()             {}

// serveDNS runs r through ServeDNS (cache, lookup, forwarder) and
// returns the reply as the client would read it.
func serveDNS(t testing.TB, h *Handler, r *dns.Msg, client netip.Addr, tcp bool) *dns.Msg {
	t.Helper()
	resp, _ := exchange(t, h, r, client, tcp)
	return resp
}

// exchange is serveDNS that also returns the reply's bytes.
func exchange(t testing.TB, h *Handler, r *dns.Msg, client netip.Addr, tcp bool) (*dns.Msg, []byte) {
	t.Helper()
	w := newRecorder(client, tcp)
	h.ServeDNS(w, r)
	if w.msg == nil {
		t.Fatalf("no reply to %v", r.Question)
	}
	return w.msg, w.wire
}

// readLoop is the UDP read loop of h, with no socket: enough for its own
// step, fastReply.
func readLoop(h *Handler, lim Limiter) *udpServer {
	return &udpServer{fast: h, limiter: lim, met: h.met, log: h.log, maxUDP: h.maxUDP}
}

// packetReply runs a datagram from client through the read loop's step;
// ok is false when the loop would send it the slow way.
func (u *udpServer) packetReply(pkt []byte, client netip.Addr) ([]byte, bool) {
	var req request
	b, _, ok := u.fastReply(nil, &req, pkt, client)
	return b, ok
}
