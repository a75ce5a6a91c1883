package dnsserver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
)

// Explanation is the answer a client would get for one question, through
// the same code that answers queries, and why each instance of a service
// is in it or not. Explain forwards nothing upstream and counts nothing.
type Explanation struct {
	// Reply is the answer as over TCP (nothing truncated). For a name
	// that would be forwarded it has no records: Outcome says so.
	Reply *dns.Msg
	// Outcome is what svcdns does with the question, in words.
	Outcome string
	// Instances are the instances a service name selects, passing or
	// not, with the rule that chose their addresses for this client.
	Instances []InstanceReason
}

// InstanceReason is one instance of an explained answer.
type InstanceReason struct {
	Instance *catalog.Instance
	Addrs    []netip.Addr // what the answer gives; none when left out
	Port     uint16       // the port SRV gives; 0 when left out
	// Rule is "shared-network", "shared-overlay" (another host's
	// container on a network spanning hosts that the client is on),
	// "published", "container-address", "host-network", "registered" (an
	// API instance), "not-passing" or "unreachable".
	Rule   string
	Reason string // the rule in words, naming the network or port
}

// explaining marks a context of Explain: respond sends nothing upstream.
type explaining struct{ forwarded bool }

type explainKey struct{}

// Explain answers name (absolute or not) of type qtype ("A", "SRV", ...)
// as this handler would answer client, and says why. Its errors are bad
// input.
func (h *Handler) Explain(ctx context.Context, name, qtype string, client netip.Addr) (ex Explanation, err error) {
	t, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok {
		return ex, fmt.Errorf("type %q: want a DNS type such as A, AAAA, SRV or PTR", qtype)
	}
	fqdn := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(fqdn); !ok || name == "" {
		return ex, fmt.Errorf("name %q is not a domain name", name)
	}
	if !client.IsValid() {
		return ex, fmt.Errorf("no client address")
	}
	client = client.Unmap()
	r := new(dns.Msg)
	r.SetQuestion(fqdn, t)
	r.SetEdns0(dns.MaxMsgSize, false)
	flag := &explaining{}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("answering %s %s panicked: %v", fqdn, qtype, p)
		}
	}()
	var req request
	if ex.Reply = req.fromMsg(r, client, true, h.maxUDP); ex.Reply == nil {
		acc := h.access(client)
		ex.Reply = h.reply(context.WithValue(ctx, explainKey{}, flag), &req, &acc, nil)
	}
	ex.Outcome = h.outcome(ex.Reply, client, flag.forwarded)
	if ex.Reply.Rcode != dns.RcodeRefused {
		ex.Instances = h.reasons(fqdn, client)
	}
	return ex, nil
}

// outcome says in words what happens to a question.
func (h *Handler) outcome(resp *dns.Msg, client netip.Addr, forwarded bool) string {
	switch {
	case forwarded:
		return "outside the zone: forwarded to the upstream resolvers (not sent by explain)"
	case resp.Rcode == dns.RcodeRefused && !h.access(client).allowed:
		return "refused: the client is not in --allow"
	case resp.Rcode == dns.RcodeRefused && !resp.Authoritative:
		if h.fwd == nil {
			return "refused: outside the zone, and forwarding is off (--upstream none)"
		}
		return "refused: outside the zone, and the client is not in --recursion-allow"
	case resp.Rcode == dns.RcodeServerFailure && !h.ready():
		return "not synced with Docker yet: unknown names get SERVFAIL, not NXDOMAIN"
	case resp.Rcode == dns.RcodeNameError:
		return "no such name in the zone, or no instance of it is passing and reachable for this client"
	case resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 0:
		return "the name exists but has no records of this type (NODATA)"
	}
	return "answered from the catalog (address mode " + h.mode.String() + ")"
}

