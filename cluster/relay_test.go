package cluster

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/svcdns/svcdns/catalog"
)

// relayOf is the full state of owner as h holds it, as a peer receives it
// in a push/pull bundle (snapState, encode, decode): false when h would
// not send one.
func relayOf(t *testing.T, h *holder, owner string) (step, bool) {
	t.Helper()
	h.mu.Lock()
	snap, ok := h.snapState(owner)
	h.mu.Unlock()
	if !ok {
		return step{}, false
	}
	_, body, err := decodeHeader(snap.encode())
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := decodeState(body)
	if err != nil {
		t.Fatal(err)
	}
	return step{state: s}, true
}

// heldRaws is what h holds of owner: record id -> encoding.
func heldRaws(h *holder, owner string) map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]byte{}
	if o := h.owners[owner]; o != nil {
		for id, hr := range o.records {
			out[id] = hr.raw
		}
	}
	return out
}

// TestRelayedStatePastGap checks a full state passed on by a node that
// holds the owner past a gap (deltas applied ahead of its version, some of
// them deletes): its records are not the owner's at the version it claims,
// yet every node that ends at the owner's version must hold exactly the
// owner's records. Random histories of one owner; two holders get random
// subsets of its deltas in random order and pass their states to each
// other at random moments, then get every delta.
func TestRelayedStatePastGap(t *testing.T) {
	t.Run("the reported sequence", func(t *testing.T) {
		// p adds x at 2 and deletes it at 4; c misses 3, so it holds p
		// at 2 without x, and passes that on to b before b gets 3.
		hist := []step{
			dStep("p", 1, 1, recs(rec("y", "web"))), dStep("p", 1, 2, recs(rec("x", "web"))),
			dStep("p", 1, 3, recs(rec("z", "web"))), dStep("p", 1, 4, nil, "x"),
		}
		c, b := newTestHolder(catalog.New(), 1000), newTestHolder(catalog.New(), 1000)
		c.self, b.self = "c", "b"
		c.run(step{up: "p"})
		b.run(step{up: "p"})
		for _, k := range []int{0, 1, 3} {
			c.run(hist[k])
		}
		rs, ok := relayOf(t, c, "p")
		if !ok {
			t.Fatal("c sends no state of p")
		}
		if got := len(rs.state.Records); rs.state.Version.Seq != 2 || got != 1 {
			t.Fatalf("c's state of p: seq %d with %d records, want seq 2 with y only", rs.state.Version.Seq, got)
		}
		b.run(rs)
		b.run(hist[2])
		// b holds p at 3 without x, which p had at 3: what it holds
		// past a version given by a relayed state is only p's once it
		// holds p's newest. The delete at 4 finds nothing to delete.
		if v, got := heldVer(b, "p"), webIDs(t, b.store.(*catalog.Catalog)); v.Seq != 3 || len(got) != 2 {
			t.Fatalf("b holds p at %v with %v, want seq 3 with y and z", v, got)
		}
		b.run(hist[3])
		c.run(hist[2])
		for _, h := range []*holder{b, c} {
			if v := heldVer(h, "p"); v.Seq != 4 {
				t.Errorf("%s holds p at %v, want seq 4", h.self, v)
			}
			if got, want := webIDs(t, h.store.(*catalog.Catalog)), []string{"p/y:80/tcp", "p/z:80/tcp"}; !slices.Equal(got, want) {
				t.Errorf("%s holds %v, want %v", h.self, got, want)
			}
		}
	})
	t.Run("random histories", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for trial := range 3000 {
			hist, truth := randomHistory(rng)
			if msg := relayTrial(t, rng, hist, truth); msg != "" {
				t.Fatalf("trial %d: %s\nhistory:\n%s", trial, msg, describe(hist))
			}
		}
	})
}

