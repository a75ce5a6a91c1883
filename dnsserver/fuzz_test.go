package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// FuzzServeDNS feeds raw packets to the handler as the server would: what
// the accept filter passes and unpacks is answered over UDP and over TCP.
// It checks that nothing panics (a panic would be turned into SERVFAIL and
// counted, so the counter is checked), that a UDP reply never exceeds the
// size the client advertised, and that the question comes back exactly.
func FuzzServeDNS(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("books-ms.service.local.", dns.TypeA, 0),
		newQuery("BoOkS-Ms.SeRvIcE.LoCaL.", dns.TypeSRV, 1232),
		newQuery("_books-ms._tcp.service.local.", dns.TypeSRV, 4096),
		newQuery("_8080._tcp.books-ms.service.local.", dns.TypeSRV, 0),
		newQuery("big.service.local.", dns.TypeSRV, 0),
		newQuery("big.service.local.", dns.TypeA, 700),
		newQuery("books-1.container.local.", dns.TypeAAAA, 0),
		newQuery("2.0.17.172.in-addr.arpa.", dns.TypePTR, 0),
		newQuery("local.", dns.TypeANY, 0),
		newQuery("local.", dns.TypeAXFR, 0),
		newQuery("example.com.", dns.TypeA, 0),
		newQuery("_v1.service.local.", dns.TypeSRV, 0),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 0xff, 0xff, 0, 1, 0, 0, 0, 0})

	cat := seed(f)
	bigService(f, cat, 60)
	cfg := testConfig(cat)
	cfg.Forwarder = &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		for range 40 {
			m.Answer = append(m.Answer, addrRR(r.Question[0].Name, upstreamIP, 60))
		}
		return m, nil
	}}
	h := newHandler(f, cfg)
	loop := readLoop(h, nil)

	f.Fuzz(func(t *testing.T, wire []byte) {
		if len(wire) < 12 {
			return
		}
		req := new(dns.Msg)
		if err := req.Unpack(wire); err != nil {
			return // the server answers FORMERR or nothing, before the handler
		}
		dh := dns.Header{
			Id: req.Id, Bits: uint16(wire[2])<<8 | uint16(wire[3]),
			Qdcount: uint16(len(req.Question)), Ancount: uint16(len(req.Answer)),
			Nscount: uint16(len(req.Ns)), Arcount: uint16(len(req.Extra)),
		}
		if acceptQuery(dh) != dns.MsgAccept {
			return
		}
		for _, tcp := range []bool{false, true} {
			before := testutil.ToFloat64(h.met.panics)
			w := newRecorder(netip.MustParseAddr("127.0.0.1"), tcp)
			h.ServeDNS(w, req.Copy())
			if testutil.ToFloat64(h.met.panics) != before {
				t.Fatalf("handler panicked on %x", wire)
			}
			if w.msg == nil {
				t.Fatalf("no reply, or one that does not unpack, to %v", req)
			}
			resp, out := w.msg, w.wire
			if !tcp {
				limit := minUDPSize
				if opt := req.IsEdns0(); opt != nil {
					limit = max(minUDPSize, min(int(opt.UDPSize()), h.maxUDP))
				}
				if len(out) > limit {
					t.Fatalf("UDP reply of %d bytes over the client's %d", len(out), limit)
				}
			}
			if resp.Rcode != dns.RcodeFormatError && (len(resp.Question) != 1 || resp.Question[0] != req.Question[0]) {
				t.Fatalf("question %v, want %v echoed exactly", resp.Question, req.Question)
			}
		}
		// The packet path, once the server's path has filled the cache:
		// whatever it answers is a well-formed reply to this very query,
		// within the client's size.
		serveDNS(t, h, req.Copy(), netip.MustParseAddr("127.0.0.1"), false)
		out, ok := loop.packetReply(wire, netip.MustParseAddr("127.0.0.1"))
		if !ok {
			return
		}
		fast := new(dns.Msg)
		if err := fast.Unpack(out); err != nil {
			t.Fatalf("packet-path reply does not unpack: %v", err)
		}
		var pr request
		pr.fromPacket(wire, netip.MustParseAddr("127.0.0.1"), h.maxUDP)
		qend := headerLen + pr.wireLen + 4
		if fast.Id != req.Id || !fast.Response || len(out) > pr.size || string(out[headerLen:qend]) != string(wire[headerLen:qend]) {
			t.Fatalf("packet-path reply %v (%d bytes) to %v", fast, len(out), req)
		}
	})
}
