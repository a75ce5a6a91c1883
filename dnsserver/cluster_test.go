package dnsserver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// Names of a cluster: another node's containers under <name>.<node>, and
// the nodes' own addresses, as the cluster package writes them.
func TestClusterNames(t *testing.T) {
	cat := catalog.New()
	dockerContainer(t, cat, &catalog.Container{ID: "local1", Name: "books-1", Addrs: []catalog.NetAddr{pfx("bridge=172.17.0.2/16")}, Passing: true},
		&catalog.Instance{Service: "books-ms", Port: 8080, Passing: true})
	peerHost := netip.MustParseAddr("192.0.2.20")
	peer := func(id, name string, published bool) {
		c := &catalog.Container{ID: "n2/" + id, Name: name, Target: name + ".n2", Node: "n2", Source: catalog.SourceDocker, Passing: true}
		in := &catalog.Instance{Service: "books-ms", Port: 8080, Passing: true}
		if published {
			c.HostIP, in.HostIP, in.HostPort = peerHost, peerHost, 32001
		}
		if _, err := cat.PutContainer(c, testutil.Own(c, in)); err != nil {
			t.Fatal(err)
		}
	}
	apiInstance(t, cat, "api-1", "api", "10.9.0.1", 80, catalog.ProtoTCP)
	peer("aaa", "books-1", true)  // the same container name as the local one
	peer("bbb", "books-2", false) // unpublished on n2's bridge
	if _, errs := cat.Apply([]catalog.Change{
		{Node: &catalog.Node{Name: "n1", Addr: netip.MustParseAddr("192.0.2.10")}},
		{Node: &catalog.Node{Name: "n2", Addr: peerHost}},
	}); errs != nil {
		t.Fatal(errs)
	}
	cfg := testConfig(cat)
	cfg.Node, cfg.Cluster = "n1", true
	h := newHandler(t, cfg)
	cases := []dnsCase{
		// Each target names its node, the local one's too: a bare
		// books-1.container.local asked of n2 would be n2's own books-1.
		{name: "SRV: a local and a peer's instance of one name, told apart", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeSRV,
			answer: []string{"books-ms.service.local. 5 IN SRV 1 1 32001 books-1.n2.container.local.", "books-ms.service.local. 5 IN SRV 1 1 8080 books-1.n1.container.local."},
			extra:  []string{"books-1.n2.container.local. 5 IN A 192.0.2.20", "books-1.n1.container.local. 5 IN A 172.17.0.2"}},
		{name: "SRV: a local API instance's target names the node", client: loopback, qname: "api.service.local.", qtype: dns.TypeSRV,
			answer: []string{"api.service.local. 5 IN SRV 1 1 80 api-1.n1.container.local."},
			extra:  []string{"api-1.n1.container.local. 5 IN A 10.9.0.1"}},
		{name: "A: the peer's published address, not its bridge", client: loopback, qname: "books-ms.service.local.", qtype: dns.TypeA,
			answer: []string{"books-ms.service.local. 5 IN A 172.17.0.2", "books-ms.service.local. 5 IN A 192.0.2.20"}},
		{name: "a peer's container by name and node", client: loopback, qname: "books-1.n2.container.local.", qtype: dns.TypeA,
			answer: []string{"books-1.n2.container.local. 5 IN A 192.0.2.20"}},
		{name: "the local container keeps its short name", client: loopback, qname: "books-1.container.local.", qtype: dns.TypeA,
			answer: []string{"books-1.container.local. 5 IN A 172.17.0.2"}},
		// Its peers answer it as books-1.n1 in their SRV: a client
		// that asks another node for the target's address gets it.
		{name: "the local container under its name in the peers' SRV", client: loopback, qname: "books-1.n1.container.local.", qtype: dns.TypeA,
			answer: []string{"books-1.n1.container.local. 5 IN A 172.17.0.2"}},
		{name: "an API instance under its name in the peers' SRV", client: loopback, qname: "api-1.n1.container.local.", qtype: dns.TypeA,
			answer: []string{"api-1.n1.container.local. 5 IN A 10.9.0.1"}},
		{name: "another node's name for a local container is not this node's", client: loopback, qname: "books-1.n3.container.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "an unpublished container of another host is not answered", client: loopback, qname: "books-2.n2.container.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "a node's address", client: loopback, qname: "N2.node.local.", qtype: dns.TypeA,
			answer: []string{"N2.node.local. 5 IN A 192.0.2.20"}},
		{name: "a node has no AAAA", client: loopback, qname: "n1.node.local.", qtype: dns.TypeAAAA, ns: []string{soa}},
		{name: "an unknown node", client: loopback, qname: "n3.node.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "the node branch", client: loopback, qname: "node.local.", qtype: dns.TypeA, ns: []string{soa}},
		{name: "four labels under container", client: loopback, qname: "a.books-1.n2.container.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa}},
		// PTR gives the name SRV targets give, which every node
		// answers with the same instance.
		{name: "PTR: a local container's address names the node", client: loopback, qname: "2.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.17.172.in-addr.arpa. 5 IN PTR books-1.n1.container.local."}},
		{name: "PTR: a local API instance's address names the node", client: loopback, qname: "1.0.9.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.9.10.in-addr.arpa. 5 IN PTR api-1.n1.container.local."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := serveDNS(t, h, newQuery(tc.qname, tc.qtype, 0), tc.client, false)
			checkResponse(t, tc, resp)
		})
	}

	// A node that is in no cluster keeps the bare targets, and knows no
	// name under its own.
	cfg.Cluster = false
	alone := newHandler(t, cfg)
	for _, tc := range []dnsCase{
		{name: "alone: SRV", client: loopback, qname: "api.service.local.", qtype: dns.TypeSRV,
			answer: []string{"api.service.local. 5 IN SRV 1 1 80 api-1.container.local."},
			extra:  []string{"api-1.container.local. 5 IN A 10.9.0.1"}},
		{name: "alone: no name under its own", client: loopback, qname: "api-1.n1.container.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soa}},
		{name: "alone: PTR of a container", client: loopback, qname: "2.0.17.172.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.17.172.in-addr.arpa. 5 IN PTR books-1.container.local."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkResponse(t, tc, serveDNS(t, alone, newQuery(tc.qname, tc.qtype, 0), tc.client, false))
		})
	}
}

