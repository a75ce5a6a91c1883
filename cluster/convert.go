package cluster

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// apiPrefix starts the container id of an API instance (catalog's rule).
const apiPrefix = "api/"

// fromCatalog turns a local record into what goes on the wire. A record
// the wire cannot carry (an id that breaks the catalog's rules) gives an
// error; the catalog's rules make that a programming error.
func fromCatalog(rec catalog.ContainerRecord) (wireRecord, error) {
	c := rec.Container
	r := wireRecord{ID: c.ID, Name: c.Name, Target: c.Target, Source: c.Source, Passing: c.Passing, HostIP: c.HostIP, Addrs: sentAddrs(c.Source, c.Addrs)}
	r.Insts = make([]wireInstance, 0, len(rec.Instances))
	for _, in := range rec.Instances {
		w := wireInstance{
			Service: in.Service, Tags: in.Tags, Protocol: in.Protocol, Port: in.Port, PortName: in.PortName,
			Passing: in.Passing, Addrs: sentAddrs(c.Source, in.Addrs), HostIP: in.HostIP, HostPort: in.HostPort,
			Proxy: in.Proxy, Metrics: in.Metrics,
		}
		if sameAddrs(w.Addrs, r.Addrs) {
			w.Addrs = nil
		} else if w.Addrs == nil {
			w.Addrs = []catalog.NetAddr{}
		}
		switch {
		case c.Source == catalog.SourceAPI && c.ID == apiPrefix+in.ID:
		case strings.HasPrefix(in.ID, c.ID+":"):
			w.IDSuffix = in.ID[len(c.ID)+1:]
		default:
			return r, fmt.Errorf("instance %s of container %s: id outside the container's", in.ID, c.ID)
		}
		r.Insts = append(r.Insts, w)
	}
	return r, nil
}

// sentAddrs is what of a container's addresses another host can use: an
// address on a network local to its Docker host is only reachable on that
// host (a bridge's 172.17.0.2 on host A and on host B are two
// containers), so of a Docker container only the addresses on networks
// that span hosts (overlays) travel, and all the addresses of API
// registrations, given for all to use. Peers answer the others with the
// published host address and port.
func sentAddrs(src catalog.Source, addrs []catalog.NetAddr) []catalog.NetAddr {
	if src == catalog.SourceAPI {
		return addrs
	}
	var out []catalog.NetAddr
	for _, a := range addrs {
		// One a peer would refuse would cost the whole record there.
		if a.SpansHosts && validNetworkName(a.Network) && validNetworkID(a.NetworkID) {
			out = append(out, a)
		}
	}
	return out
}

// peerAddrs checks the addresses of a peer's record and keeps what
// sentAddrs sends: of a Docker container only addresses on networks that
// span hosts, each with a network name and id a Docker network can have
// and a unicast address (a network local to the peer's host means
// nothing here, so an older node's are dropped); of an API registration
// only addresses on no network that spans hosts. Whether a client here is
// on such a network is decided by this node's own view of it (its id and
// subnet, catalog.Network), never by the prefix a peer sends.
func peerAddrs(src catalog.Source, addrs []catalog.NetAddr) ([]catalog.NetAddr, error) {
	if addrs == nil {
		return nil, nil
	}
	out := make([]catalog.NetAddr, 0, len(addrs))
	for _, a := range addrs {
		switch {
		case src == catalog.SourceAPI && !a.SpansHosts:
			out = append(out, a)
		case src == catalog.SourceAPI || !a.SpansHosts:
		case !validNetworkName(a.Network) || !validNetworkID(a.NetworkID):
			return nil, fmt.Errorf("network %q (id %q): not a Docker network name and id", a.Network, a.NetworkID)
		case reachable(a.Addr()) != a.Addr() || a.Addr().IsLinkLocalUnicast():
			return nil, fmt.Errorf("network %s: address %s is not a unicast address", a.Network, a.Addr())
		default:
			out = append(out, a)
		}
	}
	return out, nil
}

