package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
)

// AddressMode decides which of an instance's addresses an answer gives.
type AddressMode int

const (
	// AddressAuto gives a client that shares a network with the instance
	// the instance's address on that network, and any other client the
	// published host address, or the container address where nothing is
	// published.
	AddressAuto AddressMode = iota
	// AddressContainer always gives container addresses (the host address
	// only for host-network containers, which have no other).
	AddressContainer
	// AddressHost always gives published host addresses and leaves out
	// instances that publish nothing, as Registrator does by default.
	AddressHost
)

// ParseAddressMode parses "auto", "container" or "host".
func ParseAddressMode(s string) (AddressMode, error) {
	switch s {
	case "auto", "":
		return AddressAuto, nil
	case "container":
		return AddressContainer, nil
	case "host":
		return AddressHost, nil
	}
	return 0, fmt.Errorf("address mode %q: want auto, container or host", s)
}

func (m AddressMode) String() string {
	switch m {
	case AddressContainer:
		return "container"
	case AddressHost:
		return "host"
	}
	return "auto"
}

// view is what an answer depends on besides the catalog: the client, and
// the address mode; node and cat tell another node's containers apart
// and this host's networks that span hosts.
type view struct {
	mode   AddressMode
	client netip.Addr
	node   string           // this node's name; "" = every instance is this node's
	cat    *catalog.Catalog // this host's networks (catalog.Network)
}

// viewOf is the view of client.
func (h *Handler) viewOf(client netip.Addr) view {
	return view{mode: h.mode, client: client, node: h.node, cat: h.cat}
}

// peer reports whether a Docker container of node is another host's: its
// addresses on networks local to that host are not in the catalog, and
// the others are on networks that span hosts, reachable only from them.
func (v view) peer(node string, src catalog.Source) bool {
	return v.node != "" && src == catalog.SourceDocker && node != v.node
}

// overlay appends the addresses of addrs on a network that spans hosts
// and that the client is on, as this host knows the network: it has one
// with the same id, spanning hosts, a subnet of which holds the client's
// address and one the container's (an overlay's subnets are the same on
// every host; the prefix a peer sent decides nothing). It returns the
// first such network too, nil for none.
func (v view) overlay(dst []netip.Addr, addrs []catalog.NetAddr) ([]netip.Addr, *catalog.Network) {
	var first *catalog.Network
	for _, a := range addrs {
		if !a.SpansHosts || a.NetworkID == "" {
			continue
		}
		n := v.cat.Network(a.NetworkID)
		if n == nil || !n.SpansHosts || !inSubnets(n.Subnets, v.client) || !inSubnets(n.Subnets, a.Addr()) {
			continue
		}
		if first == nil {
			first = n
		}
		dst = append(dst, a.Addr())
	}
	return dst, first
}

