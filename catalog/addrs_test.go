package catalog_test

import (
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

func TestHasPassingAddrIn(t *testing.T) {
	cat := catalog.New()
	put(t, cat, ctr(nodeA, "c1", "web", "172.18.5.7/16", "fd00:10::5/64"))
	sick := ctr(nodeA, "c2", "sick", "10.9.0.3/24")
	sick.Passing = false
	put(t, cat, sick)
	cases := []struct {
		prefix string
		want   bool
	}{
		{"172.18.5.7/32", true},
		{"172.18.5.0/24", true},
		{"172.18.0.0/16", true},
		{"172.0.0.0/8", true},
		{"172.18.5.8/32", false},
		{"172.18.6.0/24", false},
		{"172.19.0.0/16", false},
		{"::ffff:172.18.5.0/120", true}, // IPv4-mapped counts as IPv4
		{"fd00:10::/64", true},
		{"fd00:10::/60", true},
		{"fd00:10::/62", true}, // ends inside a byte
		{"fd00:10::5/128", true},
		{"fd00:10::6/128", false},
		{"fd00:11::/64", false},
		{"fd00:10::/124", true},
		{"fd00:10::10/124", false},
		{"10.9.0.0/24", false}, // only a container that is not passing
		{"10.9.0.3/32", false},
	}
	for _, tc := range cases {
		got, err := cat.HasPassingAddrIn(pfx(tc.prefix))
		if err != nil || got != tc.want {
			t.Errorf("HasPassingAddrIn(%s) = %v, %v; want %v", tc.prefix, got, err, tc.want)
		}
	}
}
