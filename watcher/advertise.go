package watcher

import (
	"errors"
	"net"
	"net/netip"
	"strings"
)

// detectAdvertiseIP guesses the address other hosts reach this one at, for
// ports published on 0.0.0.0 and for host-network containers:
//
//  1. the source address the kernel would use to reach a private address
//     (10.255.255.255): connecting a UDP socket picks a route and sends
//     nothing;
//  2. failing that, the first IPv4 address of an interface that is up, not
//     loopback and not a Docker bridge or veth.
//
// Hosts with several uplinks should set --advertise-ip instead.
func detectAdvertiseIP() (netip.Addr, error) {
	if conn, err := net.Dial("udp4", "10.255.255.255:9"); err == nil {
		ap, perr := netip.ParseAddrPort(conn.LocalAddr().String())
		_ = conn.Close()
		if a := ap.Addr().Unmap(); perr == nil && usableHostAddr(a) {
			return a, nil
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 ||
			strings.HasPrefix(ifc.Name, "docker") || strings.HasPrefix(ifc.Name, "br-") || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() && usableHostAddr(ip.Unmap()) {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, errors.New("no route to a private address and no non-loopback IPv4 interface")
}

func usableHostAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !a.IsUnspecified() && !a.IsLinkLocalUnicast() && !a.IsMulticast()
}
