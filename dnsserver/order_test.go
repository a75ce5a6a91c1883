package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/catalog"
)

// targets returns the SRV targets of an answer, sorted.
func targets(t testing.TB, m *dns.Msg) []string {
	t.Helper()
	var out []string
	for _, rr := range m.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok {
			t.Fatalf("not an SRV answer: %v", rr)
		}
		out = append(out, srv.Target)
	}
	slices.Sort(out)
	return out
}

// TestTruncatedSubsetStable: a truncated answer keeps the same records for
// a client while the instances do not change (HAProxy's server-template
// fills its slots from it), in random order; other clients get other
// subsets; full answers stay random.
func TestTruncatedSubsetStable(t *testing.T) {
	cat := catalog.New()
	bigService(t, cat, 30)
	h := newHandler(t, testConfig(cat))
	client := netip.MustParseAddr("127.0.0.1")
	ask := func(c netip.Addr, edns uint16, tcp bool) *dns.Msg {
		return serveDNS(t, h, newQuery("_big._tcp.service.local.", dns.TypeSRV, edns), c, tcp)
	}

	cases := []struct {
		name string
		edns uint16
	}{{"no EDNS", 0}, {"EDNS 1232", 1232}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := ask(client, tc.edns, false)
			if !first.Truncated {
				t.Fatalf("30 SRV answers fit in %d bytes: the test needs a truncated answer", tc.edns)
			}
			want := targets(t, first)
			leaders := map[string]bool{}
			for range 30 {
				m := ask(client, tc.edns, false)
				if got := targets(t, m); !slices.Equal(got, want) {
					t.Fatalf("truncated subset changed between queries:\n got  %v\n want %v", got, want)
				}
				leaders[m.Answer[0].(*dns.SRV).Target] = true
			}
			if len(leaders) < 2 {
				t.Errorf("30 truncated answers all start with %v: the subset's order is not random", leaders)
			}
		})
	}

	t.Run("clients get different subsets", func(t *testing.T) {
		subsets := map[string]bool{}
		covered := map[string]bool{}
		for i := range 16 {
			m := ask(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 1232, false)
			subsets[fmt.Sprint(targets(t, m))] = true
			for _, tg := range targets(t, m) {
				covered[tg] = true
			}
		}
		if len(subsets) < 2 || len(covered) < 30 {
			t.Errorf("16 clients got %d distinct subsets covering %d of 30 instances; want several, covering all", len(subsets), len(covered))
		}
	})

	t.Run("full answers stay random", func(t *testing.T) {
		leaders := map[string]bool{}
		for range 30 {
			m := ask(client, 1232, true)
			if m.Truncated || len(m.Answer) != 30 {
				t.Fatalf("TCP: TC=%v, %d answers; want all 30", m.Truncated, len(m.Answer))
			}
			leaders[m.Answer[0].(*dns.SRV).Target] = true
		}
		if len(leaders) < 2 {
			t.Errorf("30 full answers all start with %v", leaders)
		}
	})
}

// TestTruncatedSubsetChurn: removing an instance outside a client's subset
// leaves the subset as it was; removing one inside replaces just that one.
func TestTruncatedSubsetChurn(t *testing.T) {
	cat := catalog.New()
	bigService(t, cat, 30)
	h := newHandler(t, testConfig(cat))
	client := netip.MustParseAddr("127.0.0.1")
	subset := func() []string {
		return targets(t, serveDNS(t, h, newQuery("big.service.local.", dns.TypeSRV, 1232), client, false))
	}
	before := subset()
	var outside, inside string
	for i := 1; i <= 30; i++ {
		id := fmt.Sprintf("big-%03d", i)
		if slices.Contains(before, id+".container.local.") {
			inside = id
		} else {
			outside = id
		}
	}
	if inside == "" || outside == "" {
		t.Fatalf("subset %v: want some instances in and some out", before)
	}

	if _, err := cat.DeregisterInstance(outside); err != nil {
		t.Fatal(err)
	}
	if got := subset(); !slices.Equal(got, before) {
		t.Errorf("removing %s (not in the subset) changed it:\n got  %v\n want %v", outside, got, before)
	}

	if _, err := cat.DeregisterInstance(inside); err != nil {
		t.Fatal(err)
	}
	after := subset()
	var lost, gained []string
	for _, tg := range before {
		if !slices.Contains(after, tg) {
			lost = append(lost, tg)
		}
	}
	for _, tg := range after {
		if !slices.Contains(before, tg) {
			gained = append(gained, tg)
		}
	}
	if !slices.Equal(lost, []string{inside + ".container.local."}) || len(gained) != 1 {
		t.Errorf("removing %s (in the subset): lost %v, gained %v; want just it lost and one other gained", inside, lost, gained)
	}
}
