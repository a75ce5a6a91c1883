package dnsserver

import (
	"net/netip"
	"testing"
)

func TestParseACL(t *testing.T) {
	cases := []struct {
		list     string
		client   string
		onDocker bool
		want     bool
	}{
		{"loopback", "127.0.0.53", false, true},
		{"loopback", "::1", false, true},
		{"loopback", "10.0.0.1", false, false},
		{"local", "127.0.0.1", false, true}, // lo's address is one of this host's
		{"private", "172.31.255.1", false, true},
		{"private", "172.32.0.1", false, false},
		{"private", "fd12::1", false, true},
		{"docker", "203.0.113.9", true, true},
		{"docker", "203.0.113.9", false, false},
		{"any", "203.0.113.9", false, true},
		{"any", "2001:db8::1", false, true},
		{"10.1.0.0/16, 192.0.2.7", "10.1.200.3", false, true},
		{"10.1.0.0/16, 192.0.2.7", "192.0.2.7", false, true},
		{"10.1.0.0/16, 192.0.2.7", "192.0.2.8", false, false},
		{"10.1.2.3/8", "10.200.0.1", false, true}, // masked
		{"::ffff:10.0.0.0/104", "10.1.1.1", false, true},
	}
	for _, tc := range cases {
		acl, err := ParseACL(tc.list)
		if err != nil {
			t.Fatalf("%q: %v", tc.list, err)
		}
		if got := acl.allows(netip.MustParseAddr(tc.client), tc.onDocker); got != tc.want {
			t.Errorf("%q allows %s (docker=%v) = %v, want %v", tc.list, tc.client, tc.onDocker, got, tc.want)
		}
	}
	for _, bad := range []string{"", " , ", "everyone", "10.0.0.0/33", "300.1.1.1"} {
		if _, err := ParseACL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
