package testutil

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/svcdns/svcdns/catalog"
)

// Container builds a passing Docker container owned by node, with one
// address per prefix ("172.18.0.5/16") on networks net0, net1, ... Its
// target is its name, else its id.
func Container(node, id, name string, prefixes ...string) *catalog.Container {
	c := &catalog.Container{ID: id, Name: name, Target: cmp.Or(name, id), Node: node, Source: catalog.SourceDocker, Passing: true}
	for i, p := range prefixes {
		c.Addrs = append(c.Addrs, catalog.NetAddr{Network: fmt.Sprintf("net%d", i), Prefix: netip.MustParsePrefix(p)})
	}
	return c
}

// Instance builds an instance of c for service svc on port, tcp, as the
// watcher does: the container's identity, owner, addresses and health
// (see Own). mods run after those are set and before the id is made.
func Instance(c *catalog.Container, svc string, port uint16, mods ...func(*catalog.Instance)) *catalog.Instance {
	i := &catalog.Instance{Service: svc, Protocol: catalog.ProtoTCP, Port: port, Passing: c.Passing}
	takeFrom(c, i)
	for _, m := range mods {
		m(i)
	}
	setID(c, i)
	return i
}

// Own fills in what instances take from their container c, as the
// watcher writes them: ContainerID, ContainerName, Target, Source and
// Node, the container's addresses and tcp when unset, and, when no ID is
// set, the watcher's id catalog.InstanceID(c.ID, "<port>/<proto>"). It
// returns insts.
func Own(c *catalog.Container, insts ...*catalog.Instance) []*catalog.Instance {
	for _, i := range insts {
		takeFrom(c, i)
		setID(c, i)
	}
	return insts
}

func takeFrom(c *catalog.Container, i *catalog.Instance) {
	i.ContainerID, i.ContainerName, i.Target, i.Source, i.Node = c.ID, c.Name, c.Target, c.Source, c.Node
	if i.Protocol == "" {
		i.Protocol = catalog.ProtoTCP
	}
	if i.Addrs == nil {
		i.Addrs = c.Addrs
	}
}

func setID(c *catalog.Container, i *catalog.Instance) {
	if i.ID == "" {
		i.ID = catalog.InstanceID(c.ID, strconv.Itoa(int(i.Port))+"/"+i.Protocol)
	}
}

// APIInstance builds a passing instance as the HTTP API registers it: at
// addr (also its published address, so every address mode answers it),
// in a container row of its own named id.
func APIInstance(id, svc, addr string, port uint16, mods ...func(*catalog.Instance)) *catalog.Instance {
	a := netip.MustParseAddr(addr)
	i := &catalog.Instance{
		ID: id, Service: svc, Protocol: catalog.ProtoTCP, Port: port,
		Addrs:  []catalog.NetAddr{{Prefix: netip.PrefixFrom(a, a.BitLen())}},
		HostIP: a, HostPort: port,
		ContainerID: catalog.APIContainerID(id), ContainerName: id, Target: id,
		Source: catalog.SourceAPI, Passing: true,
	}
	for _, m := range mods {
		m(i)
	}
	return i
}
