package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// BenchmarkRouteUpdate measures how long a catalog change takes to reach
// the route table that requests read: from the write's return to the swap
// of the rebuilt table, with 1,000 services of two routed instances each
// in the catalog. It reports the p50 and p99 of that delay (the target:
// p99 within 5 ms).
func BenchmarkRouteUpdate(b *testing.B) {
	cat := catalog.New()
	for s := range 1000 {
		for i := range 2 {
			id := fmt.Sprintf("svc%d-%d", s, i)
			addr := netip.AddrFrom4([4]byte{10, byte(s >> 8), byte(s), byte(i + 1)})
			_, err := cat.RegisterInstance(testutil.APIInstance(id, fmt.Sprintf("svc%d", s), addr.String(), 8080, func(i *catalog.Instance) {
				i.Node, i.Proxy = testNode, paths(fmt.Sprintf("/api/svc%d", s))
			}))
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	p, err := New(Config{Catalog: cat, Node: testNode})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	addr := netip.MustParseAddr("10.255.0.1")
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		route := paths("/moving/a")
		if n%2 == 1 {
			route = paths("/moving/b")
		}
		start := time.Now()
		idx, err := cat.RegisterInstance(&catalog.Instance{
			ID: "mover", Service: "mover", Protocol: catalog.ProtoTCP, Port: 8080,
			Addrs: []catalog.NetAddr{{Prefix: netip.PrefixFrom(addr, 32)}}, HostIP: addr, HostPort: 8080,
			ContainerID: "api/mover", ContainerName: "mover", Target: "mover", Source: catalog.SourceAPI, Node: testNode,
			Passing: true, Proxy: route,
		})
		if err != nil {
			b.Fatal(err)
		}
		for {
			t := p.tbl.Load()
			if t.index >= idx {
				break
			}
			<-t.next
		}
		delays = append(delays, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(delays[min(len(delays)-1, len(delays)*99/100)].Microseconds()), "p99-µs")
}

// BenchmarkProxyGET sends GETs through the proxy to a loopback backend
// over keep-alive connections: the proxy's cost per request (with the
// client's and the backend's, all in this process).
func BenchmarkProxyGET(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer backend.Close()
	cat := catalog.New()
	ap := netip.MustParseAddrPort(strings.TrimPrefix(backend.URL, "http://"))
	_, err := cat.RegisterInstance(&catalog.Instance{
		ID: "b", Service: "b", Protocol: catalog.ProtoTCP, Port: ap.Port(),
		Addrs: []catalog.NetAddr{{Prefix: netip.PrefixFrom(ap.Addr(), 32)}}, HostIP: ap.Addr(), HostPort: ap.Port(),
		ContainerID: "api/b", ContainerName: "b", Target: "b", Source: catalog.SourceAPI, Node: testNode,
		Passing: true, Proxy: paths("/"),
	})
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{Catalog: cat, Node: testNode})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(front.URL + "/x")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
