package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
)

// benchCatalog is the data set of the side-by-side benchmark: books-ms and
// svc0…svc999, each one API instance.
func benchCatalog(b *testing.B) *catalog.Catalog {
	cat := catalog.New()
	apiInstance(b, cat, "books-ms-1", "books-ms", "172.17.0.2", 8080, catalog.ProtoTCP)
	for i := range 1000 {
		apiInstance(b, cat, fmt.Sprintf("svc%d-1", i), fmt.Sprintf("svc%d", i), fmt.Sprintf("10.%d.%d.%d", (i>>8)&255, i&255, i%250+2), uint16(8000+i), catalog.ProtoTCP)
	}
	return cat
}

// discardWriter is a dns.ResponseWriter that packs and drops the reply, as
// the server would write it.
type discardWriter struct {
	remote net.Addr
	buf    []byte
}

func (w *discardWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *discardWriter) RemoteAddr() net.Addr { return w.remote }
func (w *discardWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	w.buf = b[:0]
	return err
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) Close() error                { return nil }
func (w *discardWriter) TsigStatus() error           { return nil }
func (w *discardWriter) TsigTimersOnly(bool)         {}
func (w *discardWriter) Hijack()                     {}

// BenchmarkServeDNS is the handler's cost per query, from an unpacked
// request to a packed reply, for the kinds of answer the server gives most.
func BenchmarkServeDNS(b *testing.B) {
	cat := benchCatalog(b)
	cfg := testConfig(cat)
	cfg.TTL = 0
	cfg.Forwarder = &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{addrRR(r.Question[0].Name, upstreamIP, 60)}
		return m, nil
	}}
	bigService(b, cat, 40)
	h := newHandler(b, cfg)
	cases := []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "svc42.service.local.", dns.TypeA},
		{"SRV", "svc42.service.local.", dns.TypeSRV},
		{"NXDOMAIN", "nope.service.local.", dns.TypeA},
		{"SRV truncated", "big.service.local.", dns.TypeSRV},
		{"forwarded", "example.com.", dns.TypeA},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{remote: net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:5353"))}
			req := newQuery(tc.qname, tc.qtype, 0)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(w, req)
			}
		})
	}
}

// BenchmarkPacketReply is the UDP read loop's cost per cached query, from
// the datagram's bytes to the reply's.
func BenchmarkPacketReply(b *testing.B) {
	h := newHandler(b, testConfig(benchCatalog(b)))
	loop := readLoop(h, nil)
	client := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name  string
		qtype uint16
		qname string
	}{{"A", dns.TypeA, "svc42.service.local."}, {"SRV", dns.TypeSRV, "svc42.service.local."}} {
		b.Run(tc.name, func(b *testing.B) {
			q := newQuery(tc.qname, tc.qtype, 1232)
			pkt, _ := q.Pack()
			serveDNS(b, h, q, client, false) // fills the cache
			dst := make([]byte, 0, DefaultMaxUDPSize)
			var req request
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := loop.fastReply(dst, &req, pkt, client); !ok {
					b.Fatal("not answered from the cache")
				}
			}
		})
	}
}