// overlayCatalog holds node n2's containers as the cluster writes them on
// n1, whose host knows the overlay "ov" (10.0.9.0/24, fd00:9::/64):
//
//	web-1  ov 10.0.9.5 + fd00:9::5, 8080/tcp published on 192.0.2.20:32001
//	web-2  ov 10.0.9.6 (its owner claims a /8), unpublished
//	web-3  on n2's bridge only (no address travels), unpublished
//	web-4  on an overlay n1's host does not know, unpublished
func overlayCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat := catalog.New()
	if _, err := cat.ReplaceNetworks([]catalog.Network{
		{ID: "ov1", Name: "ov", Driver: "overlay", SpansHosts: true, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24"), netip.MustParsePrefix("fd00:9::/64")}},
		{ID: "br1", Name: "bridge", Driver: "bridge", Subnets: []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}},
	}); err != nil {
		t.Fatal(err)
	}
	ov := func(netID string, addrs ...string) []catalog.NetAddr {
		var out []catalog.NetAddr
		for _, a := range addrs {
			out = append(out, catalog.NetAddr{Network: "ov", NetworkID: netID, Prefix: netip.MustParsePrefix(a), SpansHosts: true})
		}
		return out
	}
	peerHost := netip.MustParseAddr("192.0.2.20")
	peer := func(name string, addrs []catalog.NetAddr, published bool) {
		c := &catalog.Container{ID: "n2/" + name, Name: name, Target: name + ".n2", Node: "n2", Source: catalog.SourceDocker, Addrs: addrs, Passing: true}
		in := &catalog.Instance{Service: "web", Port: 8080, Passing: true}
		if published {
			c.HostIP, in.HostIP, in.HostPort = peerHost, peerHost, 32001
		}
		if _, err := cat.PutContainer(c, testutil.Own(c, in)); err != nil {
			t.Fatal(err)
		}
	}
	peer("web-1", ov("ov1", "10.0.9.5/24", "fd00:9::5/64"), true)
	peer("web-2", ov("ov1", "10.0.9.6/8"), false)
	peer("web-3", nil, false)
	peer("web-4", ov("ov9", "10.0.42.7/24"), false)
	return cat
}

