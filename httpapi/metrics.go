package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

const namespace = "svcdns"

// metrics are the API's Prometheus series (namespace svcdns, subsystem
// http) and the catalog's gauges (subsystem catalog), read at scrape time.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	longPolls prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, cat *catalog.Catalog) (*metrics, error) {
	const subsystem = "http"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "requests_total",
			Help: "HTTP API requests answered, by status code, method and route (the mux pattern; \"unmatched\" for none).",
		}, []string{"code", "method", "route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help: "Time to answer an HTTP API request, long polls included, by method and route.",
			// Up to 5 minutes: a long poll lasts up to its wait.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"method", "route"}),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "long_polls_in_flight",
			Help: "Long polls (GET /v1/services/{name}?index=N) waiting for a change.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.longPolls, newCatalogCollector(cat)} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register http metrics: %w", err)
	}
	return m, nil
}

// knownMethods bound the method label: a client cannot make up series.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true, http.MethodDelete: true,
	http.MethodPost: true, http.MethodPatch: true, http.MethodOptions: true,
}

func (m *metrics) observe(code int, method, route string, d time.Duration) {
	if !knownMethods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(strconv.Itoa(code), method, route).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// catalogCollector reports catalog.Stats as gauges at each scrape.
type catalogCollector struct {
	cat                                             *catalog.Catalog
	index, services, instances, passing, containers *prometheus.Desc
	bySource                                        *prometheus.Desc
}

var _ prometheus.Collector = (*catalogCollector)(nil)

func newCatalogCollector(cat *catalog.Catalog) *catalogCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "catalog", name), help, nil, nil)
	}
	return &catalogCollector{
		cat:        cat,
		index:      desc("index", "The catalog index, raised by every write that changed something."),
		services:   desc("services", "Services with at least one instance."),
		instances:  desc("instances", "Service instances in the catalog, passing or not."),
		passing:    desc("passing_instances", "Service instances answered in DNS (running, and healthy where checked)."),
		containers: desc("containers", "Containers (and API-registered instances) that SRV targets resolve to."),
		bySource: prometheus.NewDesc(prometheus.BuildFQName(namespace, "catalog", "source_instances"),
			"Service instances in the catalog by source (docker, api, or a peer's) and whether they pass.", []string{"source", "passing"}, nil),
	}
}

func (c *catalogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

func (c *catalogCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.cat.Stats()
	if err != nil {
		for _, d := range c.descs() {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(c.index, prometheus.GaugeValue, float64(st.Index))
	ch <- prometheus.MustNewConstMetric(c.services, prometheus.GaugeValue, float64(st.Services))
	ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(st.Instances))
	ch <- prometheus.MustNewConstMetric(c.passing, prometheus.GaugeValue, float64(st.Passing))
	ch <- prometheus.MustNewConstMetric(c.containers, prometheus.GaugeValue, float64(st.Containers))
	type key struct {
		src     catalog.Source
		passing bool
	}
	counts := map[key]int{{catalog.SourceDocker, true}: 0, {catalog.SourceAPI, true}: 0}
	_, svcs := c.cat.Services(nil)
	var buf []*catalog.Instance
	for _, s := range svcs {
		_, buf = c.cat.AppendService(buf[:0], catalog.ServiceQuery{Service: s.Name})
		for _, in := range buf {
			counts[key{in.Source, in.Passing}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.bySource, prometheus.GaugeValue, float64(n), string(k.src), strconv.FormatBool(k.passing))
	}
}

func (c *catalogCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{c.index, c.services, c.instances, c.passing, c.containers, c.bySource}
}