// randomHistory makes 3-8 deltas of owner p over records x, y, z (puts of
// varying content, deletes) and p's records after them, encoded.
func randomHistory(rng *rand.Rand) ([]step, map[string][]byte) {
	truth := map[string][]byte{}
	var hist []step
	n := 3 + rng.IntN(6)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		var puts []wireRecord
		var dels []string
		for _, id := range []string{"x", "y", "z"} {
			switch rng.IntN(4) {
			case 0:
				r := rec(id, "web")
				r.Insts[0].Port = uint16(1 + seq)
				puts = append(puts, r)
				e := encoder{}
				e.record(&r)
				truth[id] = e.b
			case 1:
				dels = append(dels, id)
				delete(truth, id)
			}
		}
		hist = append(hist, dStep("p", 1, seq, puts, dels...))
	}
	return hist, truth
}

// relayTrial plays one history to two holders and reports a divergence.
func relayTrial(t *testing.T, rng *rand.Rand, hist []step, truth map[string][]byte) string {
	hs := []*holder{newTestHolder(catalog.New(), 1000), newTestHolder(catalog.New(), 1000)}
	hs[0].self, hs[1].self = "c", "b"
	var log []string
	for _, h := range hs {
		h.run(step{up: "p"})
	}
	// Phase 1: each delta reaches each holder or not, in random order,
	// with relays in between.
	for _, k := range rng.Perm(2 * len(hist)) {
		h := hs[k%2]
		if rng.IntN(2) == 0 {
			h.run(hist[k/2])
			log = append(log, fmt.Sprintf("%s <- delta %d", h.self, k/2+1))
		}
		if rng.IntN(3) == 0 {
			from, to := hs[rng.IntN(2)], hs[0]
			if from == to {
				to = hs[1]
			}
			if s, ok := relayOf(t, from, "p"); ok {
				to.run(s)
				log = append(log, fmt.Sprintf("%s <- state of %s at %d", to.self, from.self, s.state.Version.Seq))
			}
		}
	}
	// Phase 2: every delta reaches both, in random order.
	for _, h := range hs {
		for _, k := range rng.Perm(len(hist)) {
			h.run(hist[k])
		}
		if v := heldVer(h, "p"); v.Seq != uint64(len(hist)) {
			return fmt.Sprintf("%s holds p at %v, want seq %d; %v", h.self, v, len(hist), log)
		}
		if got := heldRaws(h, "p"); !mapsEqual(got, truth) {
			return fmt.Sprintf("%s holds %v, p has %v; %v", h.self, keys(got), keys(truth), log)
		}
		if got, want := storePorts(t, h), truthPorts(t, truth); !slices.Equal(got, want) {
			return fmt.Sprintf("%s's store has %v, p has %v; %v", h.self, got, want, log)
		}
	}
	return ""
}

// storePorts lists h's store's instances of web as "id port", sorted.
func storePorts(t *testing.T, h *holder) []string {
	t.Helper()
	_, insts, err := h.store.(*catalog.Catalog).Service(nil, catalog.ServiceQuery{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, i := range insts {
		out = append(out, fmt.Sprintf("%s %d", i.ID, i.Port))
	}
	slices.Sort(out)
	return out
}

// truthPorts lists the instances of records as storePorts does.
func truthPorts(t *testing.T, records map[string][]byte) []string {
	t.Helper()
	out := []string{}
	for _, raw := range records {
		r, err := heldRecord{raw: raw}.record("p")
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range r.Instances {
			out = append(out, fmt.Sprintf("%s %d", i.ID, i.Port))
		}
	}
	slices.Sort(out)
	return out
}

func heldVer(h *holder, owner string) Version {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o := h.owners[owner]; o != nil {
		return o.ver
	}
	return Version{}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func keys(m map[string][]byte) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s(%d)", k, len(v)))
	}
	slices.Sort(out)
	return out
}

func describe(hist []step) string {
	var b bytes.Buffer
	for _, s := range hist {
		fmt.Fprintf(&b, "  %d: puts %d deletes %v\n", s.delta.Version.Seq, len(s.delta.Puts), s.delta.Deletes)
	}
	return b.String()
}