func inSubnets(subnets []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	return slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// peerEndpoint is endpoint for another host's container: its address on a
// network that spans hosts, with the container port, for a client on that
// network; else its published host address and port; else nothing (an
// unpublished container on its host's bridge cannot be reached from here).
func (v view) peerEndpoint(dst []netip.Addr, inst *catalog.Instance) (_ []netip.Addr, port uint16, why rule) {
	n := len(dst)
	if v.mode != AddressHost && v.cat != nil {
		if dst, _ = v.overlay(dst, inst.Addrs); len(dst) > n {
			return dst, inst.Port, ruleOverlay
		}
	}
	if inst.Published() {
		return append(dst, inst.HostIP), inst.HostPort, rulePublished
	}
	return dst, 0, ruleNone
}

// shared appends the addresses of addrs on the networks the client is on.
func (v view) shared(dst []netip.Addr, addrs []catalog.NetAddr) []netip.Addr {
	n := len(dst)
	for _, a := range addrs {
		if a.Contains(v.client) {
			dst = append(dst, a.Addr())
		}
	}
	if len(dst) == n {
		return dst
	}
	// The other address family on the same networks: a client on a
	// dual-stack network gets both A and AAAA.
	for _, a := range addrs {
		if !a.Contains(v.client) && sameNetwork(a, addrs, v.client) {
			dst = append(dst, a.Addr())
		}
	}
	return dst
}

// sameNetwork reports whether a is on a network (by name) of which another
// address contains client.
func sameNetwork(a catalog.NetAddr, addrs []catalog.NetAddr, client netip.Addr) bool {
	if a.Network == "" {
		return false
	}
	for _, b := range addrs {
		if b.Network == a.Network && b.Contains(client) {
			return true
		}
	}
	return false
}

// first appends the addresses on the first network (the watcher sorts
// networks by name), both families.
func first(dst []netip.Addr, addrs []catalog.NetAddr) []netip.Addr {
	if len(addrs) == 0 {
		return dst
	}
	for _, a := range addrs {
		if a.Network == addrs[0].Network {
			dst = append(dst, a.Addr())
		}
	}
	return dst
}

// rule is why an instance's addresses are in an answer, or why not:
// endpoint decides, and Explain reports it.
type rule uint8

const (
	ruleNone        rule = iota // not reachable in this view
	ruleShared                  // the client shares a network with the instance
	rulePublished               // the published host address and port
	ruleContainer               // no shared network, nothing published: the first network's address
	ruleHostNetwork             // a host-network container: the host's address
	ruleOverlay                 // another host's container on a network spanning hosts that the client is on
)

// endpoint appends the addresses an instance is answered with for this
// view, and returns the port that goes with them and the rule that chose
// them; ruleNone when the instance is not reachable in this view.
func (v view) endpoint(dst []netip.Addr, inst *catalog.Instance) (_ []netip.Addr, port uint16, why rule) {
	if v.peer(inst.Node, inst.Source) {
		return v.peerEndpoint(dst, inst)
	}
	n := len(dst)
	if v.mode != AddressHost {
		if dst = v.shared(dst, inst.Addrs); len(dst) > n {
			return dst, inst.Port, ruleShared
		}
	}
	switch {
	case v.mode != AddressContainer && inst.Published():
		return append(dst, inst.HostIP), inst.HostPort, rulePublished
	case v.mode == AddressHost:
		return dst, 0, ruleNone
	case len(inst.Addrs) > 0:
		return first(dst, inst.Addrs), inst.Port, ruleContainer
	case inst.Published(): // host network: the host's address is the container's
		return append(dst, inst.HostIP), inst.HostPort, ruleHostNetwork
	}
	return dst, 0, ruleNone
}

// containerAddrs appends a container's addresses for this view, by the same
// rules as endpoint, with the container's host address standing for
// "published".
func (v view) containerAddrs(dst []netip.Addr, c *catalog.Container) []netip.Addr {
	n := len(dst)
	if v.peer(c.Node, c.Source) {
		if v.mode != AddressHost && v.cat != nil {
			if dst, _ = v.overlay(dst, c.Addrs); len(dst) > n {
				return dst
			}
		}
		if c.HostIP.IsValid() {
			return append(dst, c.HostIP)
		}
		return dst
	}
	if v.mode != AddressHost {
		if dst = v.shared(dst, c.Addrs); len(dst) > n {
			return dst
		}
	}
	switch {
	case v.mode != AddressContainer && c.HostIP.IsValid():
		return append(dst, c.HostIP)
	case v.mode == AddressHost:
		return dst
	case len(c.Addrs) > 0:
		return first(dst, c.Addrs)
	case c.HostIP.IsValid():
		return append(dst, c.HostIP)
	}
	return dst
}

// result is a positive zone answer: the answer records, and for each the
// additional records it needs (an SRV's target addresses), so that
// truncation and shuffling keep a record and its glue together.
type result struct {
	answer []dns.RR
	glue   [][]dns.RR // nil, or glue[i] belongs to answer[i]
}

// lookupZone answers a name of the zone (labels relative to it). owner is
// the name the answer records carry.
func (h *Handler) lookupZone(owner string, labels []string, qtype uint16, v view) (result, error) {
	q, err := parseQuery(labels)
	if err != nil {
		return result{}, err
	}
	switch q.kind {
	case kindApex:
		return h.apex(owner, qtype)
	case kindNS:
		return h.addrAnswer(owner, qtype, h.nsAddrs)
	case kindBranch:
		return result{}, h.branch(q)
	case kindInstances:
		return h.service(owner, q, qtype, v)
	case kindContainer:
		ctrs, err := h.containers(q.container)
		if err != nil {
			return result{}, err
		}
		var addrs []netip.Addr
		for _, c := range ctrs {
			addrs = v.containerAddrs(addrs, c)
		}
		if len(addrs) == 0 {
			return result{}, errNXDomain
		}
		return h.addrAnswer(owner, qtype, addrs)
	case kindNode:
		n, err := h.cat.Node(q.node)
		if err != nil {
			return result{}, err
		}
		if n == nil {
			return result{}, errNXDomain
		}
		return h.addrAnswer(owner, qtype, []netip.Addr{n.Addr})
	case kindNodeBranch:
		if nodes, err := h.cat.Nodes(); err != nil || len(nodes) == 0 {
			return result{}, errNXDomain
		}
		return result{}, errNoData
	}
	return result{}, errNXDomain
}

func (h *Handler) apex(owner string, qtype uint16) (result, error) {
	switch qtype {
	case dns.TypeSOA, dns.TypeANY:
		return result{answer: []dns.RR{soaRR(owner, h.zone, h.cat.Index(), h.ttl, h.negTTL)}}, nil
	case dns.TypeNS:
		ns := labelNS + "." + h.zone
		var glue []dns.RR
		for _, a := range h.nsAddrs {
			glue = append(glue, addrRR(ns, a, h.ttl))
		}
		return result{answer: []dns.RR{nsRR(owner, ns, h.ttl)}, glue: [][]dns.RR{glue}}, nil
	}
	return result{}, errNoData
}

// branch decides between NODATA and NXDOMAIN for a name with no records of
// its own: it exists while something exists below it (RFC 8020).
func (h *Handler) branch(q query) error {
	switch {
	case q.tagBranch != "":
		if !h.cat.HasTag(q.tagBranch) {
			return errNXDomain
		}
	case q.serviceBranch != "":
		if _, insts := h.cat.AppendService(nil, catalog.ServiceQuery{Service: q.serviceBranch, PassingOnly: true}); len(insts) == 0 {
			return errNXDomain
		}
	}
	return errNoData
}

func (h *Handler) service(owner string, q query, qtype uint16, v view) (result, error) {
	_, insts := h.cat.AppendService(nil, q.sq)
	// The addresses of each instance in this view; instances the client
	// cannot reach are left out, and a service nobody can reach does not
	// exist for this client.
	type ep struct {
		inst  *catalog.Instance
		addrs []netip.Addr
		port  uint16
	}
	eps := make([]ep, 0, len(insts))
	var buf []netip.Addr
	for _, inst := range insts {
		n := len(buf)
		var port uint16
		var why rule
		if buf, port, why = v.endpoint(buf, inst); why != ruleNone {
			eps = append(eps, ep{inst: inst, addrs: buf[n:len(buf):len(buf)], port: port})
		}
	}
	if len(eps) == 0 {
		return result{}, errNXDomain
	}
	if qtype == dns.TypeANY {
		qtype = anyType(func(t uint16) bool {
			for _, e := range eps {
				for _, a := range e.addrs {
					if t == dns.TypeA && a.Is4() || t == dns.TypeAAAA && a.Is6() {
						return true
					}
				}
				if t == dns.TypeSRV && e.port != 0 {
					return true
				}
			}
			return false
		})
	}
	var res result
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		var all []netip.Addr
		for _, e := range eps {
			all = append(all, e.addrs...)
		}
		return h.addrAnswer(owner, qtype, all)
	case dns.TypeSRV:
		for _, e := range eps {
			if e.port == 0 {
				continue // a container that exposes no port has no SRV
			}
			target := h.srvTarget(e.inst) + "." + labelContainer + "." + h.zone
			if slices.ContainsFunc(res.answer, func(rr dns.RR) bool {
				s := rr.(*dns.SRV)
				return s.Target == target && s.Port == e.port
			}) {
				continue // the same endpoint reached through two instances
			}
			glue := make([]dns.RR, 0, len(e.addrs))
			for _, a := range e.addrs {
				glue = append(glue, addrRR(target, a, h.ttl))
			}
			res.answer = append(res.answer, srvRR(owner, target, e.port, h.ttl))
			res.glue = append(res.glue, glue)
		}
	}
	if len(res.answer) == 0 {
		return result{}, errNoData
	}
	return res, nil
}

