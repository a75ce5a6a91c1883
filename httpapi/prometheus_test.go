package httpapi

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

func TestPrometheusSD(t *testing.T) {
	setup := func(f *fixture) {
		f.dockerContainer(hexA, "books-1", "books", "172.18.0.5", true, []string{"v1", "blue"}, 8080)
		f.dockerContainer(hexB, "books-2", "books", "172.18.0.6", false, nil, 8080)
		f.register("web-1", `{"service":"web","address":"10.0.0.9","port":80,"metrics":{"port":9100,"path":"/admin/metrics"}}`)
		// books-1 opts in through its labels, as the watcher stores them.
		_, insts, _ := f.cat.Service(nil, catalog.ServiceQuery{Service: "books"})
		for _, in := range insts {
			if in.ContainerName == "books-1" {
				c := *in
				c.Metrics = &catalog.MetricsEndpoint{Port: 9090, Path: "/metrics"}
				ctrs, _ := f.cat.ContainersByTarget("books-1")
				if _, err := f.cat.PutContainer(ctrs[0], []*catalog.Instance{&c}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	tests := []struct {
		mode string
		want []string // "target path service health tags"
	}{
		{SDLabels, []string{
			"172.18.0.5:9090 /metrics books passing ,v1,blue,",
			"10.0.0.9:9100 /admin/metrics web passing ",
		}},
		{SDAll, []string{
			"172.18.0.5:9090 /metrics books passing ,v1,blue,",
			"172.18.0.6:8080 /metrics books failing ",
			"10.0.0.9:9100 /admin/metrics web passing ",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.PrometheusSD = tc.mode })
			setup(f)
			groups := decode[[]SDGroup](t, f.do("GET", "/v1/prometheus", ""))
			var got []string
			for _, g := range groups {
				if len(g.Targets) != 1 {
					t.Errorf("group %+v: want one target", g)
					continue
				}
				l := g.Labels
				got = append(got, strings.Join([]string{g.Targets[0], l["__metrics_path__"], l["__meta_svcdns_service"], l["__meta_svcdns_health"], l["__meta_svcdns_tags"]}, " "))
				if l["__meta_svcdns_container"] == "" || l["__meta_svcdns_node"] != "n1" {
					t.Errorf("labels %v lack the container or node", l)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("targets:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	f := newFixture(t, nil)
	if w := f.do("GET", "/v1/prometheus", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Errorf("no targets: %d %s, want 200 []", w.Code, w.Body)
	}
	if w := f.do("PUT", "/v1/instances/x", `{"service":"x","address":"10.0.0.1","port":80,"metrics":{"port":0}}`); w.Code != 400 {
		t.Errorf("metrics port 0: %d, want 400", w.Code)
	}
	if _, err := New(Config{Catalog: catalog.New(), PrometheusSD: "some"}); err == nil {
		t.Error("PrometheusSD \"some\" accepted")
	}
}

// TestPrometheusSDAddress: which address of a container is its scrape
// target, by its node, its networks and what it publishes. Prometheus runs
// on a Docker host or on a bridge: a peer's overlay address is the target
// only when nothing else is, and the labels say so.
func TestPrometheusSDAddress(t *testing.T) {
	br := catalog.NetAddr{Network: "br", Prefix: netip.MustParsePrefix("172.18.0.5/16")}
	ov := catalog.NetAddr{Network: "ov", Prefix: netip.MustParsePrefix("10.0.9.5/24"), NetworkID: "ovid", SpansHosts: true}
	type port struct{ num, published uint16 } // published 0: not published
	tests := []struct {
		name   string
		node   string
		addrs  []catalog.NetAddr // nil: the host network
		hostIP string            // the host's address, for published ports and the host network
		ports  []port            // the first carries the metrics endpoint
		metric uint16
		want   string // "target address_kind network"; "": no target
	}{
		{"local on a bridge, unpublished", "n1", []catalog.NetAddr{br}, "", []port{{8080, 0}}, 9100, "172.18.0.5:9100 container br"},
		{"local on a bridge, published", "n1", []catalog.NetAddr{br}, "192.0.2.1", []port{{9100, 39100}}, 9100, "172.18.0.5:9100 container br"},
		{"local, overlay listed before its bridge", "n1", []catalog.NetAddr{ov, br}, "", []port{{8080, 0}}, 9100, "172.18.0.5:9100 container br"},
		{"local on an overlay only, metrics port published by another instance", "n1", []catalog.NetAddr{ov}, "192.0.2.1",
			[]port{{8080, 0}, {9100, 39100}}, 9100, "192.0.2.1:39100 published "},
		{"local on an overlay only, metrics port unpublished", "n1", []catalog.NetAddr{ov}, "192.0.2.1", []port{{8080, 32001}}, 9100, "10.0.9.5:9100 overlay ov"},
		{"local on the host network", "n1", nil, "192.0.2.1", []port{{8080, 8080}}, 9100, "192.0.2.1:9100 host-network "},
		{"peer on an overlay, metrics port published", "n2", []catalog.NetAddr{ov}, "192.0.2.2", []port{{8080, 32001}}, 8080, "192.0.2.2:32001 published "},
		{"peer on an overlay, metrics port unpublished", "n2", []catalog.NetAddr{ov}, "192.0.2.2", []port{{8080, 0}, {9100, 39100}}, 8080, "10.0.9.5:8080 overlay ov"},
		{"peer on a bridge, published", "n2", nil, "192.0.2.2", []port{{8080, 32001}}, 8080, "192.0.2.2:32001 published "},
		{"peer on a bridge, unpublished", "n2", nil, "", []port{{8080, 0}}, 8080, ""},
		{"peer on the host network", "n2", nil, "192.0.2.2", []port{{8080, 8080}}, 8080, "192.0.2.2:8080 published "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ctr := &catalog.Container{ID: hexA, Name: "c1", Target: "c1", Node: tt.node, Source: catalog.SourceDocker, Passing: true, Addrs: tt.addrs}
			if tt.hostIP != "" {
				ctr.HostIP = netip.MustParseAddr(tt.hostIP)
			}
			var insts []*catalog.Instance
			for k, p := range tt.ports {
				insts = append(insts, testutil.Instance(ctr, "app", p.num, func(i *catalog.Instance) {
					if p.published != 0 {
						i.HostIP, i.HostPort = ctr.HostIP, p.published
					}
					if k == 0 {
						i.Metrics = &catalog.MetricsEndpoint{Port: tt.metric, Path: "/metrics"}
					}
				}))
			}
			if _, err := f.cat.PutContainer(ctr, insts); err != nil {
				t.Fatal(err)
			}
			groups := decode[[]SDGroup](t, f.do("GET", "/v1/prometheus", ""))
			var got []string
			for _, g := range groups {
				l := g.Labels
				got = append(got, strings.Join([]string{g.Targets[0], l["__meta_svcdns_address_kind"], l["__meta_svcdns_network"]}, " "))
				if host, _, _ := strings.Cut(g.Targets[0], ":"); l["__meta_svcdns_address"] != host || l["__meta_svcdns_node"] != tt.node {
					t.Errorf("labels %v: address or node does not match the target %s", l, g.Targets[0])
				}
			}
			if strings.Join(got, "|") != tt.want {
				t.Errorf("targets %q, want %q", got, tt.want)
			}
		})
	}
	// An API instance is scraped at its registered address.
	f := newFixture(t, nil)
	f.register("web-1", `{"service":"web","address":"10.0.0.9","port":80,"metrics":{"port":9100}}`)
	groups := decode[[]SDGroup](t, f.do("GET", "/v1/prometheus", ""))
	if len(groups) != 1 || groups[0].Targets[0] != "10.0.0.9:9100" || groups[0].Labels["__meta_svcdns_address_kind"] != "registered" {
		t.Errorf("API instance: %+v, want 10.0.0.9:9100, kind registered", groups)
	}
}
