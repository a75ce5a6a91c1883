package catalog

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Source says who registered an object. A source only ever replaces or
// deletes what it registered itself.
type Source string

const (
	// SourceDocker marks objects that a Docker watcher derived from containers.
	SourceDocker Source = "docker"
	// SourceAPI marks instances registered over the HTTP API; they may expire.
	SourceAPI Source = "api"
)

// Protocols an instance's port may have.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// Sentinel errors, to be tested with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	// ErrConflict is a write that would take over what another source owns.
	ErrConflict = errors.New("conflict")
)

// NetAddr is one address of a container on one network. Prefix holds the
// address together with the network's prefix length (172.18.0.5/16, not
// masked), so a client's address can be matched against the network.
type NetAddr struct {
	Network string
	Prefix  netip.Prefix
	// NetworkID is the Docker network's id; "" when unknown (an API
	// instance, or a record from before svcdns read network ids).
	NetworkID string
	// SpansHosts says the network spans Docker hosts (scope swarm or
	// global: an overlay), so that the address reaches the container from
	// every host on that network, not only from its own. Such networks'
	// subnets come from the host's network list (see Network), not from
	// the addresses: a peer's claim never widens what this node serves.
	SpansHosts bool
}

// Addr is the container's own address on the network.
func (a NetAddr) Addr() netip.Addr { return a.Prefix.Addr() }

// Contains reports whether ip (IPv4-mapped or not) is on this network.
func (a NetAddr) Contains(ip netip.Addr) bool {
	return a.Prefix.IsValid() && a.Prefix.Bits() < a.Prefix.Addr().BitLen() && a.Prefix.Masked().Contains(ip.Unmap())
}

// Container is what an SRV target and a <target>.container.<zone> name
// resolve to: a Docker container, or, for an instance registered through the
// API, the instance itself (ID "api/<instance id>", Name and Target the
// instance id).
//
// Objects handed to the catalog belong to it afterwards and objects returned
// by reads are shared: neither may be modified.
type Container struct {
	ID   string
	Name string // a lower-case DNS label, or "" when the container's name is not one
	// Target is the container's name under container.<zone>, the SRV
	// target of its instances and the PTR of its addresses: lower-case
	// DNS labels joined by dots (see ValidTarget), most often one. The
	// writer decides it (the watcher: the name, else the short id; the
	// API: the instance id) and may qualify it with more labels, such as
	// its node's, to keep it unique across writers.
	Target string
	Node   string // the Docker host or svcdns node that owns it
	Source Source
	Addrs  []NetAddr  // one per network and address family
	HostIP netip.Addr // the Docker host's address, when a port is published or the network mode is host
	// Passing is false while the container is paused or its health check is
	// not healthy; such a container is kept but not answered.
	Passing bool
}

// Instance is one reachable endpoint of a service: a (container, port)
// pair, with the container's address on each of its networks and the
// published host address, or one instance registered through the API.
//
// Objects handed to the catalog belong to it afterwards and objects returned
// by reads are shared: neither may be modified.
//
// An instance's ID is unique in the catalog and says where it lives: the
// instance of a container has the id "<container id>:<anything>" (the
// watcher uses "<container id>:<port>/<proto>"), and an instance
// registered through the API has the container row "api/<id>" of its own.
// The catalog finds instances by id that way, with no index of its own.
type Instance struct {
	// ID is unique in the catalog and says where the instance lives (see
	// above).
	ID       string
	Service  string   // a lower-case DNS label
	Tags     []string // lower-case DNS labels; <tag>.<service> queries select on them
	Protocol string   // ProtoTCP or ProtoUDP
	// Port is the port inside the container, which clients on a network
	// the container shares reach; 0 for a container that exposes none
	// (it then has addresses but no SRV record).
	Port     uint16
	PortName string    // optional name for _<name>._<proto> queries
	Addrs    []NetAddr // the container's addresses, one per network and family
	// HostIP and HostPort are where the Docker host publishes Port: what
	// a client on no shared network reaches. Both zero when not published.
	HostIP   netip.Addr
	HostPort uint16

	ContainerID   string // the container row the instance lives in
	ContainerName string // the container's name ("" when it is not a DNS label); the API instance id for an API instance
	Target        string // its container's Target: the SRV target is <Target>.container.<zone>
	Node          string // the Docker host or svcdns node that owns the instance
	Source        Source
	// Passing is false while the instance must not be answered: its
	// container is paused or not healthy. It stays in the catalog.
	Passing bool
	// TTL is the lease an API instance was registered with: its client
	// registers it again (a heartbeat) within TTL to keep it. Zero: no
	// lease. The catalog stores and compares it but does not act on it;
	// Expires is what it acts on.
	TTL time.Duration
	// Expires is when RunExpiry removes the instance: the writer sets it
	// to the registration (or heartbeat) time plus TTL. Zero: never. A
	// write that moves only Expires changes no answer and wakes no long
	// poll.
	Expires time.Time
	// Proxy is where the HTTP proxy routes to the instance besides its
	// service's own host name; nil: no such route.
	Proxy *ProxyRoute
	// Metrics is where the instance serves Prometheus metrics, for the
	// API's Prometheus service discovery; nil: not opted in.
	Metrics *MetricsEndpoint
}

