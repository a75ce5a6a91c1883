package watcher

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/svcdns/svcdns/catalog"
)

// convertOptions is what the mapping needs besides the container.
type convertOptions struct {
	Node string
	// AdvertiseIP is the host's address for ports published on every
	// interface and for host-network containers; zero leaves such ports
	// unpublished and host-network containers out.
	AdvertiseIP netip.Addr
	// Networks are the host's networks by id: an address on one that
	// spans hosts is marked so. nil: every network counts as local.
	Networks map[string]*catalog.Network
}

// problem is one name or tag of a container that svcdns refuses: a log line
// and a count under Reason.
type problem struct {
	Reason string
	Detail string
}

// conversion is what one inspected container becomes.
type conversion struct {
	// Record is the container and its instances; Record.Container is nil
	// when Skip is set.
	Record catalog.ContainerRecord
	// Skip says why the container is not in the catalog at all (not
	// running, SERVICE_IGNORE, no address).
	Skip string
	// Problems are the names and tags that were rejected; the container and
	// its other instances are stored all the same.
	Problems []problem
}

// port is one exposed container port.
type port struct {
	Num   uint16
	Proto string
	key   string // the nat.Port key, "8080/tcp"
}

// mapped is an inspected container and what it maps to, without the
// inspect response it came from.
type mapped struct {
	id   string // "" when the response had none
	name string // displayName, for log lines
	conv conversion
	stop stopConfig // how docker stop stops it, for draining
	// unlisted are the ids of the networks the container has an address
	// on that the network list it was mapped with lacks: a network created
	// after that list may span hosts (netlist.go).
	unlisted []string
}

// mapContainer applies the label filters and convert. It reads only its
// arguments, so inspect workers call it concurrently.
func mapContainer(resp container.InspectResponse, filters []labelFilter, opt convertOptions) mapped {
	m := mapped{name: displayName(resp)}
	if resp.ContainerJSONBase != nil {
		m.id = resp.ID
	}
	var labels map[string]string
	if resp.Config != nil {
		labels = resp.Config.Labels
		m.stop = newStopConfig(resp.Config.StopSignal, resp.Config.StopTimeout)
	}
	if !matchLabels(filters, labels) {
		m.conv.Skip = "excluded by the docker filters"
		return m
	}
	m.conv = convert(resp, opt)
	if m.conv.Skip == "" {
		m.unlisted = unlistedNetworks(m.conv.Record, opt.Networks)
	}
	return m
}

// unlistedNetworks returns the ids of the networks rec's container has
// an address on that nets lacks, each once.
func unlistedNetworks(rec catalog.ContainerRecord, nets map[string]*catalog.Network) []string {
	if rec.Container == nil {
		return nil
	}
	var out []string
	for _, a := range rec.Container.Addrs {
		if a.NetworkID == "" || nets[a.NetworkID] != nil || slices.Contains(out, a.NetworkID) {
			continue
		}
		out = append(out, a.NetworkID)
	}
	return out
}

// displayName is the container's name for log lines: its Docker name,
// shortened past maxShownName, else its short id.
func displayName(resp container.InspectResponse) string {
	if resp.ContainerJSONBase == nil {
		return ""
	}
	if n := strings.TrimPrefix(resp.Name, "/"); n != "" {
		if len(n) > maxShownName {
			n = n[:maxShownName] + "…"
		}
		return n
	}
	return shortID(resp.ID)
}

// convert maps an inspected container to its catalog record, as DESIGN.md's
// "From container to instances" says. It is pure: everything it needs is in
// its arguments, and problems are returned, not logged.
func convert(c container.InspectResponse, opt convertOptions) conversion {
	var out conversion
	if c.ContainerJSONBase == nil || c.ID == "" {
		out.Skip = "no container id"
		return out
	}
	if c.State == nil || !c.State.Running {
		out.Skip = "not running"
		return out
	}
	cfg := c.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	m := newMeta(cfg.Labels, cfg.Env)
	if s, ok := m.lookup(keyPrefix + fieldIgnore); ok && ignored(s.Value) {
		out.Skip = s.Source + " is set"
		return out
	}
	hostMode := c.HostConfig != nil && c.HostConfig.NetworkMode.IsHost()
	var addrs []catalog.NetAddr
	if !hostMode {
		addrs = networkAddrs(c.NetworkSettings, opt.Networks)
	}
	if len(addrs) == 0 && !(hostMode && opt.AdvertiseIP.IsValid()) {
		if hostMode {
			out.Skip = "host network and no advertise address"
		} else {
			out.Skip = "no address on any network"
		}
		return out
	}
	b := &recordBuilder{c: c, cfg: cfg, meta: m, opt: opt, hostMode: hostMode, p: &problems{}}
	b.ctr = b.container(addrs)
	out.Record.Instances = b.instances()
	out.Record.Container = b.ctr
	out.Problems = b.p.list()
	return out
}

