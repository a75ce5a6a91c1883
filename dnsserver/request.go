package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// request is one query as the answer needs it, read once: by the UDP read
// loop from the datagram's bytes (fromPacket), or by ServeDNS from the
// unpacked message (fromMsg). Everything after works from it.
type request struct {
	id     uint16
	rd, cd bool // copied into the reply
	qtype  uint16
	qclass uint16
	edns   uint8 // ednsNone, ednsOPT or ednsDO
	// size is the largest reply the client reads: a whole message over
	// TCP, else 512 without EDNS0 or its EDNS0 size capped by MaxUDPSize.
	size   int
	tcp    bool
	client netip.Addr
	// wire holds the question's name in wire format, its case as sent, in
	// its first wireLen bytes: the request owns it, so it outlives the
	// buffer it was read from.
	wire    [maxWireName]byte
	wireLen int
	// name is the question's name as text, as sent; "" for a packet until
	// the slow path needs it (see text).
	name string
	// msg is the query unpacked: ServeDNS's message, or for a packet
	// nothing until forwarding needs it (see message), from pkt.
	msg *dns.Msg
	pkt []byte
}

// EDNS0 state of a request: what the reply's OPT depends on.
const (
	ednsNone uint8 = iota // no OPT: no OPT in the reply
	ednsOPT               // an OPT of version 0
	ednsDO                // an OPT with the DO bit, which the reply copies (RFC 3225)
)

const (
	// maxWireName is the longest name in wire format (RFC 1035 3.1).
	maxWireName = 255
	// headerLen is the length of a DNS header; the question starts after it.
	headerLen = 12
)

// wireName is the question's name in wire format, its case as sent.
func (req *request) wireName() []byte { return req.wire[:req.wireLen] }

// text returns the question's name as text, unpacking it once for a packet.
func (req *request) text() string {
	if req.name == "" {
		req.name, _, _ = dns.UnpackDomainName(req.wireName(), 0)
	}
	return req.name
}

// message returns the query unpacked, for what needs all of it (the
// forwarder); for a packet it is unpacked here, once.
func (req *request) message() (*dns.Msg, error) {
	if req.msg == nil {
		m := new(dns.Msg)
		if err := m.Unpack(req.pkt); err != nil {
			return nil, err
		}
		req.msg = m
	}
	return req.msg, nil
}

// replySize is the largest reply a client reads: a whole message over TCP;
// over UDP 512 bytes without EDNS0, else its EDNS0 size, capped by maxUDP
// and never below 512 (RFC 6891 6.2.5).
func replySize(tcp bool, edns uint8, advertised, maxUDP int) int {
	switch {
	case tcp:
		return dns.MaxMsgSize
	case edns == ednsNone:
		return minUDPSize
	}
	return max(minUDPSize, min(advertised, maxUDP))
}