// HasTag reports whether the instance carries tag (already lower-case).
func (i *Instance) HasTag(tag string) bool { return slices.Contains(i.Tags, tag) }

// Published reports whether the instance has a published host address.
func (i *Instance) Published() bool { return i.HostIP.IsValid() && i.HostPort != 0 }

// HostReachable is the instance's address that its own host reaches:
// the first on a network that does not span hosts (a bridge, which the
// host routes to), IPv4 before IPv6. A network that spans hosts (an
// overlay) is reached only from inside it, never from a host's own
// namespace. ok is false when there is none: a host-network container,
// one only on overlays, or another node's container (a peer sends only
// overlay addresses). An API instance's registered address counts.
func (i *Instance) HostReachable() (a NetAddr, ok bool) {
	for _, na := range i.Addrs {
		switch ip := na.Addr(); {
		case na.SpansHosts || !ip.IsValid():
		case ip.Is4():
			return na, true
		case !ok:
			a, ok = na, true
		}
	}
	return a, ok
}

func (i *Instance) validate() error {
	switch {
	case i.ID == "":
		return fmt.Errorf("%w instance: empty id", ErrInvalid)
	case !ValidLabel(i.Service):
		return fmt.Errorf("%w instance %s: service name %q is not a lower-case DNS label", ErrInvalid, i.ID, i.Service)
	case i.Protocol != ProtoTCP && i.Protocol != ProtoUDP:
		return fmt.Errorf("%w instance %s: protocol %q is neither tcp nor udp", ErrInvalid, i.ID, i.Protocol)
	case i.Source == "":
		return fmt.Errorf("%w instance %s: no source", ErrInvalid, i.ID)
	}
	if i.Source == SourceAPI && i.ContainerID != APIContainerID(i.ID) {
		return fmt.Errorf("%w instance %s: container %q, an API instance's is %q", ErrInvalid, i.ID, i.ContainerID, APIContainerID(i.ID))
	}
	if i.Source != SourceAPI && !inContainer(i.ID, i.ContainerID) {
		return fmt.Errorf("%w instance %s: id does not start with its container's id %q and a colon", ErrInvalid, i.ID, i.ContainerID)
	}
	if err := i.Proxy.validate(i.ID); err != nil {
		return err
	}
	if err := i.Metrics.validate(i.ID); err != nil {
		return err
	}
	if i.PortName != "" && !ValidLabel(i.PortName) {
		return fmt.Errorf("%w instance %s: port name %q is not a lower-case DNS label", ErrInvalid, i.ID, i.PortName)
	}
	for _, t := range i.Tags {
		if !ValidLabel(t) {
			return fmt.Errorf("%w instance %s: tag %q is not a lower-case DNS label", ErrInvalid, i.ID, t)
		}
	}
	return nil
}

// inContainer reports whether id starts with ctrID and a colon, without
// building that string (a Docker id is too long for the stack's buffer).
func inContainer(id, ctrID string) bool {
	return len(id) > len(ctrID) && id[len(ctrID)] == ':' && id[:len(ctrID)] == ctrID
}

func (c *Container) validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w container: empty id", ErrInvalid)
	case c.Name != "" && !ValidLabel(c.Name):
		return fmt.Errorf("%w container %s: name %q is not a lower-case DNS label", ErrInvalid, c.ID, c.Name)
	case !ValidTarget(c.Target):
		return fmt.Errorf("%w container %s: target %q is not lower-case DNS labels joined by dots", ErrInvalid, c.ID, c.Target)
	case c.Source == "":
		return fmt.Errorf("%w container %s: no source", ErrInvalid, c.ID)
	}
	return nil
}

// MaxLabelLen is the longest DNS label (RFC 1035).
const MaxLabelLen = 63

// ValidLabel reports whether s is a lower-case RFC 1123 DNS label: 1 to 63
// bytes of a-z, 0-9 and '-', neither starting nor ending with '-'.
func ValidLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxLabelLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxTargetLen bounds a Target, so that <target>.container.<zone> stays
// within a DNS name's 255 bytes for any reasonable zone.
const MaxTargetLen = 128