// anyType picks the one RRset an ANY query gets (RFC 8482): the first type
// of A, AAAA, SRV that has records, or A (which then answers NODATA).
func anyType(has func(uint16) bool) uint16 {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV} {
		if has(t) {
			return t
		}
	}
	return dns.TypeA
}

// addrAnswer answers A or AAAA (or ANY, as whichever has records) with the
// addresses of that family, each once.
func (h *Handler) addrAnswer(owner string, qtype uint16, addrs []netip.Addr) (result, error) {
	if qtype == dns.TypeANY {
		qtype = anyType(func(t uint16) bool {
			return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return t == dns.TypeA && a.Is4() || t == dns.TypeAAAA && a.Is6() })
		})
	}
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		return result{}, errNoData
	}
	var res result
	var seen []netip.Addr
	for _, a := range addrs {
		if a.Is4() != (qtype == dns.TypeA) || slices.Contains(seen, a) {
			continue
		}
		seen = append(seen, a)
		res.answer = append(res.answer, addrRR(owner, a, h.ttl))
	}
	if len(res.answer) == 0 {
		return result{}, errNoData
	}
	return res, nil
}

// srvTarget is the SRV target of inst under container.<zone>.
func (h *Handler) srvTarget(inst *catalog.Instance) string {
	return h.qualified(inst.Target, inst.Node)
}

