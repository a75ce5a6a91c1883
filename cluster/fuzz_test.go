package cluster

import (
	"net/netip"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// FuzzDecode feeds arbitrary bytes to every decoder (every message type:
// delta, direct delta, state, push/pull, request, leave) and, for what decodes,
// to the holder, as a hostile peer would: nothing may panic, and nothing
// but the peer's own namespace may change.
func FuzzDecode(f *testing.F) {
	r := rec("a", "web")
	r.Addrs = append(r.Addrs, overlayAddr("10.0.9.5/24"), overlayAddr("fd00:9::5/64"))
	r.Insts[0].Proxy = &catalog.ProxyRoute{Paths: []string{"/api", "/web"}, Host: "web.test", Strip: true}
	r.Insts = append(r.Insts, wireInstance{IDSuffix: "53/udp", Service: "dns", Tags: []string{"v1"}, Protocol: catalog.ProtoUDP,
		Port: 53, PortName: "dns", Addrs: []catalog.NetAddr{}, HostIP: netip.MustParseAddr("2001:db8::1"), HostPort: 5353})
	// An instance of its own on the overlay only, as a container that
	// publishes one port on it.
	r.Insts = append(r.Insts, wireInstance{IDSuffix: "9000/tcp", Service: "metrics", Protocol: catalog.ProtoTCP, Port: 9000, Passing: true,
		Addrs: []catalog.NetAddr{overlayAddr("10.0.9.5/24")}})
	// Metrics endpoints (format version 2): with a proxy route, and alone.
	r.Insts[0].Metrics = &catalog.MetricsEndpoint{Port: 9100, Path: "/metrics"}
	r.Insts[2].Metrics = &catalog.MetricsEndpoint{Port: 9000, Path: "/admin/metrics?x=1"}
	// A version 1 message, as a node from before version 2 writes it.
	v1 := encodeDelta(&delta{Owner: "p", Version: Version{1, 4}, Puts: []wireRecord{rec("c", "web")}})
	v1[0] = 1
	direct := encodeDelta(&delta{Owner: "p", Version: Version{1, 5}, Puts: []wireRecord{rec("d", "web")}})
	direct[1] = byte(msgDirect)
	st := encodeState(&state{Owner: "p", Version: Version{1, 2}, Sent: time.Unix(1, 0), Records: []wireRecord{r, apiRec("b", "web")}})
	for _, seed := range [][]byte{
		encodeDelta(&delta{Owner: "p", Version: Version{1, 1}, Puts: []wireRecord{r}, Deletes: []string{"x"}}),
		encodeDelta(&delta{Owner: "p", Version: Version{1, 3}, Resync: true}),
		st,
		encodePushPull(&pushPull{Sender: "p", States: [][]byte{st}, Digest: []digestEntry{{"q", Version{3, 4}}}}),
		encodeRequest(&request{From: "p", Wants: []digestEntry{{"q", Version{1, 2}}}}),
		v1,
		direct,
		encodeLeave("p", 1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cat := catalog.New()
		h := newTestHolder(cat, 100)
		h.memberUp("p", "alive", netip.AddrPort{}, 0)
		typ, body, err := decodeHeader(b)
		if err != nil {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		switch typ {
		case msgDelta, msgDirect:
			if d, err := decodeDelta(body); err == nil {
				h.applyDelta(d)
			}
		case msgState:
			if s, raws, err := decodeState(body); err == nil {
				h.applyState(s, raws, nil)
			}
		case msgPushPull:
			if p, err := decodePushPull(body); err == nil {
				h.behind(p.Digest, time.Second, false)
			}
		case msgRequest:
			_, _ = decodeRequest(body)
		case msgLeave:
			if owner, inc, err := decodeLeave(body); err == nil {
				h.left(owner, inc)
			}
		}
		h.flush()
		_, ctrs, err := cat.AllContainers()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ctrs {
			if c.Node != "p" && c.Node != "self" {
				t.Fatalf("container %s of node %q written", c.ID, c.Node)
			}
		}
	})
}
