package cluster

import (
	"net/netip"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// overlayAddr is an address on the attachable overlay "ov".
func overlayAddr(a string) catalog.NetAddr {
	return catalog.NetAddr{Network: "ov", NetworkID: "q7x9k2m4n6p8r0t1v3w5y7z9a", Prefix: netip.MustParsePrefix(a), SpansHosts: true}
}

// What another host can reach of a peer's container: its published host
// address, and its address on a network that spans hosts, never its
// address on a Docker network local to that host.
func TestPeerAddresses(t *testing.T) {
	tests := []struct {
		name     string
		src      catalog.Source
		hostIP   string
		overlay  bool   // the container is on the overlay too
		wantHost string // "" for none
		wantNet  int    // container addresses kept
	}{
		{name: "published", src: catalog.SourceDocker, hostIP: "192.0.2.10", wantHost: "192.0.2.10"},
		{name: "published on loopback", src: catalog.SourceDocker, hostIP: "127.0.0.1"},
		{name: "unpublished, on a bridge", src: catalog.SourceDocker},
		{name: "on a bridge and an overlay", src: catalog.SourceDocker, overlay: true, wantNet: 1},
		{name: "published, on an overlay", src: catalog.SourceDocker, hostIP: "192.0.2.10", overlay: true, wantHost: "192.0.2.10", wantNet: 1},
		{name: "API registration", src: catalog.SourceAPI, hostIP: "10.0.0.1", wantHost: "10.0.0.1", wantNet: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rec("c", "web")
			if tc.src == catalog.SourceAPI {
				r = apiRec("c", "web")
			}
			if tc.overlay {
				r.Addrs = append(r.Addrs, overlayAddr("10.0.9.5/24"))
			}
			if tc.hostIP != "" {
				r.HostIP = netip.MustParseAddr(tc.hostIP)
				r.Insts[0].HostIP, r.Insts[0].HostPort = r.HostIP, 8080
			}
			// Through the owner's side too: fromCatalog, as it is sent.
			cr, err := toCatalog("p", &r)
			if err != nil {
				t.Fatal(err)
			}
			cr.Container.Node, cr.Instances[0].Node = "p", "p"
			sent, err := fromCatalog(cr)
			if err != nil {
				t.Fatal(err)
			}
			sent.ID, sent.Target = r.ID, r.Target
			got, err := toCatalog("p", &sent)
			if err != nil {
				t.Fatal(err)
			}
			inst := got.Instances[0]
			if h := inst.HostIP; (tc.wantHost == "" && h.IsValid()) || (tc.wantHost != "" && h.String() != tc.wantHost) {
				t.Errorf("host address %v, want %q", h, tc.wantHost)
			}
			if !inst.HostIP.IsValid() && inst.HostPort != 0 {
				t.Errorf("host port %d without an address", inst.HostPort)
			}
			if len(inst.Addrs) != tc.wantNet || len(got.Container.Addrs) != tc.wantNet {
				t.Errorf("network addresses %v / %v, want %d", inst.Addrs, got.Container.Addrs, tc.wantNet)
			}
			if tc.overlay && (len(inst.Addrs) != 1 || inst.Addrs[0] != overlayAddr("10.0.9.5/24")) {
				t.Errorf("overlay address %+v, want %+v", inst.Addrs, overlayAddr("10.0.9.5/24"))
			}
			if got.Container.Target != "c.p" {
				t.Errorf("target %q", got.Container.Target)
			}
		})
	}
}

// A peer's HTTP proxy route travels with its instance, through the wire
// format, and one that breaks the label rules refuses the record.
func TestProxyRouteTravels(t *testing.T) {
	r := rec("c", "web")
	r.Insts[0].Proxy = &catalog.ProxyRoute{Paths: []string{"/api/v1/books"}, Host: "books.example.test", Strip: true}
	typ, body, err := decodeHeader(encodeState(&state{Owner: "p", Version: Version{1, 1}, Records: []wireRecord{r}}))
	if err != nil || typ != msgState {
		t.Fatalf("header: %v %v", typ, err)
	}
	d, _, err := decodeState(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := toCatalog("p", &d.Records[0])
	if err != nil {
		t.Fatal(err)
	}
	pr := got.Instances[0].Proxy
	if pr == nil || len(pr.Paths) != 1 || pr.Paths[0] != "/api/v1/books" || pr.Host != "books.example.test" || !pr.Strip {
		t.Errorf("proxy route after the wire: %+v", pr)
	}
	for _, bad := range []*catalog.ProxyRoute{{Paths: []string{"api"}}, {Host: "Books:80"}, {}} {
		r.Insts[0].Proxy = bad
		if _, err := toCatalog("p", &r); err == nil {
			t.Errorf("proxy route %+v accepted", bad)
		}
	}
}

// A peer's addresses on networks that span hosts pass the same kind of
// checks as its names: a network name and id Docker could have, a
// unicast address; an API registration's address never claims one.
func TestPeerOverlayChecked(t *testing.T) {
	bad := map[string]func(*catalog.NetAddr){
		"network name with a space": func(a *catalog.NetAddr) { a.Network = "my net" },
		"empty network name":        func(a *catalog.NetAddr) { a.Network = "" },
		"network id with a slash":   func(a *catalog.NetAddr) { a.NetworkID = "../x" },
		"no network id":             func(a *catalog.NetAddr) { a.NetworkID = "" },
		"loopback address":          func(a *catalog.NetAddr) { a.Prefix = netip.MustParsePrefix("127.0.0.5/8") },
		"multicast address":         func(a *catalog.NetAddr) { a.Prefix = netip.MustParsePrefix("224.0.0.5/24") },
	}
	for name, mod := range bad {
		r := rec("c", "web")
		a := overlayAddr("10.0.9.5/24")
		mod(&a)
		r.Addrs = []catalog.NetAddr{a}
		// Through the wire, as a peer would send it.
		_, body, _ := decodeHeader(encodeState(&state{Owner: "p", Version: Version{1, 1}, Records: []wireRecord{r}}))
		s, _, err := decodeState(body)
		if err != nil {
			continue // refused by the decoder already
		}
		if _, err := toCatalog("p", &s.Records[0]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r := apiRec("c", "web")
	r.Addrs = append(r.Addrs, overlayAddr("10.0.9.5/24"))
	got, err := toCatalog("p", &r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Container.Addrs) != 1 || got.Container.Addrs[0].SpansHosts {
		t.Errorf("API record's addresses %+v, want its own only", got.Container.Addrs)
	}
}

// A held record keeps no store id: storeID must make the one toCatalog
// wrote, or removing the record leaves it in the store.
func TestStoreID(t *testing.T) {
	tests := []struct {
		name string
		r    wireRecord
		want string
	}{
		{"docker", rec("c1", "web"), "p/c1"},
		{"api", apiRec("b1", "web"), "api/p/b1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr, err := toCatalog("p", &tc.r)
			if err != nil {
				t.Fatal(err)
			}
			got := storeID("p", tc.r.ID, tc.r.Source == catalog.SourceAPI)
			if got != tc.want || got != cr.Container.ID {
				t.Errorf("storeID %q, toCatalog %q, want %q for both", got, cr.Container.ID, tc.want)
			}
		})
	}
}
