package watcher

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"

	"github.com/svcdns/svcdns/catalog"
)

// The ids of the scripted engine's networks: a swarm node lists an
// attachable overlay with scope "swarm" and driver "overlay".
const (
	bridgeID = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1"
	ovID     = "q7x9k2m4n6p8r0t1v3w5y7z9a"
	ov2ID    = "c4d6f8h0j2l4n6p8r0t2v4x6z"
)

// addrsOf renders the addresses of the container named name as
// "network=address[/spans]", sorted.
func (h *harness) addrsOf(name string) string {
	h.t.Helper()
	ctrs, err := h.cat.Containers(catalog.SourceDocker, testNode)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range ctrs {
		if c.Name != name {
			continue
		}
		var out []string
		for _, a := range c.Addrs {
			s := a.Network + "=" + a.Prefix.String()
			if a.SpansHosts {
				s += " spans(" + a.NetworkID + ")"
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	return "(absent)"
}

// TestOverlayNetworks: the watcher reads each network's scope from the
// network list, marks the addresses on networks that span hosts, writes
// the networks to the catalog, and lists them again on a network's create
// or removal, before the inspects that follow.
func TestOverlayNetworks(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.addNetwork(bridgeID, "bridge", "bridge", "local", "172.17.0.0/16")
	h.e.addNetwork(ovID, "ov", "overlay", "swarm", "10.0.9.0/24")
	web, db := newCtr(1, "web"), newCtr(2, "db")
	h.e.run(web)
	h.e.run(db)
	h.e.attach(web.ID, "bridge", bridgeID, "172.17.0.2", 16)
	h.e.attach(web.ID, "ov", ovID, "10.0.9.5", 24)
	h.start()
	h.waitSynced()
	if got, want := h.addrsOf("web"), "bridge=172.17.0.2/16, ov=10.0.9.5/24 spans("+ovID+")"; got != want {
		t.Errorf("web: %s, want %s", got, want)
	}
	if got, want := h.addrsOf("db"), "bridge=172.17.0.4/16"; got != want {
		t.Errorf("db: %s, want %s", got, want)
	}
	if n := h.cat.Network(ovID); n == nil || !n.SpansHosts || n.Driver != "overlay" || fmt.Sprint(n.Subnets) != "[10.0.9.0/24]" {
		t.Errorf("catalog network %s: %+v", ovID, n)
	}
	if n := h.cat.Network(bridgeID); n == nil || n.SpansHosts {
		t.Errorf("catalog network %s: %+v, want a local one", bridgeID, n)
	}

	// A new overlay, and db joins it: the create event comes first, so
	// db's inspect after its connect event already knows the network.
	h.e.addNetwork(ov2ID, "ov2", "overlay", "swarm", "10.0.10.0/24")
	if err := h.e.emit(events.NetworkEventType, "create", ov2ID); err != nil {
		t.Fatal(err)
	}
	h.e.attach(db.ID, "ov2", ov2ID, "10.0.10.7", 24)
	if err := h.e.emit(events.NetworkEventType, "connect", ov2ID, "container", db.ID); err != nil {
		t.Fatal(err)
	}
	h.barrier()
	if got, want := h.addrsOf("db"), "bridge=172.17.0.4/16, ov2=10.0.10.7/24 spans("+ov2ID+")"; got != want {
		t.Errorf("db after joining ov2: %s, want %s", got, want)
	}
	if !slices.Contains(h.cat.Networks(), netip.MustParsePrefix("10.0.10.0/24")) {
		t.Errorf("Networks() = %v, want ov2's subnet in it", h.cat.Networks())
	}

	// The overlay removed (after db left it): gone from the catalog too.
	h.e.mutate(db.ID, func(c *container.InspectResponse) { delete(c.NetworkSettings.Networks, "ov2") })
	h.e.set(func(map[string]*container.InspectResponse) { delete(h.e.nets, ov2ID) })
	if err := h.e.emit(events.NetworkEventType, "disconnect", ov2ID, "container", db.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.e.emit(events.NetworkEventType, "destroy", ov2ID); err != nil {
		t.Fatal(err)
	}
	h.barrier()
	h.waitFor("ov2 gone from the catalog", func() bool { return h.cat.Network(ov2ID) == nil })
}

// TestNetworkListRefused: a network list that fails fails no sync: every
// network counts as local. A list refused by policy (a socket proxy
// without NETWORKS=1 answers 403) is the list's own story, one line, and
// is not retried before the next sync. One refused as an overloaded
// endpoint refuses is the endpoint's, told by its failing and recovered
// lines, and retried on its own with backoff, like a failed inspect.
func TestNetworkListRefused(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		listFailed    int // WARN lines "docker network list failed:"
		endpointLines int // "docker endpoint failing" lines, and then as many "recovered"
	}{
		{name: "403 by a read-only proxy", err: errors.New("Error response from daemon: 403 Forbidden"), listFailed: 1},
		{name: "refused connection", err: causeErrs[causeRefused], endpointLines: 1},
		{name: "5xx", err: causeErrs[causeServer], endpointLines: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.w.tunables.retryMin, h.w.tunables.retryMax = 5*time.Millisecond, 10*time.Millisecond
			h.w.endpoint.quiet = time.Millisecond
			h.e.addNetwork(ovID, "ov", "overlay", "swarm", "10.0.9.0/24")
			h.e.mu.Lock()
			h.e.netsErr = tt.err
			h.e.mu.Unlock()
			web := newCtr(1, "web")
			h.e.run(web)
			h.e.attach(web.ID, "ov", ovID, "10.0.9.5", 24)
			h.start()
			h.waitSynced()
			if got, want := h.addrsOf("web"), "bridge=172.17.0.3/16, ov=10.0.9.5/24"; got != want {
				t.Errorf("web: %s, want %s (the network list failed: every network local)", got, want)
			}
			lines := func(s string) int { return strings.Count(h.logs.String(), s) }
			if n := lines("docker network list failed:"); n != tt.listFailed {
				t.Errorf("%d WARN lines say the network list failed, want %d:\n%s", n, tt.listFailed, h.logs)
			}
			if n := lines("docker endpoint failing"); n != tt.endpointLines {
				t.Errorf("%d lines say the endpoint is failing, want %d:\n%s", n, tt.endpointLines, h.logs)
			}
			if tt.endpointLines == 0 {
				h.barrier()
				if h.e.mu.Lock(); h.e.netLists != 1 {
					t.Errorf("%d network lists, want 1: a list refused by policy waits for the next sync", h.e.netLists)
				}
				h.e.mu.Unlock()
				return
			}
			// The endpoint behaves again: the list's retry, with no event
			// asking for it, finds the overlay, and the recovery is told.
			h.waitFor("a retry of the network list", func() bool { h.e.mu.Lock(); defer h.e.mu.Unlock(); return h.e.netLists >= 2 })
			h.e.mu.Lock()
			h.e.netsErr = nil
			h.e.mu.Unlock()
			h.waitFor("the overlay listed", func() bool { return h.cat.Network(ovID) != nil })
			// web was mapped while the list failed: a full sync maps it again.
			h.waitFor("web remapped", func() bool {
				return h.addrsOf("web") == "bridge=172.17.0.3/16, ov=10.0.9.5/24 spans("+ovID+")"
			})
			// Counted just after the sync's write that the view saw.
			h.waitFor("the networks resync counted", func() bool { return h.metric(h.w.met.resyncs.WithLabelValues(syncNetworks)) >= 1 })
			h.waitFor("the recovery line", func() bool { return lines("docker endpoint recovered") == tt.endpointLines })
			if n := lines("docker endpoint failing"); n != tt.endpointLines {
				t.Errorf("%d lines say the endpoint is failing, want %d:\n%s", n, tt.endpointLines, h.logs)
			}
			if n := h.metric(h.w.met.resyncs.WithLabelValues(syncNetworks)); n != 1 {
				t.Errorf("%v resyncs for the networks, want 1", n)
			}
		})
	}
}

// convert marks an address on a network that spans hosts, by the
// network's id in the endpoint, as the network list gave it; a network
// the list did not have, or an endpoint without an id, counts as local.
func TestConvertOverlay(t *testing.T) {
	c := fixture(t, "bridge")
	c.NetworkSettings.Networks["ov"] = &network.EndpointSettings{NetworkID: ovID, IPAddress: "10.0.9.5", IPPrefixLen: 24}
	c.NetworkSettings.Networks["gone"] = &network.EndpointSettings{NetworkID: ov2ID, IPAddress: "10.0.10.5", IPPrefixLen: 24}
	c.NetworkSettings.Networks["noid"] = &network.EndpointSettings{IPAddress: "10.0.11.5", IPPrefixLen: 24}
	nets := convertNetworks([]network.Summary{
		{ID: ovID, Name: "ov", Driver: "overlay", Scope: "swarm", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.9.0/24"}, {Subnet: "fd00:9::/64"}}}},
		{ID: "g", Name: "plugin-net", Driver: "weave", Scope: "global"},
		{ID: "l", Name: "bridge", Driver: "bridge", Scope: "local", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "not a subnet"}}}},
		{Name: "no id"},
	})
	if got := fmt.Sprintf("%+v", nets); got != "[{ID:"+ovID+" Name:ov Driver:overlay SpansHosts:true Subnets:[10.0.9.0/24 fd00:9::/64]} {ID:g Name:plugin-net Driver:weave SpansHosts:true Subnets:[]} {ID:l Name:bridge Driver:bridge SpansHosts:false Subnets:[]}]" {
		t.Errorf("convertNetworks: %s", got)
	}
	byID := map[string]*catalog.Network{}
	for i := range nets {
		byID[nets[i].ID] = &nets[i]
	}
	got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise, Networks: byID})
	var spans []string
	for _, a := range got.Record.Instances[0].Addrs {
		if a.SpansHosts {
			spans = append(spans, a.Network+"="+a.Addr().String()+"@"+a.NetworkID)
		}
	}
	if want := []string{"ov=10.0.9.5@" + ovID}; !slices.Equal(spans, want) {
		t.Errorf("addresses spanning hosts %v, want %v", spans, want)
	}
}
