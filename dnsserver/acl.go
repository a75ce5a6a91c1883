package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ACL is a set of client networks: fixed prefixes, and optionally the
// subnets of the Docker networks the catalog's containers are on, which
// change as containers come and go. The zero ACL matches nobody.
type ACL struct {
	Prefixes []netip.Prefix
	// DockerNetworks adds the subnets of the networks the catalog's
	// containers are on.
	DockerNetworks bool
}

// Keywords of ParseACL.
const (
	aclDocker   = "docker"   // the Docker networks svcdns sees
	aclLoopback = "loopback" // 127.0.0.0/8 and ::1
	aclLocal    = "local"    // every address of this host's interfaces
	aclPrivate  = "private"  // RFC 1918, RFC 4193 and link-local ranges
	aclAny      = "any"      // everybody
)

// ParseACL parses a comma-separated list of CIDRs, addresses and the
// keywords loopback, local, private, docker and any. local is read from the
// host's interfaces when the list is parsed: queries from the host itself
// may reach svcdns from any of them (a query to the docker0 address can be
// masqueraded to the host's primary address). An empty string is an error:
// a listener nobody may query is a mistake, not a configuration.
func ParseACL(s string) (ACL, error) {
	var acl ACL
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		switch strings.ToLower(item) {
		case "":
			continue
		case aclDocker:
			acl.DockerNetworks = true
		case aclLoopback:
			acl.Prefixes = append(acl.Prefixes, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		case aclLocal:
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				return ACL{}, fmt.Errorf("local: list this host's addresses: %w", err)
			}
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
						ip = ip.Unmap()
						acl.Prefixes = append(acl.Prefixes, netip.PrefixFrom(ip, ip.BitLen()))
					}
				}
			}
		case aclPrivate:
			for _, p := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"} {
				acl.Prefixes = append(acl.Prefixes, netip.MustParsePrefix(p))
			}
		case aclAny:
			acl.Prefixes = append(acl.Prefixes, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		default:
			p, err := netip.ParsePrefix(item)
			if err != nil {
				a, aerr := netip.ParseAddr(item)
				if aerr != nil {
					return ACL{}, fmt.Errorf("%q is neither a CIDR, an address, nor one of loopback, local, private, docker, any", item)
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			acl.Prefixes = append(acl.Prefixes, p.Masked())
		}
	}
	if len(acl.Prefixes) == 0 && !acl.DockerNetworks {
		return ACL{}, fmt.Errorf("%q allows nobody", s)
	}
	return acl, nil
}

// String lists the ACL as ParseACL reads it.
func (a ACL) String() string {
	var parts []string
	for _, p := range a.Prefixes {
		parts = append(parts, p.String())
	}
	if a.DockerNetworks {
		parts = append(parts, aclDocker)
	}
	return strings.Join(parts, ",")
}

// allows reports whether client is in the ACL; onDocker says whether the
// client is on one of the Docker networks the catalog sees.
func (a ACL) allows(client netip.Addr, onDocker bool) bool {
	if a.DockerNetworks && onDocker {
		return true
	}
	for _, p := range a.Prefixes {
		if p.Contains(client) {
			return true
		}
	}
	return false
}
