package dnsserver

import (
	"errors"
	"strconv"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// Sentinels of a zone lookup; rcodeFor maps them to rcodes in one place.
var (
	errNXDomain = errors.New("no such name")
	errNoData   = errors.New("no records of that type")
	errRefused  = errors.New("refused")
)

// kind is what a name inside the zone refers to.
type kind int

const (
	kindApex       kind = iota // the zone itself: SOA, NS
	kindNS                     // ns.<zone>, the name server's own name
	kindBranch                 // service.<zone>, container.<zone>, _tcp.service.<zone>: names below, no records (RFC 8020)
	kindInstances              // instances of a service, maybe filtered by tag, protocol, port
	kindContainer              // <name>.container.<zone>, <name>.<node>.container.<zone>
	kindNode                   // <node>.node.<zone>, a cluster node's address
	kindNodeBranch             // node.<zone>
)

// The zone's own labels.
const (
	labelService   = "service"
	labelContainer = "container"
	labelNode      = "node"
	labelNS        = "ns"
)

// query is a parsed name inside the zone.
type query struct {
	kind kind
	// For kindInstances, the instances to answer; Service is always set.
	sq catalog.ServiceQuery
	// rfc2782 marks the _<service>._<proto|tag> form.
	rfc2782 bool
	// tagBranch is set for _<tag>.service.<zone>: a branch that exists only
	// while some instance carries the tag.
	tagBranch string
	// serviceBranch is set for _<proto>.<service>.service.<zone>: a branch
	// that exists only while the service does.
	serviceBranch string
	// container is the target of kindContainer: one label, or a peer's
	// "<name>.<node>".
	container string
	// node is the node of kindNode.
	node string
}

// parseQuery reads a lower-case name relative to the zone (labels in
// order, apex = none), right to left, as the naming table of DESIGN.md
// says. It returns errNXDomain for a name that cannot exist in the zone.
// It is pure: what exists is the lookup's business.
func parseQuery(labels []string) (query, error) {
	n := len(labels)
	if n == 0 {
		return query{kind: kindApex}, nil
	}
	switch labels[n-1] {
	case labelNS:
		if n == 1 {
			return query{kind: kindNS}, nil
		}
	case labelContainer:
		switch n {
		case 1:
			return query{kind: kindBranch}, nil
		case 2:
			if validName(labels[0]) {
				return query{kind: kindContainer, container: labels[0]}, nil
			}
		case 3:
			// Another node's container: its target carries the node's name.
			if validName(labels[0]) && validName(labels[1]) {
				return query{kind: kindContainer, container: labels[0] + "." + labels[1]}, nil
			}
		}
	case labelNode:
		switch {
		case n == 1:
			return query{kind: kindNodeBranch}, nil
		case n == 2 && validName(labels[0]):
			return query{kind: kindNode, node: labels[0]}, nil
		}
	case labelService:
		return parseService(labels[:n-1])
	}
	return query{}, errNXDomain
}

// parseService parses what is left of the service branch (labels in order,
// without "service").
func parseService(l []string) (query, error) {
	switch len(l) {
	case 0: // service.<zone>
		return query{kind: kindBranch}, nil
	case 1:
		if p, ok := underscored(l[0]); ok {
			if p == catalog.ProtoTCP || p == catalog.ProtoUDP {
				return query{kind: kindBranch}, nil // _tcp.service.<zone>
			}
			if validName(p) {
				return query{kind: kindBranch, tagBranch: p}, nil // _<tag>.service.<zone>
			}
			return query{}, errNXDomain
		}
		if validName(l[0]) {
			return serviceQuery(catalog.ServiceQuery{Service: l[0]}), nil
		}
	case 2:
		// _<service>._<proto|tag>, RFC 2782.
		svc, ok1 := underscored(l[0])
		second, ok2 := underscored(l[1])
		if ok1 && ok2 && validName(svc) && validName(second) {
			q := serviceQuery(catalog.ServiceQuery{Service: svc})
			q.rfc2782 = true
			if second == catalog.ProtoTCP || second == catalog.ProtoUDP {
				q.sq.Protocol = second
			} else {
				q.sq.Tag = second
			}
			return q, nil
		}
		// _<proto>.<service>: the branch above _<port>._<proto>.<service>.
		if p, ok := underscored(l[0]); ok && (p == catalog.ProtoTCP || p == catalog.ProtoUDP) && validName(l[1]) {
			return query{kind: kindBranch, serviceBranch: l[1]}, nil
		}
		// <tag>.<service>
		if validName(l[0]) && validName(l[1]) {
			return serviceQuery(catalog.ServiceQuery{Service: l[1], Tag: l[0]}), nil
		}
	case 3:
		// _<port>._<proto>.<service>
		port, ok1 := underscored(l[0])
		proto, ok2 := underscored(l[1])
		if ok1 && ok2 && (proto == catalog.ProtoTCP || proto == catalog.ProtoUDP) && validPort(port) && validName(l[2]) {
			return serviceQuery(catalog.ServiceQuery{Service: l[2], Protocol: proto, Port: port}), nil
		}
	}
	return query{}, errNXDomain
}

func serviceQuery(sq catalog.ServiceQuery) query {
	sq.PassingOnly = true
	return query{kind: kindInstances, sq: sq}
}

// underscored returns s without its leading underscore, if it has one.
func underscored(s string) (string, bool) {
	if len(s) > 1 && s[0] == '_' {
		return s[1:], true
	}
	return "", false
}

// validName reports whether s can be a service, tag or container name: a
// lower-case RFC 1123 label.
func validName(s string) bool { return catalog.ValidLabel(s) }

// validPort accepts a port number (1–65535, no leading zero) or a port
// name (a label that is not all digits).
func validPort(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.Atoi(s)
		return err == nil && n > 0 && n <= 65535 && strconv.Itoa(n) == s
	}
	return validName(s)
}

// splitRelative splits a lower-case FQDN into its labels below zone (a
// lower-case FQDN), or reports false when the name is not in the zone.
// Whole labels are compared: "notlocal." is not in "local.".
func splitRelative(name, zone string) ([]string, bool) {
	if name == zone {
		return nil, true
	}
	if zone == "." {
		return strings.Split(strings.TrimSuffix(name, "."), "."), true
	}
	if !strings.HasSuffix(name, zone) || len(name) == len(zone) || name[len(name)-len(zone)-1] != '.' {
		return nil, false
	}
	rel := name[:len(name)-len(zone)-1]
	if rel == "" {
		return nil, false // ".local."
	}
	return strings.Split(rel, "."), true
}
