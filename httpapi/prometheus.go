package httpapi

import (
	"cmp"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// SDGroup is one element of GET /v1/prometheus, Prometheus's HTTP service
// discovery format (http_sd_configs): one target with its labels.
type SDGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Prometheus discovery modes (Config.PrometheusSD, --prometheus-sd).
const (
	// SDLabels lists the instances that opted in with
	// SERVICE_METRICS_PORT (or the PUT body's metrics object).
	SDLabels = "labels"
	// SDAll lists, besides those, every other TCP instance at its own
	// port, path /metrics.
	SDAll = "all"
)

// Address kinds: __meta_svcdns_address_kind says which address of the
// instance a target is.
const (
	sdContainer   = "container"    // its address on a network its host routes to (a bridge)
	sdHostNetwork = "host-network" // its host's address: it shares the host's network
	sdPublished   = "published"    // its host's address and the port published for the metrics port
	sdOverlay     = "overlay"      // its address on a network that spans hosts
	sdRegistered  = "registered"   // an API instance's address
)

// GET /v1/prometheus: every scrape target, as Prometheus's http_sd_configs
// reads it. Meta labels follow Consul's and Docker's SD (tags joined by
// commas, with a comma at each end, so a regex can match ",v1,").
func (a *API) handlePrometheusSD(w http.ResponseWriter, r *http.Request) {
	idx, svcs := a.cat.Services(nil)
	var all []*catalog.Instance
	for _, s := range svcs {
		_, insts, err := a.cat.Service(nil, catalog.ServiceQuery{Service: s.Name})
		if err != nil {
			a.internalError(w, r, err)
			return
		}
		all = append(all, insts...)
	}
	pub := publishedPorts(all)
	out := []SDGroup{}
	seen := map[string]bool{}
	for _, in := range all {
		g, ok := a.sdGroup(in, pub)
		if !ok {
			continue
		}
		key := g.Targets[0] + g.Labels["__metrics_path__"]
		if seen[key] {
			continue // one container serving several services once
		}
		seen[key] = true
		out = append(out, g)
	}
	slices.SortFunc(out, func(x, y SDGroup) int {
		return cmp.Or(cmp.Compare(x.Labels["__meta_svcdns_service"], y.Labels["__meta_svcdns_service"]), cmp.Compare(x.Targets[0], y.Targets[0]))
	})
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, out)
}

// ctrPort is a container's TCP port.
type ctrPort struct {
	ctr  string
	port uint16
}

// publishedPorts is where each container's TCP ports are published, from
// its instances: the metrics port is often another port of the container
// than the instance that carries it.
func publishedPorts(insts []*catalog.Instance) map[ctrPort]netip.AddrPort {
	m := map[ctrPort]netip.AddrPort{}
	for _, in := range insts {
		if in.Protocol == catalog.ProtoTCP && in.Published() {
			m[ctrPort{in.ContainerID, in.Port}] = netip.AddrPortFrom(in.HostIP, in.HostPort)
		}
	}
	return m
}

// sdTarget is where Prometheus scrapes in's metrics port, which address
// that is (an sd* kind) and its network's name. Prometheus runs on a
// Docker host or on a bridge, so: a container of this node at its address
// on a bridge (published or not: this host reaches it), else at its
// host's address when it is on the host network; any container at its
// published metrics port; else, with only an overlay address (the one
// address a peer sends), at that address, which only a Prometheus on the
// overlay reaches, kind "overlay" saying so. ok is false when there is
// none of these (another node's container on a bridge, unpublished).
func (a *API) sdTarget(in *catalog.Instance, port uint16, pub map[ctrPort]netip.AddrPort) (target netip.AddrPort, kind, network string, ok bool) {
	if in.Source == catalog.SourceAPI {
		if len(in.Addrs) == 0 {
			return netip.AddrPort{}, "", "", false
		}
		return netip.AddrPortFrom(in.Addrs[0].Addr(), port), sdRegistered, "", true
	}
	if in.Node == a.node {
		if na, ok := in.HostReachable(); ok {
			return netip.AddrPortFrom(na.Addr(), port), sdContainer, na.Network, true
		}
		if len(in.Addrs) == 0 && in.HostIP.IsValid() {
			return netip.AddrPortFrom(in.HostIP, port), sdHostNetwork, "", true
		}
	}
	if ap, ok := pub[ctrPort{in.ContainerID, port}]; ok {
		return ap, sdPublished, "", true
	}
	for _, na := range in.Addrs {
		if na.SpansHosts {
			return netip.AddrPortFrom(na.Addr(), port), sdOverlay, na.Network, true
		}
	}
	return netip.AddrPort{}, "", "", false
}

// sdGroup is the scrape target of an instance; ok is false when it has
// none (not opted in, no address Prometheus reaches).
func (a *API) sdGroup(in *catalog.Instance, pub map[ctrPort]netip.AddrPort) (SDGroup, bool) {
	ep := in.Metrics
	if ep == nil {
		if !a.sdAll || in.Port == 0 || in.Protocol != catalog.ProtoTCP {
			return SDGroup{}, false
		}
		ep = &catalog.MetricsEndpoint{Port: in.Port, Path: catalog.DefaultMetricsPath}
	}
	target, kind, network, ok := a.sdTarget(in, ep.Port, pub)
	if !ok {
		return SDGroup{}, false
	}
	health := "passing"
	if !in.Passing {
		health = "failing"
	}
	tags := ""
	if len(in.Tags) > 0 {
		tags = "," + strings.Join(in.Tags, ",") + ","
	}
	return SDGroup{
		Targets: []string{target.String()},
		Labels: map[string]string{
			"__metrics_path__":           ep.Path,
			"__meta_svcdns_service":      in.Service,
			"__meta_svcdns_instance_id":  in.ID,
			"__meta_svcdns_container":    in.ContainerName,
			"__meta_svcdns_container_id": in.ContainerID,
			"__meta_svcdns_node":         in.Node,
			"__meta_svcdns_source":       string(in.Source),
			"__meta_svcdns_tags":         tags,
			"__meta_svcdns_health":       health,
			"__meta_svcdns_network":      network,
			"__meta_svcdns_address":      target.Addr().String(),
			"__meta_svcdns_address_kind": kind,
			"__meta_svcdns_port":         strconv.Itoa(int(in.Port)),
			"__meta_svcdns_metrics_port": strconv.Itoa(int(ep.Port)),
		},
	}, true
}
