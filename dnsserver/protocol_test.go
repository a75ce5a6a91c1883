package dnsserver

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rawExchange sends one raw message over network ("udp" or "tcp", framed)
// and returns the reply's bytes.
func rawExchange(t *testing.T, network, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, replyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(replyTimeout))
	if network == "tcp" {
		pkt = append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)
	}
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	if network == "udp" {
		b := make([]byte, 65535)
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("%s: no reply: %v", network, err)
		}
		return b[:n]
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("%s: no reply: %v", network, err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("%s: half a reply: %v", network, err)
	}
	return b
}

// The protocol's edges (issue 11: RFC 1035 4.1.1 and 4.3.1, RFC 6891),
// as raw packets to a running server over UDP and TCP: the same reply on
// both, byte for byte, each answer counted under its own rcode.
func TestProtocolEdges(t *testing.T) {
	cfg := testConfig(seed(t))
	fwd := &fakeForwarder{fn: func(r *dns.Msg) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{addrRR(r.Question[0].Name, upstreamIP, 60)}
		return m, nil
	}}
	cfg.Forwarder = fwd
	reg := prometheus.NewPedanticRegistry()
	cfg.Registerer = reg
	h := newHandler(t, cfg)
	addr := serve(t, h)

	query := func(name string, opt bool, edit func(*dns.Msg)) []byte {
		m := newQuery(name, dns.TypeA, 0)
		m.Id = 0x4242
		if opt {
			m.SetEdns0(1232, false)
		}
		if edit != nil {
			edit(m)
		}
		return pack(t, m)
	}
	withOPT := func(owner string, options ...dns.EDNS0) func(*dns.Msg) {
		return func(m *dns.Msg) {
			o := &dns.OPT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeOPT}, Option: options}
			o.SetUDPSize(1232)
			m.Extra = append(m.Extra, o)
		}
	}
	// An option whose length claims 40 bytes more than the OPT holds.
	overrun := query("books-ms.service.local.", false, withOPT(".", &dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "abcd"}))
	binary.BigEndian.PutUint16(overrun[len(overrun)-4:], 42) // code, length, then 2 bytes of NSID

	cases := []struct {
		name   string
		pkt    []byte
		rcode  int
		opt    bool // the reply has an OPT
		answer bool // the reply has answer records
	}{
		{"two OPTs: FORMERR (RFC 6891 6.1.1)", query("books-ms.service.local.", true, withOPT(".")), dns.RcodeFormatError, true, false},
		{"OPT owner not the root: FORMERR", query("books-ms.service.local.", false, withOPT("books-ms.service.local.")), dns.RcodeFormatError, true, false},
		{"option past the OPT data: FORMERR", overrun, dns.RcodeFormatError, true, false},
		{"NOTIFY with an OPT: NOTIMP with an OPT (RFC 6891 7)", query("local.", true, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, true, false},
		{"NOTIFY without OPT: NOTIMP without", query("local.", false, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, false, false},
		{"two questions, RD and AD set: FORMERR, RD copied, AD clear", query("books-ms.service.local.", true, func(m *dns.Msg) {
			m.AuthenticatedData = true
			m.Question = append(m.Question, m.Question[0])
		}), dns.RcodeFormatError, true, false},
		{"two questions, RD clear: FORMERR, RD clear", query("books-ms.service.local.", false, func(m *dns.Msg) {
			m.RecursionDesired = false
			m.Question = append(m.Question, m.Question[0])
		}), dns.RcodeFormatError, false, false},
		{"EDNS version 1: BADVERS", query("books-ms.service.local.", true, func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, true, false},
		{"out of zone with RD set: forwarded", query("example.com.", false, nil), dns.RcodeSuccess, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.Id = 0x4242
			_ = q.Unpack(tc.pkt) // the header is enough where the rest is malformed
			q.Opcode = int(tc.pkt[2]>>3) & 0xF
			q.RecursionDesired = tc.pkt[2]&1 != 0
			var udp []byte
			for _, network := range []string{"udp", "tcp"} {
				b := rawExchange(t, network, addr, tc.pkt)
				r := new(dns.Msg)
				if err := r.Unpack(b); err != nil {
					t.Fatalf("%s: reply does not unpack: %v", network, err)
				}
				if r.Id != 0x4242 || !r.Response || r.Opcode != q.Opcode || r.RecursionDesired != q.RecursionDesired || r.AuthenticatedData {
					t.Errorf("%s: header ID %#x QR=%v opcode %d RD=%v AD=%v, want the query's ID, opcode and RD, QR set, AD clear",
						network, r.Id, r.Response, r.Opcode, r.RecursionDesired, r.AuthenticatedData)
				}
				if r.Rcode != tc.rcode || (r.IsEdns0() != nil) != tc.opt || (len(r.Answer) > 0) != tc.answer {
					t.Errorf("%s: %s, OPT %v, %d answers; want %s, OPT %v, answers %v",
						network, rcodeName(r.Rcode), r.IsEdns0() != nil, len(r.Answer), rcodeName(tc.rcode), tc.opt, tc.answer)
				}
				if network == "udp" {
					udp = b
				} else if !bytes.Equal(udp, b) {
					t.Errorf("UDP and TCP replies differ:\nudp %x\ntcp %x", udp, b)
				}
			}
		})
	}

	t.Run("out of zone with RD clear: REFUSED at once, not forwarded (RFC 1035 4.3.1)", func(t *testing.T) {
		calls := fwd.calls.Load()
		for _, network := range []string{"udp", "tcp"} {
			pkt := query("example.com.", true, func(m *dns.Msg) { m.RecursionDesired = false })
			r := new(dns.Msg)
			if err := r.Unpack(rawExchange(t, network, addr, pkt)); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeRefused || r.RecursionDesired || len(r.Answer) != 0 || r.IsEdns0() == nil {
				t.Errorf("%s: %s RD=%v, %d answers, OPT %v; want REFUSED, RD clear, no answer, an OPT", network, rcodeName(r.Rcode), r.RecursionDesired, len(r.Answer), r.IsEdns0() != nil)
			}
		}
		if fwd.calls.Load() != calls {
			t.Errorf("%d queries without RD forwarded", fwd.calls.Load()-calls)
		}
	})

	// Counted: every reply above under its own name, on both transports.
	for rcode, want := range map[string]float64{"FORMERR": 2 * 5, "NOTIMP": 2 * 2, "BADVERS": 2, "REFUSED": 2, "NOERROR": 2} {
		if got := testutil.ToFloat64(h.met.queries.WithLabelValues("A", rcode)); got != want {
			t.Errorf(`svcdns_dns_queries_total{type="A",rcode=%q} = %v, want %v`, rcode, got, want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "BADSIG" && m.GetCounter().GetValue() > 0 {
					t.Errorf("%s counts under rcode BADSIG", mf.GetName())
				}
			}
		}
	}
}