// fromPacket reads a query that can be answered straight from its bytes:
// QR clear, opcode QUERY, one question of class IN with an uncompressed
// name, nothing else but at most one well-formed OPT of version 0 (owner
// the root, whole options), and nothing after it. It reports false for anything else, which miekg/dns unpacks and
// ServeDNS reads. The request does not keep p.
func (req *request) fromPacket(p []byte, client netip.Addr, maxUDP int) bool {
	if len(p) < headerLen+5 ||
		p[2]&0xf8 != 0 || // QR, opcode
		p[4] != 0 || p[5] != 1 || p[6] != 0 || p[7] != 0 || p[8] != 0 || p[9] != 0 || p[10] != 0 || p[11] > 1 {
		return false
	}
	off := headerLen
	for {
		if off >= len(p) {
			return false
		}
		l := int(p[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l >= len(p) || off+1+l-headerLen > maxWireName {
			return false // a pointer, a reserved label type, or past the end
		}
		off += 1 + l
	}
	if off+4 > len(p) || p[off+2] != 0 || p[off+3] != byte(dns.ClassINET) {
		return false
	}
	req.wireLen = copy(req.wire[:], p[headerLen:off])
	req.qtype = uint16(p[off])<<8 | uint16(p[off+1])
	req.qclass = dns.ClassINET
	req.id = uint16(p[0])<<8 | uint16(p[1])
	req.rd = p[2]&0x01 != 0
	req.cd = p[3]&0x10 != 0
	req.tcp, req.client, req.name, req.msg, req.pkt = false, client, "", nil, nil
	off += 4
	req.edns = ednsNone
	advertised := 0
	if p[11] == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = extended rcode,
		// version, flags; then the options.
		if off+11 > len(p) || p[off] != 0 || p[off+1] != 0 || p[off+2] != byte(dns.TypeOPT) || p[off+6] != 0 {
			return false
		}
		advertised = int(p[off+3])<<8 | int(p[off+4])
		req.edns = ednsOPT
		if p[off+7]&0x80 != 0 {
			req.edns = ednsDO
		}
		rdata := off + 11
		off = rdata + (int(p[off+9])<<8 | int(p[off+10]))
		if off > len(p) || !optionsFit(p[rdata:off]) {
			return false
		}
	}
	if off != len(p) {
		return false
	}
	req.size = replySize(false, req.edns, advertised, maxUDP)
	return true
}

// fromMsg reads r, which came from client. A message that is not one
// query it can answer gets its reply instead: NOTIMP for a response or
// another opcode; FORMERR (rejection, as vet's) for other than one
// question, two OPTs or one whose owner is not the root; BADVERS (with an
// OPT) for an EDNS version above 0 (RFC 6891 6.1.3).
func (req *request) fromMsg(r *dns.Msg, client netip.Addr, tcp bool, maxUDP int) (reject *dns.Msg) {
	opts, rootOPT := 0, true
	for _, rr := range r.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opts++
			rootOPT = rootOPT && rr.Header().Name == "."
		}
	}
	refuse := func(rcode int) *dns.Msg {
		return rejection(r.Id, r.Opcode, r.RecursionDesired, r.CheckingDisabled, opts > 0, maxUDP, rcode)
	}
	if r.Response || r.Opcode != dns.OpcodeQuery {
		return refuse(dns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 || opts > 1 || !rootOPT {
		return refuse(dns.RcodeFormatError)
	}
	q := r.Question[0]
	n, err := dns.PackDomainName(q.Name, req.wire[:], 0, nil, false)
	if err != nil {
		return refuse(dns.RcodeFormatError) // not a name: only a message built by hand has one
	}
	*req = request{
		id: r.Id, rd: r.RecursionDesired, cd: r.CheckingDisabled, qtype: q.Qtype, qclass: q.Qclass,
		tcp: tcp, client: client, wire: req.wire, wireLen: n, name: q.Name, msg: r,
	}
	advertised := 0
	if opt := r.IsEdns0(); opt != nil {
		req.edns = ednsOPT
		if opt.Do() {
			req.edns = ednsDO
		}
		if opt.Version() != 0 {
			resp := req.reply(maxUDP)
			resp.Rcode = dns.RcodeBadVers
			return resp
		}
		advertised = int(opt.UDPSize())
	}
	req.size = replySize(tcp, req.edns, advertised, maxUDP)
	return nil
}

// reply is the start of every reply to req, as SetReply makes it: the
// ID, the question as sent, RD and CD copied; with an OPT saying what we
// accept (maxUDP) and copying DO when the query had one.
func (req *request) reply(maxUDP int) *dns.Msg {
	resp := &dns.Msg{Question: []dns.Question{{Name: req.text(), Qtype: req.qtype, Qclass: req.qclass}}}
	resp.Id, resp.Response, resp.Opcode = req.id, true, dns.OpcodeQuery
	resp.RecursionDesired, resp.CheckingDisabled = req.rd, req.cd
	if req.edns != ednsNone {
		resp.SetEdns0(uint16(maxUDP), req.edns == ednsDO)
	}
	return resp
}

// appendSlip appends the reply to a client over the rate limit: the
// query's header and question with QR and TC set, no records, no OPT.
// It costs a spoofed victim less than the answer would, and moves a real
// client to TCP, which is not limited.
func (req *request) appendSlip(dst []byte) []byte {
	flags := byte(0x80 | 0x02) // QR, TC
	if req.rd {
		flags |= 0x01
	}
	var cd byte
	if req.cd {
		cd = 0x10
	}
	dst = append(dst, byte(req.id>>8), byte(req.id), flags, cd, 0, 1, 0, 0, 0, 0, 0, 0)
	dst = append(dst, req.wireName()...)
	return append(dst, byte(req.qtype>>8), byte(req.qtype), byte(req.qclass>>8), byte(req.qclass))
}

// patchReply turns a packed reply to the lower-case question with ID 0
// and RD, RA, CD clear (what the cache keeps) into the reply to req: its
// ID, its flags, its question's case. The name is the same length, so
// records that point at the question by compression follow its case.
func (req *request) patchReply(b []byte, ra bool) {
	b[0], b[1] = byte(req.id>>8), byte(req.id)
	if req.rd {
		b[2] |= 0x01
	}
	if ra {
		b[3] |= 0x80
	}
	if req.cd {
		b[3] |= 0x10
	}
	copy(b[headerLen:], req.wireName())
}
