package dnsserver

import (
	"log/slog"
	"net"
	"time"

	"github.com/miekg/dns"
)

// What a message gets before it is answered, decided from its bytes by
// one rule for UDP and TCP (vet): nothing for what is not even a header or
// is a response; NOTIMP for an opcode other than QUERY; FORMERR for
// anything that is not one question with at most an OPT (and a TSIG, and
// for IXFR an SOA), a message cut short, two OPTs (RFC 6891 6.1.1), an OPT
// whose owner is not the root, or an EDNS option that runs past its OPT.
// The refusal (rejection) has the same bytes on both transports.

// verdict is vet's decision on a message.
type verdict struct {
	ignore bool   // no reply: not a header, or a response (answering could loop or amplify)
	rcode  int    // FORMERR or NOTIMP; NOERROR: answer it
	opt    bool   // it carries an OPT, so the refusal carries one (RFC 6891 7)
	qtype  uint16 // its first question's type, for the metrics; 0 when it has none
}

// vet reads a message's header and records from its bytes, before
// miekg/dns unpacks it.
func vet(p []byte) verdict {
	if len(p) < headerLen {
		return verdict{ignore: true}
	}
	dh := dns.Header{
		Id: uint16(p[0])<<8 | uint16(p[1]), Bits: uint16(p[2])<<8 | uint16(p[3]),
		Qdcount: uint16(p[4])<<8 | uint16(p[5]), Ancount: uint16(p[6])<<8 | uint16(p[7]),
		Nscount: uint16(p[8])<<8 | uint16(p[9]), Arcount: uint16(p[10])<<8 | uint16(p[11]),
	}
	s := scan(p)
	v := verdict{opt: s.opts > 0, qtype: s.qtype}
	switch acceptQuery(dh) {
	case dns.MsgIgnore:
		return verdict{ignore: true}
	case dns.MsgRejectNotImplemented:
		v.rcode = dns.RcodeNotImplemented
	case dns.MsgReject:
		v.rcode = dns.RcodeFormatError
	default:
		if !s.complete || s.opts > 1 || s.badOPT {
			v.rcode = dns.RcodeFormatError
		}
	}
	return v
}

// scanned is what scan found in a message.
type scanned struct {
	complete bool   // every record its header counts is there
	qtype    uint16 // the first question's type
	opts     int    // OPT records
	badOPT   bool   // an OPT whose owner is not the root, or whose options run past its data
}

// scan walks a message's questions and records. miekg/dns's Unpack stops
// quietly where the data ends, so a cut-off query (a question without its
// type and class, an OPT promised but missing) would otherwise be answered
// as if the missing parts were zero. Bytes after the last record are
// tolerated, as by most servers.
func scan(p []byte) (s scanned) {
	if len(p) < headerLen {
		return s
	}
	count := func(i int) int { return int(p[i])<<8 | int(p[i+1]) }
	off := headerLen
	for i := range count(4) {
		_, o, err := dns.UnpackDomainName(p, off)
		if err != nil || o+4 > len(p) {
			return s
		}
		if i == 0 {
			s.qtype = uint16(p[o])<<8 | uint16(p[o+1])
		}
		off = o + 4
	}
	// Each record needs at least 11 bytes, so the loop ends with the data
	// whatever the counts claim.
	for range count(6) + count(8) + count(10) {
		name, o, err := dns.UnpackDomainName(p, off)
		if err != nil || o+10 > len(p) {
			return s
		}
		rdata := o + 10
		off = rdata + (int(p[o+8])<<8 | int(p[o+9]))
		if off > len(p) {
			return s
		}
		if uint16(p[o])<<8|uint16(p[o+1]) == dns.TypeOPT {
			s.opts++
			s.badOPT = s.badOPT || name != "." || !optionsFit(p[rdata:off])
		}
	}
	s.complete = true
	return s
}

// optionsFit reports whether an OPT's data is a whole number of options
// (code, length, value), none running past its end.
func optionsFit(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		n := 4 + (int(b[2])<<8 | int(b[3]))
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// completeMessage reports whether p holds every record its header counts.
func completeMessage(p []byte) bool { return scan(p).complete }

// rejection is the reply to a message refused before it is answered,
// vet's or request.fromMsg's: the query's ID and opcode, QR, RD copied
// (RFC 1035 4.1.1) and CD as in every reply, AA, TC, RA and AD clear, no
// question (it may not be one), and an OPT saying what we accept when the
// query had one (RFC 6891 7).
func rejection(id uint16, opcode int, rd, cd bool, opt bool, maxUDP, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id, m.Response, m.Opcode, m.Rcode = id, true, opcode, rcode
	m.RecursionDesired, m.CheckingDisabled = rd, cd
	if opt {
		m.SetEdns0(uint16(maxUDP), false)
	}
	return m
}

// rejectPacket is the rejection of a packet by vet's verdict v, packed.
func rejectPacket(p []byte, v verdict, maxUDP int) []byte {
	m := rejection(uint16(p[0])<<8|uint16(p[1]), int(p[2]>>3)&0xF, p[2]&0x01 != 0, p[3]&0x10 != 0, v.opt, maxUDP, v.rcode)
	b, err := m.Pack()
	if err != nil {
		return nil // cannot happen: a header and an OPT
	}
	return b
}

// strictReader applies vet to TCP: a message it refuses is answered here,
// on the connection, with the same rejection as over UDP, and handed on
// as a bare response header, which the accept filter ignores (it still
// counts towards the connection's queries). So miekg/dns's own refusals,
// whose header differs, never happen.
type strictReader struct {
	dns.Reader
	side         serverSide
	writeTimeout time.Duration
}

func (r strictReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	b, err := r.Reader.ReadTCP(conn, timeout)
	if err != nil || len(b) < headerLen {
		return b, err
	}
	v := vet(b)
	if v.ignore {
		return b, nil
	}
	if v.rcode == dns.RcodeSuccess {
		if new(dns.Msg).Unpack(b) == nil {
			return b, nil
		}
		v.rcode = dns.RcodeFormatError
	}
	r.side.met.countRcode(v.qtype, v.rcode)
	if reply := rejectPacket(b, v, r.side.maxUDP); reply != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(r.writeTimeout))
		if _, err := conn.Write(append([]byte{byte(len(reply) >> 8), byte(len(reply))}, reply...)); err != nil {
			r.side.log.Debug("write response", "client", conn.RemoteAddr(), "err", err)
		}
	}
	b = b[:headerLen]
	b[2] |= 0x80 // QR: ignored by the accept filter
	return b, nil
}

// serverSide is what the servers take from their handler: its metrics,
// logger and UDP size cap when it is a *Handler, else unregistered metrics,
// no log and the default cap.
type serverSide struct {
	fast   *Handler // nil when the handler is not a *Handler
	met    *metrics
	log    *slog.Logger
	maxUDP int
}

func sideOf(h dns.Handler) serverSide {
	if fast, ok := h.(*Handler); ok {
		return serverSide{fast: fast, met: fast.met, log: fast.log, maxUDP: fast.maxUDP}
	}
	met, _ := newMetrics(nil)
	return serverSide{met: met, log: slog.New(slog.DiscardHandler), maxUDP: DefaultMaxUDPSize}
}
