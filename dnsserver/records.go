package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Tiny pure builders: each returns one record, owner and TTL given.

func hdr(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// addrRR is an A record for an IPv4 address, an AAAA record otherwise.
func addrRR(name string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		b := a.As4()
		return &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: b[:]}
	}
	b := a.As16()
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: b[:]}
}

// srvRR has priority 1 and weight 1 for every instance, as Consul's: all
// instances are equal, clients pick among them at random.
func srvRR(name, target string, port uint16, ttl uint32) dns.RR {
	return &dns.SRV{Hdr: hdr(name, dns.TypeSRV, ttl), Priority: 1, Weight: 1, Port: port, Target: target}
}

func ptrRR(name, target string, ttl uint32) dns.RR {
	return &dns.PTR{Hdr: hdr(name, dns.TypePTR, ttl), Ptr: target}
}

func nsRR(name, target string, ttl uint32) dns.RR {
	return &dns.NS{Hdr: hdr(name, dns.TypeNS, ttl), Ns: target}
}

// SOA timers. Nobody transfers the zone (AXFR is refused), so only the
// MINIMUM, the negative-caching TTL of RFC 2308, matters to clients.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

// soaRR is the zone's SOA. Its serial is the catalog index, so it moves
// whenever an answer may have.
func soaRR(name, zone string, serial uint64, ttl, minimum uint32) dns.RR {
	return &dns.SOA{
		Hdr:     hdr(name, dns.TypeSOA, ttl),
		Ns:      labelNS + "." + zone,
		Mbox:    "hostmaster." + zone,
		Serial:  uint32(serial),
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  minimum,
	}
}