// qualified is the name under container.<zone> of a container whose
// target is target and owner node: the target, qualified with this
// node's name for this node's own containers in a cluster, as the peers'
// are with theirs (the cluster package writes them so). SRV targets and
// PTR answers both use it, so either names one instance on every node.
func (h *Handler) qualified(target, node string) string {
	if h.cluster && node == h.node {
		return target + "." + h.node
	}
	return target
}

// containers finds the answered containers a <label>.container.<zone> name
// means: those whose target (as their writer decided it) is label, and, in
// a cluster, for <name>.<this node>, this node's own container <name>: the
// SRV target of its instances, which a client may ask of any node.
func (h *Handler) containers(label string) ([]*catalog.Container, error) {
	out, err := h.passingByTarget(nil, label, "")
	if err != nil || !h.cluster {
		return out, err
	}
	own, ok := strings.CutSuffix(label, "."+h.node)
	if !ok || strings.Contains(own, ".") {
		return out, nil
	}
	return h.passingByTarget(out, own, h.node)
}

// passingByTarget appends to out the passing containers whose target is
// target, only node's when node is not "".
func (h *Handler) passingByTarget(out []*catalog.Container, target, node string) ([]*catalog.Container, error) {
	ctrs, err := h.cat.ContainersByTarget(target)
	if err != nil {
		return nil, err
	}
	for _, c := range ctrs {
		if c.Passing && (node == "" || c.Node == node) {
			out = append(out, c)
		}
	}
	return out, nil
}

// reverse answers PTR for an address of a known container: the name its
// SRV targets give it.
func (h *Handler) reverse(owner string, addr netip.Addr, qtype uint16) (result, error) {
	ctrs, err := h.cat.ContainersByAddr(addr)
	if err != nil {
		return result{}, err
	}
	var res result
	for _, c := range ctrs {
		if !c.Passing {
			continue
		}
		target := h.qualified(c.Target, c.Node) + "." + labelContainer + "." + h.zone
		if qtype == dns.TypePTR || qtype == dns.TypeANY {
			res.answer = append(res.answer, ptrRR(owner, target, h.ttl))
		}
	}
	return res, nil
}
