package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// An instance that stops passing (its container was sent its stop signal
// and drains) gets no new request, and the one it is serving completes.
func TestProxyDrainKeepsRequestInFlight(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	arrived := make(chan struct{})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/s/hold" {
			close(arrived)
			<-release
		}
		fmt.Fprintf(w, "old %s %s", r.Method, b)
	}))
	t.Cleanup(old.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	newer := echo(t, "new")
	f.register("old", "s", addrOf(old), paths("/s"))
	f.register("new", "s", addrOf(newer), paths("/s"))

	backendOf(f, "new").inflight.Store(1) // the held request goes to old
	type result struct {
		code int
		body string
	}
	held := make(chan result, 1)
	go func() {
		code, body := f.do(http.MethodPost, "", "/s/hold", strings.NewReader("order-1"))
		held <- result{code, body}
	}()
	// Counted in flight is not enough: until the dial to old completes,
	// old leaving cancels it and the request goes to new, rightly.
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request never reached old")
	}
	backendOf(f, "new").inflight.Store(0)

	// Draining: the catalog keeps old, not passing.
	ap := netip.MustParseAddrPort(addrOf(old))
	if _, err := f.cat.RegisterInstance(testutil.APIInstance("old", "s", ap.Addr().String(), ap.Port(), func(i *catalog.Instance) {
		i.Node, i.Proxy, i.Passing = testNode, paths("/s"), false
	})); err != nil {
		t.Fatal(err)
	}
	f.sync()
	for range 20 {
		if code, body := f.do(http.MethodPost, "", "/s/x", strings.NewReader("order-2")); code != http.StatusOK || !strings.HasPrefix(body, "new ") {
			t.Fatalf("a new request while old drains: %d %q, want new", code, body)
		}
	}
	close(release)
	if r := <-held; r.code != http.StatusOK || r.body != "old POST order-1" {
		t.Errorf("the request in flight to old: %d %q, want it completed", r.code, r.body)
	}
}
