package watcher

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/svcdns/svcdns/catalog"
)

// FuzzEventToInstances feeds random label and env values, names, ports,
// bindings and addresses through the event -> inspect -> instances path:
// it never panics, and whatever it produces the catalog accepts.
func FuzzEventToInstances(f *testing.F) {
	f.Add("books-ms", "a,B,,c", "http", "", "vfarcic/books-ms:1.2", "books-1", "SERVICE_8080_NAME=x", uint16(8080), "tcp", "0.0.0.0", "8080", "10.0.0.5", 24, ctrID(1))
	f.Add("v1.books-ms", "service,container,*", "80", "1", "sha256:abc", "Bad_Name", "SERVICE_NAME", uint16(0), "sctp", "::", "0", "fd00::1", 200, "../x")
	f.Add("\u212Aube", strings.Repeat("t,", 200), "\x00", "false", "registry:5000/a/b@sha256:00", "", "=", uint16(65535), "UDP", "not-an-ip", "99999", "::ffff:1.2.3.4", -1, "")
	f.Add(strings.Repeat("a", 300), "ok", strings.Repeat("p", 64), "0", ":", "/", "SERVICE_IGNORE=", uint16(53), "udp", "127.0.0.1", "53", "0.0.0.0", 0, ctrID(2)[:12])
	base := fixture(f, "multiport")
	f.Fuzz(func(t *testing.T, name, tags, portName, ignore, image, ctrName, env string, port uint16, proto, hostIP, hostPort, ip string, bits int, actorID string) {
		for _, typ := range []events.Type{events.ContainerEventType, events.NetworkEventType} {
			id := decodeEvent(events.Message{Type: typ, Action: "connect", Actor: events.Actor{ID: actorID, Attributes: map[string]string{"container": actorID}}}).id
			if id != "" && !isContainerID(id) {
				t.Fatalf("event gave container id %q", id)
			}
		}

		c := clone(&base)
		c.Name = "/" + ctrName
		c.Config.Image = image
		c.Config.Labels = map[string]string{
			"SERVICE_NAME": name,
			"SERVICE_TAGS": tags,
			fmt.Sprintf("SERVICE_%d_PORT_NAME", port): portName,
			fmt.Sprintf("SERVICE_%d_IGNORE", port):    ignore,
		}
		c.Config.Env = append(c.Config.Env, env, "SERVICE_"+name+"_NAME="+tags)
		key := nat.Port(fmt.Sprintf("%d/%s", port, proto))
		c.Config.ExposedPorts[key] = struct{}{}
		c.NetworkSettings.Ports[key] = []nat.PortBinding{{HostIP: hostIP, HostPort: hostPort}}
		c.NetworkSettings.Networks["fuzz"] = &network.EndpointSettings{IPAddress: ip, IPPrefixLen: bits, GlobalIPv6Address: ip, GlobalIPv6PrefixLen: bits}
		for _, adv := range []netip.Addr{testAdvertise, {}} {
			got := convert(c, convertOptions{Node: testNode, AdvertiseIP: adv})
			checkRecord(t, got)
			if got.Skip != "" {
				continue
			}
			for _, a := range got.Record.Container.Addrs {
				if !a.Prefix.IsValid() || a.Prefix.Bits() == 0 {
					t.Fatalf("address %v would contain every client", a.Prefix)
				}
			}
			for _, inst := range got.Record.Instances {
				for _, tag := range inst.Tags {
					if reservedNames[tag] {
						t.Fatalf("reserved tag %q", tag)
					}
				}
				if inst.PortName != "" && strings.Trim(inst.PortName, "0123456789") == "" {
					t.Fatalf("numeric port name %q", inst.PortName)
				}
			}
		}
	})
}

// FuzzServiceName checks the label -> name rule on its own: an accepted
// value becomes one lower-case RFC 1123 label that is not one of the zone's
// own names, equal to the value but for case; a rejected one says why in a
// known metric reason.
func FuzzServiceName(f *testing.F) {
	for _, s := range []string{"books-ms", "Books-MS", "v1.books-ms", "service", "container", "*", "", "..", "-a", "a-",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a.", 127), "a\x00b", "\u212Aube", "_tcp", "ümlaut"} {
		f.Add(s)
	}
	reasons := map[string]bool{reasonEmpty: true, reasonTooLong: true, reasonDotted: true, reasonInvalid: true, reasonReserved: true}
	f.Fuzz(func(t *testing.T, v string) {
		name, err := parseLabel(v)
		if err != nil {
			if !reasons[err.Reason] || err.Error() == "" {
				t.Fatalf("rejected %q with reason %q: %v", v, err.Reason, err)
			}
			if name != "" {
				t.Fatalf("rejected %q but returned %q", v, name)
			}
			return
		}
		if !catalog.ValidLabel(name) || reservedNames[name] || !strings.EqualFold(name, v) || len(name) != len(v) {
			t.Fatalf("%q accepted as %q", v, name)
		}
	})
}