// recordBuilder holds what building one running container's record needs
// once convert has decided it is served.
type recordBuilder struct {
	c        container.InspectResponse
	cfg      *container.Config
	meta     meta
	opt      convertOptions
	hostMode bool
	ctr      *catalog.Container
	p        *problems
}

// container is the catalog's container row, without HostIP for a
// bridge-network container (the first published port sets it).
func (b *recordBuilder) container(addrs []catalog.NetAddr) *catalog.Container {
	ctr := &catalog.Container{
		ID:      b.c.ID,
		Node:    b.opt.Node,
		Source:  catalog.SourceDocker,
		Addrs:   addrs,
		Passing: passing(b.c.State),
	}
	// Docker's generated names (quirky_einstein) and Compose v1's
	// (project_web_1) have underscores, which a host name cannot: they are
	// answered with hyphens instead.
	rawName := strings.ReplaceAll(strings.TrimPrefix(b.c.Name, "/"), "_", "-")
	if n, err := parseLabel(rawName); err == nil {
		ctr.Name = n
	} else {
		b.p.add(err.Reason, fmt.Sprintf("container name is not a DNS label, no <name>.container record: %v", err))
	}
	// The SRV target: the name, else the short id Docker shows, which is
	// always a DNS label (hex).
	ctr.Target = cmp.Or(ctr.Name, shortID(b.c.ID))
	if b.hostMode {
		ctr.HostIP = b.opt.AdvertiseIP
	}
	return ctr
}

// instances is one instance per exposed port that has a service name, at
// most maxNames service names in all.
func (b *recordBuilder) instances() []*catalog.Instance {
	ports, dropped := exposedPorts(b.c)
	if dropped > 0 {
		b.p.add(reasonTooMany, fmt.Sprintf("%d exposed ports past the first %d left out", dropped, maxPorts))
	}
	if len(ports) == 0 {
		// A container that exposes nothing is still a service: A and AAAA
		// answer it, SRV does not (port 0).
		ports = []port{{Num: 0, Proto: catalog.ProtoTCP}}
	}
	var (
		names []string
		out   []*catalog.Instance
	)
	firstTCP := slices.IndexFunc(ports, func(pt port) bool { return pt.Proto == catalog.ProtoTCP })
	for k, pt := range ports {
		if pt.Num != 0 {
			if s, ok := b.meta.lookup(portKey(pt.Num, fieldIgnore)); ok && ignored(s.Value) {
				continue
			}
		}
		svc, ok := serviceName(b.meta, pt.Num, b.cfg.Image, b.c.Image, b.p)
		if !ok {
			continue
		}
		if !slices.Contains(names, svc) {
			if len(names) == maxNames {
				b.p.add(reasonTooMany, fmt.Sprintf("service %q for port %s left out: at most %d service names per container", svc, pt, maxNames))
				continue
			}
			names = append(names, svc)
		}
		out = append(out, b.instance(pt, svc, k == firstTCP))
	}
	// One scrape target per container: its first instance carries it.
	if len(out) > 0 {
		out[0].Metrics = metricsEndpoint(b.meta, b.p)
	}
	return out
}