// validNetworkName: what Docker accepts as a network name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*), at most 255 bytes.
func validNetworkName(s string) bool {
	if s == "" || len(s) > 255 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// validNetworkID: a local network's 64 hex digits or a swarm network's 25
// base-36 characters; letters and digits, at most 64.
func validNetworkID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// reachable is the host address of a peer's record as this host sees it:
// none for a loopback address (a port published on 127.0.0.1 of another
// host), or one that is no unicast address.
func reachable(a netip.Addr) netip.Addr {
	if !a.IsValid() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}
	}
	return a
}

func sameAddrs(a, b []catalog.NetAddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// storeID is the store's id of owner's record id (as the owner knows
// it), as toCatalog makes it: <owner>/<container id>, or for an API
// record api/<owner>/<api id>.
func storeID(owner, id string, api bool) string {
	if api {
		return apiPrefix + owner + "/" + strings.TrimPrefix(id, apiPrefix)
	}
	return owner + "/" + id
}

// toCatalog turns owner's record into the catalog's, in owner's namespace
// (see the package doc), checking every name with the rules a local one
// passes. The catalog checks again when it is written. A peer's HTTP proxy
// routes travel too (this node's proxy reaches the peer's instances at
// their published address), and its metrics endpoints (GET /v1/prometheus
// lists them at the published metrics port, else the overlay address).
func toCatalog(owner string, r *wireRecord) (catalog.ContainerRecord, error) {
	if r.Name != "" && !catalog.ValidLabel(r.Name) {
		return catalog.ContainerRecord{}, fmt.Errorf("container %q: name %q is not a lower-case DNS label", r.ID, r.Name)
	}
	// The target stays unique across the cluster with the owner's name
	// after it: <target>.<owner>.container.<zone>.
	target := r.Target + "." + owner
	if !catalog.ValidTarget(r.Target) || !catalog.ValidTarget(target) {
		return catalog.ContainerRecord{}, fmt.Errorf("container %q: target %q is not lower-case DNS labels, or too long", r.ID, r.Target)
	}
	var ctrID, apiID, instID string
	switch r.Source {
	case catalog.SourceAPI:
		id, ok := strings.CutPrefix(r.ID, apiPrefix)
		if !ok || !catalog.ValidLabel(id) || len(r.Insts) != 1 || r.Insts[0].IDSuffix != "" {
			return catalog.ContainerRecord{}, fmt.Errorf("api record %q: want id api/<label> with one instance", r.ID)
		}
		apiID = owner + "/" + id
		ctrID = storeID(owner, r.ID, true)
	default:
		if r.ID == "" || strings.ContainsAny(r.ID, "/:") {
			return catalog.ContainerRecord{}, fmt.Errorf("container id %q: empty, or holds '/' or ':'", r.ID)
		}
		if len(r.Insts) == 1 && r.Insts[0].IDSuffix != "" {
			// One string for both ids, the container's (storeID) being
			// the instance's up to its colon: one allocation, not two.
			instID = owner + "/" + r.ID + ":" + r.Insts[0].IDSuffix
			ctrID = instID[:len(owner)+1+len(r.ID)]
		} else {
			ctrID = storeID(owner, r.ID, false)
		}
	}
	ctrAddrs, err := peerAddrs(r.Source, r.Addrs)
	if err != nil {
		return catalog.ContainerRecord{}, fmt.Errorf("container %q: %w", r.ID, err)
	}
	mem := newRecordMem(len(r.Insts))
	ctr := &mem.ctr
	*ctr = catalog.Container{
		ID: ctrID, Name: r.Name, Target: target, Node: owner, Source: r.Source,
		Addrs: ctrAddrs, HostIP: reachable(r.HostIP), Passing: r.Passing,
	}
	insts := mem.insts
	for k := range r.Insts {
		w := &r.Insts[k]
		if err := checkInstanceNames(w); err != nil {
			return catalog.ContainerRecord{}, fmt.Errorf("container %q: %w", r.ID, err)
		}
		addrs, err := peerAddrs(r.Source, w.Addrs)
		if err != nil {
			return catalog.ContainerRecord{}, fmt.Errorf("container %q: %w", r.ID, err)
		}
		in := mem.instance(k)
		*in = catalog.Instance{
			ID: apiID, Service: w.Service, Tags: w.Tags, Protocol: w.Protocol, Port: w.Port, PortName: w.PortName,
			Addrs: addrs, HostIP: reachable(w.HostIP), HostPort: w.HostPort,
			ContainerID: ctrID, ContainerName: r.Name, Target: target, Node: owner, Source: r.Source, Passing: w.Passing,
			Proxy: w.Proxy, Metrics: w.Metrics,
		}
		if w.Addrs == nil {
			in.Addrs = ctr.Addrs
		}
		if !in.HostIP.IsValid() {
			in.HostPort = 0
		}
		if r.Source != catalog.SourceAPI {
			if w.IDSuffix == "" {
				return catalog.ContainerRecord{}, fmt.Errorf("container %q: instance without an id", r.ID)
			}
			in.ID = instID
			if in.ID == "" {
				in.ID = catalog.InstanceID(ctrID, w.IDSuffix)
			}
		}
		insts = append(insts, in)
	}
	return catalog.ContainerRecord{Container: ctr, Instances: insts}, nil
}

// recordMem is the memory of one peer record in the store's form, taken
// in one allocation for the common record of one instance (a joining
// node turns 99,000 of them into the store's form at once). The
// container, instances and list live as long as each other: the store
// replaces a record whole.
type recordMem struct {
	ctr   catalog.Container
	inst  catalog.Instance
	one   [1]*catalog.Instance
	insts []*catalog.Instance // len 0, cap the record's instances
}

func newRecordMem(n int) *recordMem {
	m := &recordMem{}
	if n == 1 {
		m.insts = m.one[:0:1]
	} else {
		m.insts = make([]*catalog.Instance, 0, n)
	}
	return m
}

// instance is the memory of the record's instance k.
func (m *recordMem) instance(k int) *catalog.Instance {
	if cap(m.insts) == 1 && k == 0 {
		return &m.inst
	}
	return new(catalog.Instance)
}

// reserved are the zone's own keywords, refused as service names and
// tags as the watcher refuses them locally.
var reserved = map[string]bool{"service": true, "container": true}

func checkInstanceNames(w *wireInstance) error {
	if !catalog.ValidLabel(w.Service) || reserved[w.Service] {
		return fmt.Errorf("service name %q is not a lower-case DNS label, or is reserved", w.Service)
	}
	if w.PortName != "" && !catalog.ValidLabel(w.PortName) {
		return fmt.Errorf("port name %q is not a lower-case DNS label", w.PortName)
	}
	for _, t := range w.Tags {
		if !catalog.ValidLabel(t) || reserved[t] {
			return fmt.Errorf("tag %q is not a lower-case DNS label, or is reserved", t)
		}
	}
	if r := w.Proxy; r != nil {
		for _, p := range r.Paths {
			if n, err := catalog.NormalizeProxyPath(p); err != nil || n != p {
				return fmt.Errorf("proxy path %q is not a normalized absolute path", p)
			}
		}
		if n, err := catalog.NormalizeProxyHost(r.Host); r.Host != "" && (err != nil || n != r.Host) {
			return fmt.Errorf("proxy host %q is not a lower-case host name", r.Host)
		}
		if len(r.Paths) == 0 && r.Host == "" {
			return fmt.Errorf("proxy route with neither path nor host")
		}
	}
	if m := w.Metrics; m != nil {
		// The rules of SERVICE_METRICS_PORT and _PATH, as the owner's
		// labels or API passed them: a port from 1 to 65535, an absolute
		// path of printable bytes, sent as the owner holds it.
		p, err := catalog.ParseMetricsEndpoint(strconv.Itoa(int(m.Port)), m.Path)
		if err != nil {
			return err
		}
		if *p != *m {
			return fmt.Errorf("metrics path %q is not as the owner would hold it", m.Path)
		}
	}
	return nil
}
