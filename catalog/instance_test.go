package catalog_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

func TestValidLabel(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"a", true},
		{"books-ms", true},
		{"0", true},
		{"9lives", true},
		{"a-b-c", true},
		{"a--b", true}, // RFC 1123 allows inner runs; IDNA's "xn--" too
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"-", false},
		{"Books-MS", false}, // must already be lower-case
		{"v1.books-ms", false},
		{"_tcp", false},
		{"a_b", false},
		{"a b", false},
		{"\x00", false},
		{"a\x00", false},
		{"\u212Aube", false}, // KELVIN SIGN lower-cases to k
		{"caf\u00e9", false},
		{"*", false},
	}
	for _, tt := range tests {
		if got := catalog.ValidLabel(tt.s); got != tt.want {
			t.Errorf("ValidLabel(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestValidTarget(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"web-1", true},
		{"3f0c1e2d4b5a", true},
		{"web-1.node-a", true},
		{"a.b.c", true},
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63), true},
		{strings.Repeat("a.", 64) + "a", false}, // past MaxTargetLen
		{"", false},
		{".", false},
		{"web.", false},
		{".web", false},
		{"web..a", false},
		{"Web", false},
		{"web_1", false},
		{strings.Repeat("a", 64), false},
	}
	for _, tt := range tests {
		if got := catalog.ValidTarget(tt.s); got != tt.want {
			t.Errorf("ValidTarget(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestNormalizeLabel(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string // a part of the message that says what is wrong
	}{
		{in: "books-ms", want: "books-ms"},
		{in: "Books-MS", want: "books-ms"},
		{in: "BOOKS", want: "books"},
		{in: "v1", want: "v1"},
		{in: strings.Repeat("A", 63), want: strings.Repeat("a", 63)},
		{in: "", wantErr: "empty"},
		{in: strings.Repeat("a", 64), wantErr: "64 bytes"},
		{in: "v1.books-ms", wantErr: "dot"},
		{in: ".", wantErr: "dot"},
		{in: "-a", wantErr: "hyphen"},
		{in: "a-", wantErr: "hyphen"},
		{in: "_tcp", wantErr: "RFC 1123"},
		{in: "a b", wantErr: "RFC 1123"},
		{in: "\x00", wantErr: "NUL"},
		{in: "books\x00", wantErr: "NUL"},
		{in: "\u212A", wantErr: "non-ASCII"},
		{in: "\u212Aube", wantErr: "non-ASCII"}, // never "kube"
		{in: "\u0130stanbul", wantErr: "non-ASCII"},
		{in: "caf\u00e9", wantErr: "non-ASCII"},
		{in: "\xff", wantErr: "non-ASCII"}, // not UTF-8 at all
	}
	for _, tt := range tests {
		got, err := catalog.NormalizeLabel(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("NormalizeLabel(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, catalog.ErrInvalid) || got != "" {
			t.Errorf("NormalizeLabel(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("NormalizeLabel(%q) error %q does not say %q", tt.in, err, tt.wantErr)
		}
	}
}

// An error is logged and sent back in an HTTP 400: a huge name must not be
// echoed whole.
func TestNormalizeLabelErrorIsShort(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("a", 1<<16),
		strings.Repeat("a.", 1<<15),
		strings.Repeat("\u212A", 1<<14),
		strings.Repeat("\x00", 1<<16),
		strings.Repeat("_", 1<<16),
	} {
		_, err := catalog.NormalizeLabel(in)
		if err == nil {
			t.Fatalf("NormalizeLabel of %d bytes succeeded", len(in))
		}
		if n := len(err.Error()); n > 400 {
			t.Errorf("error for %d bytes is %d bytes long: %.80s…", len(in), n, err)
		}
	}
}

func TestInstanceHasTag(t *testing.T) {
	i := &catalog.Instance{Tags: []string{"v1", "primary"}}
	for tag, want := range map[string]bool{"v1": true, "primary": true, "v2": false, "V1": false, "": false} {
		if got := i.HasTag(tag); got != want {
			t.Errorf("HasTag(%q) = %v, want %v", tag, got, want)
		}
	}
	if (&catalog.Instance{}).HasTag("") {
		t.Error("an instance without tags has tag \"\"")
	}
}

func TestInstancePublished(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		port uint16
		want bool
	}{
		{"ip and port", "192.0.2.1", 8080, true},
		{"v6", "2001:db8::1", 8080, true},
		{"no port", "192.0.2.1", 0, false},
		{"no ip", "", 8080, false},
		{"neither", "", 0, false},
	}
	for _, tt := range tests {
		i := &catalog.Instance{HostPort: tt.port}
		if tt.ip != "" {
			i.HostIP = netip.MustParseAddr(tt.ip)
		}
		if got := i.Published(); got != tt.want {
			t.Errorf("%s: Published() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInstanceHostReachable(t *testing.T) {
	bridge := catalog.NetAddr{Network: "bridge", Prefix: pfx("172.17.0.5/16")}
	bridge6 := catalog.NetAddr{Network: "bridge", Prefix: pfx("fd00:17::5/64")}
	ov := catalog.NetAddr{Network: "ov", Prefix: pfx("10.0.9.5/24"), NetworkID: "abc", SpansHosts: true}
	ov6 := catalog.NetAddr{Network: "ov", Prefix: pfx("fd00:9::5/64"), NetworkID: "abc", SpansHosts: true}
	tests := []struct {
		name  string
		addrs []catalog.NetAddr
		want  string // "" for none
	}{
		{"bridge", []catalog.NetAddr{bridge}, "172.17.0.5"},
		{"overlay first, then bridge", []catalog.NetAddr{ov, bridge}, "172.17.0.5"},
		{"IPv4 before IPv6", []catalog.NetAddr{bridge6, bridge}, "172.17.0.5"},
		{"bridge IPv6 before overlay IPv4", []catalog.NetAddr{ov, bridge6}, "fd00:17::5"},
		{"overlay only", []catalog.NetAddr{ov, ov6}, ""},
		{"no address (host network, or a peer's bridge container)", nil, ""},
		{"API instance", []catalog.NetAddr{{Prefix: pfx("192.0.2.7/32")}}, "192.0.2.7"},
	}
	for _, tt := range tests {
		got, ok := (&catalog.Instance{Addrs: tt.addrs}).HostReachable()
		if ok != (tt.want != "") || ok && got.Addr().String() != tt.want {
			t.Errorf("%s: HostReachable() = %v, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func TestNetAddr(t *testing.T) {
	tests := []struct {
		prefix string // "" for none
		ip     string
		want   bool
	}{
		{"172.18.0.5/16", "172.18.0.5", true},
		{"172.18.0.5/16", "172.18.255.1", true},
		{"172.18.0.5/16", "172.19.0.1", false},
		{"172.18.0.5/16", "fd00::1", false},
		{"10.1.2.3/24", "10.1.2.200", true},
		{"10.1.2.3/24", "10.1.3.1", false},
		{"fd00:1::5/64", "fd00:1::ffff", true},
		{"fd00:1::5/64", "fd00:2::1", false},
		{"fd00:1::5/64", "172.18.0.5", false},
		// A host route is no network: not even the address itself is
		// "on" it, so an API instance never counts as sharing a network.
		{"192.0.2.10/32", "192.0.2.10", false},
		{"2001:db8::1/128", "2001:db8::1", false},
		{"", "172.18.0.5", false},
	}
	for _, tt := range tests {
		var a catalog.NetAddr
		if tt.prefix != "" {
			a.Prefix = pfx(tt.prefix)
			if want := pfx(tt.prefix).Addr(); a.Addr() != want {
				t.Errorf("NetAddr{%s}.Addr() = %v, want %v (not masked)", tt.prefix, a.Addr(), want)
			}
		}
		if got := a.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("NetAddr{%s}.Contains(%s) = %v, want %v", tt.prefix, tt.ip, got, tt.want)
		}
	}
}

func TestServiceQueryMatch(t *testing.T) {
	web := &catalog.Instance{Service: "books-ms", Protocol: catalog.ProtoTCP, Port: 8080, PortName: "http", Tags: []string{"v1"}, Passing: true}
	bare := &catalog.Instance{Service: "books-ms", Protocol: catalog.ProtoTCP} // a container exposing no port
	down := &catalog.Instance{Service: "books-ms", Protocol: catalog.ProtoUDP, Port: 53}
	tests := []struct {
		name string
		q    catalog.ServiceQuery
		i    *catalog.Instance
		want bool
	}{
		{"empty query", catalog.ServiceQuery{}, web, true},
		{"service is not Match's", catalog.ServiceQuery{Service: "other"}, web, true},
		{"all fields", catalog.ServiceQuery{Tag: "v1", Protocol: "tcp", Port: "http", PassingOnly: true}, web, true},
		{"port by number", catalog.ServiceQuery{Port: "8080"}, web, true},
		{"wrong tag", catalog.ServiceQuery{Tag: "v2"}, web, false},
		{"wrong protocol", catalog.ServiceQuery{Protocol: "udp"}, web, false},
		{"wrong port", catalog.ServiceQuery{Port: "https"}, web, false},
		{"port 0", catalog.ServiceQuery{Port: "0"}, bare, true},
		{"a name never matches an empty port name", catalog.ServiceQuery{Port: "http"}, bare, false},
		{"not passing", catalog.ServiceQuery{PassingOnly: true}, down, false},
		{"not passing, all asked", catalog.ServiceQuery{Protocol: "udp"}, down, true},
	}
	for _, tt := range tests {
		if got := tt.q.Match(tt.i); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReplaceResultRepairs(t *testing.T) {
	for _, tt := range []struct {
		r    catalog.ReplaceResult
		want int
	}{
		{catalog.ReplaceResult{Index: 9}, 0},
		{catalog.ReplaceResult{Added: 1}, 1},
		{catalog.ReplaceResult{Added: 1, Removed: 2, Updated: 3, Index: 9}, 6},
	} {
		if got := tt.r.Repairs(); got != tt.want {
			t.Errorf("%+v.Repairs() = %d, want %d", tt.r, got, tt.want)
		}
	}
}