// Another host's containers: a client on an overlay they share gets their
// address there and the container port; any other client the published
// host address and port; an unpublished one on its host's bridge is
// answered to nobody.
func TestOverlayPeers(t *testing.T) {
	cat := overlayCatalog(t)
	onOverlay, elsewhere := netip.MustParseAddr("10.0.9.100"), netip.MustParseAddr("172.17.0.9")
	inClaim := netip.MustParseAddr("10.1.1.1")  // inside web-2's claimed /8, outside the overlay
	onOther := netip.MustParseAddr("10.0.42.9") // on web-4's overlay, which this host does not know
	nx := []string{soa}
	cases := []struct {
		mode AddressMode
		dnsCase
	}{
		{AddressAuto, dnsCase{name: "A, client on the overlay: the overlay addresses", client: onOverlay, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 10.0.9.5", "web.service.local. 5 IN A 10.0.9.6"}}},
		{AddressAuto, dnsCase{name: "AAAA, client on the overlay: the other family on the same network", client: onOverlay, qname: "web.service.local.", qtype: dns.TypeAAAA,
			answer: []string{"web.service.local. 5 IN AAAA fd00:9::5"}}},
		{AddressAuto, dnsCase{name: "SRV, client on the overlay: container port", client: onOverlay, qname: "web.service.local.", qtype: dns.TypeSRV,
			answer: []string{"web.service.local. 5 IN SRV 1 1 8080 web-1.n2.container.local.", "web.service.local. 5 IN SRV 1 1 8080 web-2.n2.container.local."},
			extra:  []string{"web-1.n2.container.local. 5 IN A 10.0.9.5", "web-1.n2.container.local. 5 IN AAAA fd00:9::5", "web-2.n2.container.local. 5 IN A 10.0.9.6"}}},
		{AddressAuto, dnsCase{name: "A, client elsewhere: the published address only", client: elsewhere, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 192.0.2.20"}}},
		{AddressAuto, dnsCase{name: "SRV, client elsewhere: the published port", client: elsewhere, qname: "web.service.local.", qtype: dns.TypeSRV,
			answer: []string{"web.service.local. 5 IN SRV 1 1 32001 web-1.n2.container.local."},
			extra:  []string{"web-1.n2.container.local. 5 IN A 192.0.2.20"}}},
		{AddressAuto, dnsCase{name: "a peer's prefix decides nothing", client: inClaim, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 192.0.2.20"}}},
		{AddressAuto, dnsCase{name: "an overlay this host does not know", client: onOther, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 192.0.2.20"}}},
		{AddressAuto, dnsCase{name: "container name, client on the overlay", client: onOverlay, qname: "web-2.n2.container.local.", qtype: dns.TypeA,
			answer: []string{"web-2.n2.container.local. 5 IN A 10.0.9.6"}}},
		{AddressAuto, dnsCase{name: "container name, unpublished, client elsewhere", client: loopback, qname: "web-2.n2.container.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nx}},
		{AddressAuto, dnsCase{name: "unpublished on its host's bridge: not even to the overlay", client: onOverlay, qname: "web-3.n2.container.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: nx}},
		{AddressContainer, dnsCase{name: "container mode, client elsewhere: no overlay address leaks", client: loopback, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 192.0.2.20"}}},
		{AddressContainer, dnsCase{name: "container mode, client on the overlay", client: onOverlay, qname: "web-1.n2.container.local.", qtype: dns.TypeA,
			answer: []string{"web-1.n2.container.local. 5 IN A 10.0.9.5"}}},
		{AddressHost, dnsCase{name: "host mode: published only, even on the overlay", client: onOverlay, qname: "web.service.local.", qtype: dns.TypeA,
			answer: []string{"web.service.local. 5 IN A 192.0.2.20"}}},
	}
	handlers := map[AddressMode]*Handler{}
	for _, m := range []AddressMode{AddressAuto, AddressContainer, AddressHost} {
		cfg := testConfig(cat)
		cfg.Node, cfg.AddressMode = "n1", m
		handlers[m] = newHandler(t, cfg) // one per mode: its answer cache sees every client in turn
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := serveDNS(t, handlers[tc.mode], newQuery(tc.qname, tc.qtype, 0), tc.client, false)
			checkResponse(t, tc.dnsCase, resp)
		})
	}
}

// Explain states the rule for another host's containers.
func TestExplainOverlayPeers(t *testing.T) {
	cfg := testConfig(overlayCatalog(t))
	cfg.Node = "n1"
	h := newHandler(t, cfg)
	tests := []struct {
		client string
		want   []string // per instance in id order: "container rule", and words of its reason
	}{
		{"10.0.9.100", []string{"web-1 shared-overlay shared overlay network", "web-2 shared-overlay network ov", "web-3 unreachable publishes no port", "web-4 unreachable"}},
		{"172.17.0.9", []string{"web-1 published node n2", "web-2 unreachable", "web-3 unreachable", "web-4 unreachable"}},
	}
	for _, tc := range tests {
		ex, err := h.Explain(t.Context(), "web.service.local", "SRV", netip.MustParseAddr(tc.client))
		if err != nil {
			t.Fatal(err)
		}
		if len(ex.Instances) != len(tc.want) {
			t.Fatalf("client %s: %d instances, want %d", tc.client, len(ex.Instances), len(tc.want))
		}
		for i, ir := range ex.Instances {
			name, rule, words := splitWant(tc.want[i])
			if ir.Instance.ContainerName != name || ir.Rule != rule || !strings.Contains(ir.Reason, words) {
				t.Errorf("client %s: %s %s %q, want %s %s and %q", tc.client, ir.Instance.ContainerName, ir.Rule, ir.Reason, name, rule, words)
			}
		}
	}
}

func splitWant(s string) (name, rule, words string) {
	f := strings.SplitN(s, " ", 3)
	for len(f) < 3 {
		f = append(f, "")
	}
	return f[0], f[1], f[2]
}