// ValidTarget reports whether s is one or more lower-case DNS labels (see
// ValidLabel) joined by dots, at most MaxTargetLen bytes.
func ValidTarget(s string) bool {
	if len(s) > MaxTargetLen {
		return false
	}
	for {
		label, rest, more := strings.Cut(s, ".")
		if !ValidLabel(label) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// NormalizeLabel lower-cases s and checks that it is one DNS label. The error
// says what is wrong, for a log line or an HTTP 400.
func NormalizeLabel(s string) (string, error) {
	const show = 64 // never echo a huge value back
	quoted := s
	if len(quoted) > show {
		quoted = quoted[:show] + "…"
	}
	for i := 0; i < len(s); i++ {
		// Checked before lower-casing: strings.ToLower maps some non-ASCII
		// runes (U+212A KELVIN SIGN) to ASCII letters, which would let a
		// look-alike name pass as "kube".
		if s[i] >= 0x80 || s[i] == 0 {
			return "", fmt.Errorf("%w name %q: only letters, digits and inner hyphens are allowed (RFC 1123), found a non-ASCII or NUL byte", ErrInvalid, quoted)
		}
	}
	l := strings.ToLower(s)
	switch {
	case l == "":
		return "", fmt.Errorf("%w name: empty", ErrInvalid)
	case len(l) > MaxLabelLen:
		return "", fmt.Errorf("%w name %q: %d bytes, a DNS label has at most %d", ErrInvalid, quoted, len(l), MaxLabelLen)
	case strings.Contains(l, "."):
		return "", fmt.Errorf("%w name %q: contains a dot, a name must be a single DNS label", ErrInvalid, quoted)
	case !ValidLabel(l):
		return "", fmt.Errorf("%w name %q: only letters, digits and inner hyphens are allowed (RFC 1123)", ErrInvalid, quoted)
	}
	return l, nil
}

// sameContainer reports whether two containers are equal, field by field:
// reflect.DeepEqual took a quarter of a write's time.
func sameContainer(a, b *Container) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Target == b.Target && a.Node == b.Node && a.Source == b.Source &&
		a.HostIP == b.HostIP && a.Passing == b.Passing && slices.Equal(a.Addrs, b.Addrs)
}

// sameInstance reports whether two instances are equal but for, when
// ignoreExpiry is set, their expiry times.
func sameInstance(a, b *Instance, ignoreExpiry bool) bool {
	return a.ID == b.ID && a.Service == b.Service && slices.Equal(a.Tags, b.Tags) &&
		a.Protocol == b.Protocol && a.Port == b.Port && a.PortName == b.PortName &&
		slices.Equal(a.Addrs, b.Addrs) && a.HostIP == b.HostIP && a.HostPort == b.HostPort &&
		a.ContainerID == b.ContainerID && a.ContainerName == b.ContainerName && a.Target == b.Target &&
		a.Node == b.Node && a.Source == b.Source && a.Passing == b.Passing && a.TTL == b.TTL &&
		sameProxy(a.Proxy, b.Proxy) && sameMetrics(a.Metrics, b.Metrics) && (ignoreExpiry || a.Expires.Equal(b.Expires))
}

// instancesByID returns a lookup of insts by id, and an id that appears
// more than once ("" when none does): a scan for a few instances, a map for
// a published port range (thousands of them).
func instancesByID(insts []*Instance) (byID func(id string) *Instance, dup string) {
	if len(insts) <= 16 {
		for k, i := range insts {
			for _, o := range insts[:k] {
				if o.ID == i.ID {
					dup = i.ID
				}
			}
		}
		return func(id string) *Instance {
			for _, i := range insts {
				if i.ID == id {
					return i
				}
			}
			return nil
		}, dup
	}
	m := make(map[string]*Instance, len(insts))
	for _, i := range insts {
		if _, ok := m[i.ID]; ok {
			dup = i.ID
			continue
		}
		m[i.ID] = i
	}
	return func(id string) *Instance { return m[id] }, dup
}

// sameInstances compares a container's instances before and after a
// write, in any order: same says nothing changed, renewed that only expiry
// times did.
func sameInstances(old, new []*Instance) (same, renewed bool) {
	if len(old) != len(new) {
		return false, false
	}
	byID, _ := instancesByID(old)
	same = true
	for _, n := range new {
		o := byID(n.ID)
		if o == nil || !sameInstance(o, n, true) {
			return false, false
		}
		same = same && o.Expires.Equal(n.Expires)
	}
	return same, !same
}
