package dnsserver

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Reverse zones.
//
// svcdns is authoritative for the reverse zones of the subnets it serves:
// the Docker networks of the containers it sees, and Config.ReverseZones.
// Inside them every name gets AA: SOA and NS at a zone's apex, PTR for a
// known address, NODATA for an empty non-terminal (a name with addresses
// below it) and NXDOMAIN with the zone's SOA for anything else. Outside
// them svcdns answers only the PTR of a known address; any other reverse
// name is forwarded or refused like any other outside name.
//
// The zone of a subnet is cut at the label boundary at or below its
// prefix length: 8 bits a label in in-addr.arpa, 4 in ip6.arpa. A prefix
// on a boundary is one zone (172.17.0.0/16: 17.172.in-addr.arpa); any
// other is split into the zones of the next boundary, so svcdns never
// claims an address outside the subnet (192.168.32.0/20: 16 zones,
// 32.168.192.in-addr.arpa to 47.168.192.in-addr.arpa; 10.1.2.64/26: one
// zone per address, as RFC 2317's delegation would need CNAMEs in a
// parent zone that svcdns does not own).

// Reverse-name suffixes.
const (
	inAddrArpa = "in-addr.arpa."
	ip6Arpa    = "ip6.arpa."
)

// parseReverse reads a lower-case reverse name: the addresses it stands
// for (8 bits a label under in-addr.arpa, 4 under ip6.arpa; the suffix
// itself is the /0), and whether labels are left over to its left (past a
// full address, or a label that is not a number), which no name in a
// served zone has. ok is false for a name outside in-addr.arpa and
// ip6.arpa.
func parseReverse(name string) (p netip.Prefix, deeper, ok bool) {
	var rest string
	var v6 bool
	switch {
	case name == inAddrArpa:
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), false, true
	case name == ip6Arpa:
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), false, true
	case strings.HasSuffix(name, "."+inAddrArpa):
		rest = strings.TrimSuffix(name, "."+inAddrArpa)
	case strings.HasSuffix(name, "."+ip6Arpa):
		rest, v6 = strings.TrimSuffix(name, "."+ip6Arpa), true
	default:
		return netip.Prefix{}, false, false
	}
	labels := strings.Split(rest, ".")
	var b [16]byte
	n := 0 // labels read, from the right
	for i := len(labels) - 1; i >= 0; i-- {
		v, valid := reverseLabel(labels[i], v6)
		if !valid || (!v6 && n == 4) || (v6 && n == 32) {
			deeper = true
			break
		}
		if v6 {
			b[n/2] |= v << (4 * (1 - n%2))
		} else {
			b[n] = v
		}
		n++
	}
	if v6 {
		return netip.PrefixFrom(netip.AddrFrom16(b), 4*n), deeper, true
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), 8*n), deeper, true
}

// reverseLabel parses one label: a decimal octet without leading zeros
// (in-addr.arpa) or one hex digit (ip6.arpa).
func reverseLabel(l string, v6 bool) (byte, bool) {
	if v6 {
		if len(l) != 1 {
			return 0, false
		}
		switch c := l[0]; {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != l {
		return 0, false
	}
	return byte(n), true
}

// labelBits is the number of address bits one reverse label holds.
func labelBits(a netip.Addr) int {
	if a.Is4() {
		return 8
	}
	return 4
}

// zoneBits is the prefix length of the zones a subnet of bits is cut into:
// bits rounded up to a label boundary.
func zoneBits(a netip.Addr, bits int) int {
	step := labelBits(a)
	return (bits + step - 1) / step * step
}

// reverseName is the reverse name of a prefix on a label boundary.
func reverseName(p netip.Prefix) string {
	var sb strings.Builder
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString(inAddrArpa)
		return sb.String()
	}
	b := a.As16()
	const hex = "0123456789abcdef"
	for i := p.Bits()/4 - 1; i >= 0; i-- {
		sb.WriteByte(hex[(b[i/2]>>(4*(1-i%2)))&0xf])
		sb.WriteByte('.')
	}
	sb.WriteString(ip6Arpa)
	return sb.String()
}

// ParseReverseZones parses a comma-separated list of CIDRs for
// Config.ReverseZones; "" is none.
func ParseReverseZones(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("reverse zone %q: want a CIDR such as 10.1.0.0/16", f)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("reverse zone %q: IPv4-mapped; give the IPv4 CIDR", f)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("reverse zone %q: would claim every address", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// reverseZoneOf returns the apex of the served reverse zone that p (the
// prefix of a reverse name) lies in; the largest zone when served subnets
// overlap.
func (h *Handler) reverseZoneOf(p netip.Prefix) (netip.Prefix, bool) {
	var apex netip.Prefix
	consider := func(s netip.Prefix) {
		if s.Addr().Is4() != p.Addr().Is4() || s.Bits() == 0 {
			return
		}
		zb := zoneBits(s.Addr(), s.Bits())
		if zb > p.Bits() || !s.Contains(p.Addr()) {
			return
		}
		if !apex.IsValid() || zb < apex.Bits() {
			apex = netip.PrefixFrom(p.Addr(), zb).Masked()
		}
	}
	for _, s := range h.reverseZones {
		consider(s)
	}
	for _, s := range h.currentGeneration().prefixes {
		consider(s.Masked())
	}
	return apex, apex.IsValid()
}

// lookupReverse answers a name of the served reverse zone apex; owner is
// the name the answer records carry, p the addresses the name stands for.
func (h *Handler) lookupReverse(owner string, p, apex netip.Prefix, deeper bool, qtype uint16) (result, error) {
	if deeper {
		return result{}, errNXDomain
	}
	if p.Bits() == p.Addr().BitLen() {
		res, err := h.reverse(owner, p.Addr(), qtype)
		if err != nil || len(res.answer) > 0 {
			return res, err
		}
	}
	if p == apex {
		return h.apex(owner, qtype)
	}
	below, err := h.cat.HasPassingAddrIn(p)
	switch {
	case err != nil:
		return result{}, err
	case !below:
		return result{}, errNXDomain
	}
	return result{}, errNoData
}

// servedReverse answers q (name: its lower-case name) when it is a reverse
// name: it returns the answer, the owner of the SOA for a negative answer,
// and whether svcdns answers the name at all (false: forward or refuse).
func (h *Handler) servedReverse(q dns.Question, name string) (res result, soaOwner string, ours bool, err error) {
	p, deeper, ok := parseReverse(name)
	if !ok {
		return result{}, "", false, nil
	}
	apex, served := h.reverseZoneOf(p)
	if !served {
		// Outside the served zones: PTR of a known address only.
		if deeper || p.Bits() != p.Addr().BitLen() {
			return result{}, "", false, nil
		}
		res, err := h.reverse(q.Name, p.Addr(), q.Qtype)
		if err != nil {
			h.log.Warn("reverse lookup failed", "question", q.Name, "err", err)
		}
		return res, "", len(res.answer) > 0, nil
	}
	res, err = h.lookupReverse(q.Name, p, apex, deeper, q.Qtype)
	return res, reverseName(apex), true, err
}
