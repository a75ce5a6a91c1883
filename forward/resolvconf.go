package forward

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// FromResolvConf returns the nameservers of a resolv.conf file as upstreams
// ("ip:53", "[v6]:53"), in file order, without duplicates, and without any
// address in exclude (compared without IPv4-in-IPv6 mapping and zone).
//
// exclude is for svcdns's own addresses, so it never forwards to itself:
// the caller passes them only when svcdns serves on port 53 (resolv.conf
// cannot name another port), and passes every local address, loopback
// included, when it listens on a wildcard address.
//
// Docker's embedded resolver, 127.0.0.11, is kept: inside a container on a
// user-defined network it is the only nameserver listed, and it forwards to
// the host's resolvers. It loops only if the Docker daemon's own DNS
// settings point back at svcdns; the per-try timeout and the in-flight cap
// bound such a loop, and the fix is in the daemon's configuration.
//
// Comment lines (# or ;), trailing comments, other keywords (search,
// options, domain) and entries that are not IP addresses are ignored. A
// file that cannot be read is an error; a file with no usable nameserver
// gives an empty list and no error (the caller decides).
func FromResolvConf(path string, exclude []netip.Addr) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	skip := make(map[netip.Addr]bool, len(exclude))
	for _, a := range exclude {
		skip[a.Unmap().WithZone("")] = true
	}
	var out []string
	seen := make(map[netip.AddrPort]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if skip[a.WithZone("")] {
			continue
		}
		ap := netip.AddrPortFrom(a, 53)
		if seen[ap] {
			continue
		}
		seen[ap] = true
		out = append(out, ap.String())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read resolv.conf: %w", err)
	}
	return out, nil
}
