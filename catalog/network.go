package catalog

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Network is a Docker network of this node's host, as the host's network
// list gives it. DNS reads it to tell whether a client is on a network
// that spans hosts (an overlay), where another node's containers have
// addresses this client reaches: such a network's id and subnets are the
// same on every host, so this node's view of it is what decides, never a
// peer's.
//
// Objects handed to the catalog belong to it afterwards and objects
// returned by reads are shared: neither may be modified.
type Network struct {
	ID     string
	Name   string
	Driver string // "bridge", "overlay", ...
	// SpansHosts: the network's scope is swarm or global.
	SpansHosts bool
	Subnets    []netip.Prefix // masked
}

// ReplaceNetworks makes the catalog's networks equal to nets, the
// networks of this node's Docker host. It changes nothing, and keeps the
// index, when they are as stored; otherwise the index rises, since an
// answer may depend on them.
func (c *Catalog) ReplaceNetworks(nets []Network) (uint64, error) {
	m := make(map[string]*Network, len(nets))
	for i := range nets {
		n := nets[i]
		n.Subnets = slices.Clone(n.Subnets)
		if n.ID == "" {
			return c.Index(), fmt.Errorf("%w network %q: empty id", ErrInvalid, n.Name)
		}
		for k, p := range n.Subnets {
			if !p.IsValid() {
				return c.Index(), fmt.Errorf("%w network %s: invalid subnet", ErrInvalid, n.ID)
			}
			n.Subnets[k] = p.Masked()
		}
		m[n.ID] = &n
	}
	return c.write(func(w *writeTxn) error {
		if maps.EqualFunc(c.snap.Load().nets, m, sameNetwork) {
			return nil
		}
		w.nets, w.changed = m, true
		return nil
	})
}

func sameNetwork(a, b *Network) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Driver == b.Driver && a.SpansHosts == b.SpansHosts && slices.Equal(a.Subnets, b.Subnets)
}

// Network returns this host's network with the id, or nil. It is a map
// read on the published snapshot: DNS calls it per answer.
func (c *Catalog) Network(id string) *Network {
	return c.snap.Load().nets[id]
}

// spanningSubnets appends the subnets of the networks that span hosts.
func spanningSubnets(dst []netip.Prefix, nets map[string]*Network) []netip.Prefix {
	for _, n := range nets {
		if n.SpansHosts {
			dst = append(dst, n.Subnets...)
		}
	}
	return dst
}
