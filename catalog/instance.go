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
}

// Addr is the container's own address on the network.
func (a NetAddr) Addr() netip.Addr { return a.Prefix.Addr() }

// Contains reports whether ip (IPv4-mapped or not) is on this network.
func (a NetAddr) Contains(ip netip.Addr) bool {
	return a.Prefix.IsValid() && a.Prefix.Bits() < a.Prefix.Addr().BitLen() && a.Prefix.Masked().Contains(ip.Unmap())
}

// Container is what an SRV target and a <name>.container.<zone> name resolve
// to: a Docker container, or, for an instance registered through the API, the
// instance itself (ID "api/<instance id>", Name the instance id).
//
// Objects handed to the catalog belong to it afterwards and objects returned
// by reads are shared: neither may be modified.
type Container struct {
	ID     string
	Name   string // a lower-case DNS label, or "" when the container's name is not one
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
	ID       string
	Service  string   // a lower-case DNS label
	Tags     []string // lower-case DNS labels
	Protocol string   // ProtoTCP or ProtoUDP
	Port     uint16   // the container's port; 0 for a container that exposes none
	PortName string   // optional name for _<name>._<proto> queries
	Addrs    []NetAddr
	HostIP   netip.Addr // published host address, zero when not published
	HostPort uint16

	ContainerID   string
	ContainerName string // the SRV target label (container name, or API id)
	Node          string
	Source        Source
	Passing       bool
	Expires       time.Time // zero: never; API instances with a TTL expire
	TTL           time.Duration
}

// HasTag reports whether the instance carries tag (already lower-case).
func (i *Instance) HasTag(tag string) bool { return slices.Contains(i.Tags, tag) }

// Published reports whether the instance has a published host address.
func (i *Instance) Published() bool { return i.HostIP.IsValid() && i.HostPort != 0 }

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
	if i.Source == SourceAPI && i.ContainerID != apiContainerPrefix+i.ID {
		return fmt.Errorf("%w instance %s: container %q, an API instance's is %q", ErrInvalid, i.ID, i.ContainerID, apiContainerPrefix+i.ID)
	}
	if i.Source != SourceAPI && !strings.HasPrefix(i.ID, i.ContainerID+":") {
		return fmt.Errorf("%w instance %s: id does not start with its container's id %q and a colon", ErrInvalid, i.ID, i.ContainerID)
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

func (c *Container) validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w container: empty id", ErrInvalid)
	case c.Name != "" && !ValidLabel(c.Name):
		return fmt.Errorf("%w container %s: name %q is not a lower-case DNS label", ErrInvalid, c.ID, c.Name)
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
	return a.ID == b.ID && a.Name == b.Name && a.Node == b.Node && a.Source == b.Source &&
		a.HostIP == b.HostIP && a.Passing == b.Passing && slices.Equal(a.Addrs, b.Addrs)
}

// sameInstance reports whether two instances are equal but for, when
// ignoreExpiry is set, their expiry times.
func sameInstance(a, b *Instance, ignoreExpiry bool) bool {
	return a.ID == b.ID && a.Service == b.Service && slices.Equal(a.Tags, b.Tags) &&
		a.Protocol == b.Protocol && a.Port == b.Port && a.PortName == b.PortName &&
		slices.Equal(a.Addrs, b.Addrs) && a.HostIP == b.HostIP && a.HostPort == b.HostPort &&
		a.ContainerID == b.ContainerID && a.ContainerName == b.ContainerName &&
		a.Node == b.Node && a.Source == b.Source && a.Passing == b.Passing && a.TTL == b.TTL &&
		(ignoreExpiry || a.Expires.Equal(b.Expires))
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
