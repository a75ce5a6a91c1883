package cluster

import (
	"net/netip"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// A bind host that is a name is resolved before memberlist sees it:
// memberlist binds every address for a host it cannot parse, so
// "localhost" (loopback, no key needed) opened gossip to the network.
func TestBindAddress(t *testing.T) {
	for _, tc := range []struct {
		bind     string
		optional bool // skipped where the host has no such address
	}{
		{bind: "localhost:0"},
		{bind: "127.0.0.1:0"},
		{bind: "[::1]:0", optional: true},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			c, err := New(Config{Node: "n1", BindAddr: tc.bind, Store: catalog.New(), Timing: FastTiming()})
			if err != nil && tc.optional {
				t.Skipf("cannot bind %s here: %v", tc.bind, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Shutdown()
			if got := c.Addr().Addr(); !got.IsLoopback() {
				t.Errorf("bound to %v, want a loopback address", c.Addr())
			}
		})
	}
	if h, err := bindHost(""); err != nil || h != "" {
		t.Errorf(`bindHost(""): %q %v, want "" (every address)`, h, err)
	}
	if h, err := bindHost("localhost"); err != nil || !netip.MustParseAddr(h).IsLoopback() {
		t.Errorf("bindHost(localhost): %q %v", h, err)
	}
}
