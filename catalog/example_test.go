package catalog_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/svcdns/svcdns/catalog"
)

// Registering an instance the way the HTTP API does, and watching its
// service. RegisterInstance needs the source and the container row the SRV
// target resolves to, besides what doc.go's snippet shows.
func Example() {
	cat := catalog.New()
	_, err := cat.RegisterInstance(&catalog.Instance{
		ID: "books-1", Service: "books-ms", Protocol: catalog.ProtoTCP, Port: 8080,
		Addrs:       []catalog.NetAddr{{Prefix: netip.MustParsePrefix("10.0.0.5/32")}},
		ContainerID: "api/books-1", ContainerName: "books-1", Target: "books-1", Source: catalog.SourceAPI,
		Passing: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ws := memdb.NewWatchSet()
	idx, insts, _ := cat.Service(ws, catalog.ServiceQuery{Service: "books-ms", PassingOnly: true})
	fmt.Println(idx, len(insts), insts[0].Addrs[0].Addr(), insts[0].Port)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _, _ = cat.DeregisterInstance("books-1") }()
	fmt.Println(ws.WatchCtx(ctx)) // nil: books-ms changed
	idx, insts, _ = cat.Service(nil, catalog.ServiceQuery{Service: "books-ms"})
	fmt.Println(idx, len(insts))
	// Output:
	// 1 1 10.0.0.5 8080
	// <nil>
	// 2 0
}