// instance is the instance of service svc on port pt; firstTCP says
// whether the container's own SERVICE_PROXY_* labels apply to it.
func (b *recordBuilder) instance(pt port, svc string, firstTCP bool) *catalog.Instance {
	c, ctr := b.c, b.ctr
	inst := &catalog.Instance{
		ID:            catalog.InstanceID(c.ID, strconv.Itoa(int(pt.Num))+"/"+pt.Proto),
		Service:       svc,
		Protocol:      pt.Proto,
		Port:          pt.Num,
		Addrs:         ctr.Addrs,
		ContainerID:   c.ID,
		ContainerName: ctr.Name,
		Target:        ctr.Target,
		Node:          b.opt.Node,
		Source:        catalog.SourceDocker,
		Passing:       ctr.Passing,
	}
	if s, ok := b.meta.forPort(pt.Num, fieldTags); ok {
		tags, errs := parseTags(s.Value)
		for _, err := range errs {
			b.p.add(err.Reason, fmt.Sprintf("tag from %s dropped: %v", s.Source, err))
		}
		inst.Tags = tags
	}
	if pt.Num != 0 {
		if s, ok := b.meta.lookup(portKey(pt.Num, fieldPortName)); ok {
			if n, err := parsePortName(s.Value); err == nil {
				inst.PortName = n
			} else {
				b.p.add(err.Reason, fmt.Sprintf("port name from %s dropped: %v", s.Source, err))
			}
		}
	}
	inst.Proxy = proxyRoute(b.meta, pt, firstTCP, b.p)
	switch {
	case b.hostMode:
		inst.HostIP, inst.HostPort = b.opt.AdvertiseIP, pt.Num
	case pt.key != "" && c.NetworkSettings != nil:
		inst.HostIP, inst.HostPort = hostBinding(c.NetworkSettings.Ports[nat.Port(pt.key)], b.opt.AdvertiseIP)
	}
	if !ctr.HostIP.IsValid() && inst.Published() {
		ctr.HostIP = inst.HostIP
	}
	return inst
}

func (p port) String() string { return strconv.Itoa(int(p.Num)) + "/" + p.Proto }

// passing: running, not paused or restarting, and healthy when the
// container has a health check.
func passing(s *container.State) bool {
	if !s.Running || s.Paused || s.Restarting {
		return false
	}
	if s.Health == nil {
		return true
	}
	switch s.Health.Status {
	case container.Healthy, container.NoHealthcheck, "":
		return true
	}
	return false
}

// serviceName picks the service name of a port: SERVICE_<port>_NAME, then
// SERVICE_NAME, then the Compose service, then the image's base name. A
// value that is set but invalid rejects the port's instance; it does not
// fall through to the next source, which would answer under a name the user
// did not choose.
func serviceName(m meta, num uint16, imageRef, imageID string, p *problems) (string, bool) {
	s, ok := m.forPort(num, fieldName)
	if !ok {
		if v, found := m.labels[labelComposeSv]; found {
			s, ok = setting{Value: v, Source: "label " + labelComposeSv}, true
		}
	}
	if !ok {
		base, found := imageBaseName(imageRef, imageID)
		if !found {
			p.add(reasonNoName, fmt.Sprintf("no service name for port %d: no SERVICE_NAME, no Compose service, and the image %s has no name", num, quote(imageRef)))
			return "", false
		}
		s = setting{Value: base, Source: "image " + quote(imageRef)}
	}
	name, err := parseLabel(s.Value)
	if err != nil {
		p.add(err.Reason, fmt.Sprintf("service name from %s rejected for port %d: %v", s.Source, num, err))
		return "", false
	}
	return name, true
}

// exposedPorts returns the container's tcp and udp ports, from its config
// and its network settings, sorted, at most maxPorts of them, and how many
// more there were. SCTP and malformed keys are left out.
func exposedPorts(c container.InspectResponse) ([]port, int) {
	seen := make(map[string]bool)
	var ports []port
	addKey := func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		numStr, proto, found := strings.Cut(key, "/")
		if !found {
			proto = catalog.ProtoTCP
		}
		proto = strings.ToLower(proto)
		if proto != catalog.ProtoTCP && proto != catalog.ProtoUDP {
			return
		}
		n, err := strconv.ParseUint(numStr, 10, 16)
		if err != nil || n == 0 {
			return
		}
		ports = append(ports, port{Num: uint16(n), Proto: proto, key: key})
	}
	if c.Config != nil {
		for k := range c.Config.ExposedPorts {
			addKey(string(k))
		}
	}
	if c.NetworkSettings != nil {
		for k := range c.NetworkSettings.Ports {
			addKey(string(k))
		}
	}
	slices.SortFunc(ports, func(a, b port) int {
		return cmp.Or(cmp.Compare(a.Num, b.Num), cmp.Compare(a.Proto, b.Proto))
	})
	ports = slices.CompactFunc(ports, func(a, b port) bool { return a.Num == b.Num && a.Proto == b.Proto })
	if len(ports) > maxPorts {
		return ports[:maxPorts], len(ports) - maxPorts
	}
	return ports, 0
}