// reasons lists the instances a service name selects, passing or not,
// each with the rule endpoint applies for this client; nil for any other
// name.
func (h *Handler) reasons(fqdn string, client netip.Addr) []InstanceReason {
	labels, inZone := splitRelative(lowerASCII(fqdn), h.zone)
	if !inZone {
		return nil
	}
	q, err := parseQuery(labels)
	if err != nil || q.kind != kindInstances {
		return nil
	}
	sq := q.sq
	sq.PassingOnly = false
	_, insts := h.cat.AppendService(nil, sq)
	v := h.viewOf(client)
	out := make([]InstanceReason, 0, len(insts))
	for _, inst := range insts {
		ir := InstanceReason{Instance: inst}
		if !inst.Passing {
			ir.Rule, ir.Reason = "not-passing", "left out: not passing (stopped, paused, or its health check is not healthy)"
			out = append(out, ir)
			continue
		}
		var why rule
		ir.Addrs, ir.Port, why = v.endpoint(nil, inst)
		ir.Rule, ir.Reason = h.explainRule(v, why, inst)
		out = append(out, ir)
	}
	return out
}

// explainRule puts endpoint's rule in words.
func (h *Handler) explainRule(v view, why rule, inst *catalog.Instance) (name, reason string) {
	proto, client := inst.Protocol, v.client
	if v.peer(inst.Node, inst.Source) {
		return explainPeerRule(v, why, inst)
	}
	switch why {
	case ruleShared:
		for _, a := range inst.Addrs {
			if a.Contains(client) {
				return "shared-network", fmt.Sprintf("the client is on network %s (%s) with it: its address there, container port %d/%s",
					networkName(a.Network), a.Prefix.Masked(), inst.Port, proto)
			}
		}
		return "shared-network", "the client shares a network with it: its address there"
	case rulePublished:
		if inst.Source == catalog.SourceAPI {
			return "registered", fmt.Sprintf("registered through the API at %s", netip.AddrPortFrom(inst.HostIP, inst.HostPort))
		}
		lead := "no network in common with the client"
		if h.mode == AddressHost {
			lead = "--address-mode host"
		}
		return "published", fmt.Sprintf("%s: the published host address, port %d/%s published as %s",
			lead, inst.Port, proto, netip.AddrPortFrom(inst.HostIP, inst.HostPort))
	case ruleContainer:
		lead := "no network in common with the client and no port published"
		if h.mode == AddressContainer {
			lead = "--address-mode container"
		}
		return "container-address", fmt.Sprintf("%s: its address on network %s", lead, networkName(inst.Addrs[0].Network))
	case ruleHostNetwork:
		return "host-network", "a host-network container: the host's address"
	}
	if h.mode == AddressHost {
		return "unreachable", "left out: --address-mode host and the port is not published"
	}
	return "unreachable", "left out: it has no address"
}

// explainPeerRule puts peerEndpoint's rule in words.
func explainPeerRule(v view, why rule, inst *catalog.Instance) (name, reason string) {
	switch why {
	case ruleOverlay:
		_, n := v.overlay(nil, inst.Addrs)
		return "shared-overlay", fmt.Sprintf("shared overlay network: the client is on network %s (%s), which spans hosts, with this container of node %s: its address there, container port %d/%s",
			n.Name, n.Subnets, inst.Node, inst.Port, inst.Protocol)
	case rulePublished:
		lead := "a container of node " + inst.Node + " with no overlay network shared with the client"
		if v.mode == AddressHost {
			lead = "--address-mode host"
		}
		return "published", fmt.Sprintf("%s: the published host address, port %d/%s published as %s",
			lead, inst.Port, inst.Protocol, netip.AddrPortFrom(inst.HostIP, inst.HostPort))
	}
	return "unreachable", fmt.Sprintf("left out: a container of node %s that publishes no port and shares no overlay network with the client (an address on a network of its own host is not reachable from here)", inst.Node)
}

func networkName(n string) string {
	if n == "" {
		return "(api)"
	}
	return n
}
