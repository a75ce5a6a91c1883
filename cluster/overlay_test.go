package cluster

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/dnsserver"
	"github.com/svcdns/svcdns/internal/testutil"
)

// TestOverlayAcrossNodes: two nodes on loopback. n1's containers on an
// attachable overlay reach n2 with their overlay address, and n2's DNS
// answers it to a client on the overlay as n2's host knows it, the
// published address to anyone else, and an unpublished container on n1's
// bridge to nobody.
func TestOverlayAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	const ovID = "q7x9k2m4n6p8r0t1v3w5y7z9a"
	ov := catalog.Network{ID: ovID, Name: "ov", Driver: "overlay", SpansHosts: true, Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.9.0/24")}}
	for _, n := range nodes {
		if _, err := n.cat.ReplaceNetworks([]catalog.Network{ov}); err != nil {
			t.Fatal(err)
		}
	}
	host := netip.MustParseAddr("192.0.2.10")
	put := func(name string, published bool) {
		c := &catalog.Container{ID: "c-" + name, Name: name, Target: name, Node: "n1", Source: catalog.SourceDocker, Passing: true,
			Addrs: []catalog.NetAddr{{Network: "bridge", NetworkID: "b1", Prefix: netip.MustParsePrefix("172.17.0.2/16")}}}
		if name == "web-1" {
			c.Addrs = append(c.Addrs, catalog.NetAddr{Network: "ov", NetworkID: ovID, Prefix: netip.MustParsePrefix("10.0.9.5/24"), SpansHosts: true})
		}
		in := &catalog.Instance{Service: "web", Port: 8080, Passing: true}
		if published {
			c.HostIP, in.HostIP, in.HostPort = host, host, 32001
		}
		if _, err := n1.cat.PutContainer(c, testutil.Own(c, in)); err != nil {
			t.Fatal(err)
		}
	}
	put("web-1", true)
	put("web-3", false)
	eventually(t, "n2 holds n1's two containers", func() bool { return len(serviceOn(t, n2, "web")) == 2 })
	// What n2 holds: the overlay address only, marked, with the network's id.
	ctrs, err := n2.cat.ContainersByTarget("web-1.n1")
	if err != nil || len(ctrs) != 1 {
		t.Fatalf("web-1.n1 on n2: %v %v", ctrs, err)
	}
	if want := []catalog.NetAddr{{Network: "ov", NetworkID: ovID, Prefix: netip.MustParsePrefix("10.0.9.5/24"), SpansHosts: true}}; !slices.Equal(ctrs[0].Addrs, want) {
		t.Errorf("web-1's addresses on n2: %+v, want %+v", ctrs[0].Addrs, want)
	}

	any, _ := dnsserver.ParseACL("any")
	h, err := dnsserver.NewHandler(dnsserver.Config{Catalog: n2.cat, Node: "n2", TTL: 5, Allow: any, RecursionAllow: any})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		client, qtype string
		want          []string // the answer's records, sorted
		rules         []string // per instance in id order
	}{
		{"10.0.9.100", "A", []string{"web.service.local.\t5\tIN\tA\t10.0.9.5"}, []string{"shared-overlay", "unreachable"}},
		{"10.0.9.100", "SRV", []string{"web.service.local.\t5\tIN\tSRV\t1 1 8080 web-1.n1.container.local."}, []string{"shared-overlay", "unreachable"}},
		{"172.17.0.9", "A", []string{"web.service.local.\t5\tIN\tA\t192.0.2.10"}, []string{"published", "unreachable"}},
		{"172.17.0.9", "SRV", []string{"web.service.local.\t5\tIN\tSRV\t1 1 32001 web-1.n1.container.local."}, []string{"published", "unreachable"}},
	}
	for _, tc := range tests {
		ex, err := h.Explain(t.Context(), "web.service.local", tc.qtype, netip.MustParseAddr(tc.client))
		if err != nil {
			t.Fatal(err)
		}
		var got, rules []string
		for _, rr := range ex.Reply.Answer {
			got = append(got, rr.String())
		}
		slices.Sort(got)
		for _, ir := range ex.Instances {
			rules = append(rules, ir.Rule)
		}
		if !slices.Equal(got, tc.want) || !slices.Equal(rules, tc.rules) {
			t.Errorf("%s %s from %s: %q rules %v, want %q rules %v", "web", tc.qtype, tc.client, got, rules, tc.want, tc.rules)
		}
	}
}
