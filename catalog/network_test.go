package catalog_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// TestReplaceNetworks: this host's networks are read by id, an unchanged
// list keeps the index, and the subnets of networks that span hosts come
// from the list, not from the addresses that claim them.
func TestReplaceNetworks(t *testing.T) {
	cat := catalog.New()
	put(t, cat, ctr(nodeA, "c1", "", "172.18.0.5/16"))
	// A peer's overlay address (SpansHosts) claiming a wide prefix adds
	// no network of its own.
	peer := ctr(nodeB, "c2", "")
	peer.Addrs = []catalog.NetAddr{{Network: "ov", NetworkID: "ov1", Prefix: pfx("10.0.9.5/8"), SpansHosts: true}}
	put(t, cat, peer)
	nets := []catalog.Network{
		{ID: "br1", Name: "bridge", Driver: "bridge", Subnets: []netip.Prefix{pfx("172.17.0.1/16")}},
		{ID: "ov1", Name: "ov", Driver: "overlay", SpansHosts: true, Subnets: []netip.Prefix{pfx("10.0.9.0/24")}},
	}
	idx, err := cat.ReplaceNetworks(nets)
	if err != nil {
		t.Fatal(err)
	}
	if nets[0].Subnets[0] != pfx("172.17.0.1/16") {
		t.Errorf("ReplaceNetworks changed the caller's subnets: %v", nets[0].Subnets)
	}
	if again, err := cat.ReplaceNetworks(nets); err != nil || again != idx {
		t.Errorf("the same networks again: index %d (%v), want %d", again, err, idx)
	}
	if n := cat.Network("ov1"); n == nil || !n.SpansHosts || !slices.Equal(n.Subnets, []netip.Prefix{pfx("10.0.9.0/24")}) {
		t.Errorf("Network(ov1) = %+v", n)
	}
	if n := cat.Network("nope"); n != nil {
		t.Errorf("Network(nope) = %+v, want nil", n)
	}
	want := []netip.Prefix{pfx("10.0.9.0/24"), pfx("172.18.0.0/16")}
	if got := cat.Networks(); !slices.Equal(got, want) {
		t.Errorf("Networks() = %v, want %v (the overlay's subnet from the list, the bridge without containers left out)", got, want)
	}
	if _, err := cat.ReplaceNetworks(nil); err != nil {
		t.Fatal(err)
	}
	if got := cat.Networks(); !slices.Equal(got, want[1:]) {
		t.Errorf("Networks() after the overlay went = %v, want %v", got, want[1:])
	}
	if _, err := cat.ReplaceNetworks([]catalog.Network{{Name: "x"}}); err == nil {
		t.Error("a network without an id was accepted")
	}
}