// hostBinding is the host address of the first usable binding of a port.
// A binding on every interface (0.0.0.0, ::, or none given) is answered with
// the advertise address; without one the port counts as unpublished.
func hostBinding(bindings []nat.PortBinding, advertise netip.Addr) (netip.Addr, uint16) {
	for _, b := range bindings {
		hp, err := strconv.ParseUint(b.HostPort, 10, 16)
		if err != nil || hp == 0 {
			continue
		}
		var ip netip.Addr
		switch b.HostIP {
		case "", "0.0.0.0", "::":
			ip = advertise
		default:
			a, err := netip.ParseAddr(b.HostIP)
			if err != nil {
				continue
			}
			ip = a.Unmap()
		}
		if !ip.IsValid() {
			return netip.Addr{}, 0
		}
		return ip, uint16(hp)
	}
	return netip.Addr{}, 0
}

// networkAddrs reads the container's addresses from every entry of
// NetworkSettings.Networks, sorted by network name, IPv4 before IPv6 on each,
// each with its network's id and, from nets, whether the network spans
// hosts. The legacy top-level IPAddress is never read: it is empty on
// user-defined networks (Registrator #291, #378).
func networkAddrs(ns *container.NetworkSettings, nets map[string]*catalog.Network) []catalog.NetAddr {
	if ns == nil {
		return nil
	}
	names := make([]string, 0, len(ns.Networks))
	for name := range ns.Networks {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []catalog.NetAddr
	for _, name := range names {
		ep := ns.Networks[name]
		if ep == nil {
			continue
		}
		na := catalog.NetAddr{Network: name, NetworkID: ep.NetworkID}
		if n := nets[ep.NetworkID]; n != nil && ep.NetworkID != "" {
			na.SpansHosts = n.SpansHosts
		}
		out = appendAddr(out, na, ep.IPAddress, ep.IPPrefixLen)
		out = appendAddr(out, na, ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen)
	}
	return out
}

// appendAddr appends na with the address ip/bits, when ip is one.
func appendAddr(out []catalog.NetAddr, na catalog.NetAddr, ip string, bits int) []catalog.NetAddr {
	if ip == "" {
		return out
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.IsUnspecified() {
		return out
	}
	a = a.Unmap()
	// A missing or impossible prefix length makes the address a host
	// route: a zero length would claim that every client shares the network.
	if bits <= 0 || bits > a.BitLen() {
		bits = a.BitLen()
	}
	na.Prefix = netip.PrefixFrom(a, bits)
	return append(out, na)
}

// convertNetworks maps the host's network list: each network's id, name,
// driver, whether it spans hosts (scope swarm, or global as a global-scope
// network plugin's), and its subnets. A network without an id is left out.
func convertNetworks(list []network.Summary) []catalog.Network {
	out := make([]catalog.Network, 0, len(list))
	for _, n := range list {
		if n.ID == "" {
			continue
		}
		cn := catalog.Network{ID: n.ID, Name: n.Name, Driver: n.Driver, SpansHosts: n.Scope == "swarm" || n.Scope == "global"}
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				cn.Subnets = append(cn.Subnets, p.Masked())
			}
		}
		out = append(out, cn)
	}
	return out
}

// problems collects the problems of one conversion, at most maxProblems of
// them, then a count of the rest.
type problems struct {
	items []problem
	more  int
}

func (p *problems) add(reason, detail string) {
	if len(p.items) < maxProblems {
		p.items = append(p.items, problem{Reason: reason, Detail: detail})
		return
	}
	p.more++
}

func (p *problems) list() []problem {
	if p.more == 0 {
		return p.items
	}
	return append(p.items, problem{Reason: reasonTooMany, Detail: fmt.Sprintf("%d more rejected names not shown", p.more)})
}
