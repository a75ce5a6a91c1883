package cluster

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// Every message decodes to what was encoded.
func TestWireRoundTrip(t *testing.T) {
	r := rec("a", "web")
	r.Insts[0].Tags = []string{"v1", "blue"}
	r.Addrs = append(r.Addrs, overlayAddr("10.0.9.5/24"), overlayAddr("fd00:9::5/64"))
	r.Insts[0].Metrics = &catalog.MetricsEndpoint{Port: 9100, Path: "/metrics"}
	r.Insts = append(r.Insts, wireInstance{IDSuffix: "9000/tcp", Service: "admin", Protocol: catalog.ProtoTCP, Port: 9000,
		Proxy: &catalog.ProxyRoute{Paths: []string{"/admin"}}, Metrics: &catalog.MetricsEndpoint{Port: 9000, Path: "/admin/metrics?x=1"}})
	for _, sent := range []time.Time{time.Unix(0, 1), time.Unix(-5, 0), time.Unix(1<<32, 123)} {
		d := &delta{Owner: "p", Version: Version{1 << 62, 7}, Sent: sent, Puts: []wireRecord{r, apiRec("b", "api")}, Deletes: []string{"x", "y"}}
		_, body, err := decodeHeader(encodeDelta(d))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeDelta(body)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Sent.Equal(sent) || got.Version != d.Version || !reflect.DeepEqual(got.Puts, d.Puts) || !reflect.DeepEqual(got.Deletes, d.Deletes) {
			t.Errorf("delta round trip:\n got %+v\nwant %+v", got, d)
		}
	}
	req := &request{From: "q", Wants: []digestEntry{{"p", Version{3, 4}}}}
	_, body, _ := decodeHeader(encodeRequest(req))
	if got, err := decodeRequest(body); err != nil || !reflect.DeepEqual(got, req) {
		t.Errorf("request: %+v %v", got, err)
	}
	_, body, _ = decodeHeader(encodeLeave("p", 9))
	if owner, inc, err := decodeLeave(body); owner != "p" || inc != 9 || err != nil {
		t.Errorf("leave: %s %d %v", owner, inc, err)
	}
}

// The format versions read: 1 (a node from before metrics endpoints
// travel, whose records are version 2's without flag bit 8) and 2; not a
// newer one, nor an instance flag this version does not know.
func TestWireVersions(t *testing.T) {
	d := &delta{Owner: "p", Version: Version{1, 7}, Puts: []wireRecord{rec("a", "web")}}
	b := encodeDelta(d)
	if b[0] != wireVersion || wireVersion != 2 {
		t.Fatalf("written as version %d", b[0])
	}
	for _, tc := range []struct {
		version byte
		ok      bool
	}{{0, false}, {1, true}, {2, true}, {3, false}} {
		v := append([]byte(nil), b...)
		v[0] = tc.version
		_, body, err := decodeHeader(v)
		if (err == nil) != tc.ok {
			t.Errorf("version %d: err %v, want ok %v", tc.version, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		if got, err := decodeDelta(body); err != nil || !reflect.DeepEqual(got.Puts, d.Puts) {
			t.Errorf("version %d: %+v %v", tc.version, got, err)
		}
	}

	// The flags byte follows the instance's port name, "" here.
	r := rec("a", "web")
	r.Insts[0].PortName = "zzzz"
	e := encoder{}
	e.record(&r)
	k := len(e.b) - 3 // flags, host address (none), host port (0)
	if e.b[k-4] != 'z' || e.b[k] != instPassing|instOwnAddrs {
		t.Fatalf("flags byte not where expected: % x", e.b)
	}
	e.b[k] |= 16
	dec := decoder{b: e.b}
	dec.record()
	if err := dec.end(); err == nil {
		t.Error("unknown instance flag 16 read")
	}
}

// An instance extension of a kind this version does not know is skipped
// (a later version's field); a known one twice is malformed.
func TestWireExtensions(t *testing.T) {
	r := rec("a", "web")
	r.Insts[0].Metrics = &catalog.MetricsEndpoint{Port: 9100, Path: "/metrics"}
	e := encoder{}
	e.record(&r)
	var body encoder
	body.uvarint(9100)
	body.str("/metrics")
	ext := func(kinds ...uint64) []byte {
		x := encoder{}
		x.uvarint(uint64(len(kinds)))
		for _, k := range kinds {
			x.uvarint(k)
			if k == extMetrics {
				x.bytes(body.b)
			} else {
				x.str("a later field")
			}
		}
		return x.b
	}
	head, ok := bytes.CutSuffix(e.b, ext(extMetrics))
	if !ok {
		t.Fatalf("the record does not end with its metrics extension: % x", e.b)
	}
	for _, tc := range []struct {
		name  string
		kinds []uint64
		ok    bool
	}{
		{"metrics", []uint64{extMetrics}, true},
		{"unknown kinds around it", []uint64{9, extMetrics, 1 << 40}, true},
		{"metrics twice", []uint64{extMetrics, extMetrics}, false},
	} {
		d := decoder{b: append(append([]byte(nil), head...), ext(tc.kinds...)...)}
		got := d.record()
		err := d.end()
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if tc.ok && !reflect.DeepEqual(got, r) {
			t.Errorf("%s: read %+v, want %+v", tc.name, got, r)
		}
	}
}
