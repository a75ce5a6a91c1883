package cluster

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// A step of a holder test: one of delta, state, up, down.
type step struct {
	delta *delta
	state *state
	up    string
	inc   uint64 // with up: the incarnation in the node's meta; with left, the leaving one
	ask   bool   // with up: leave its state to be asked for
	down  string
	left  bool
}

func rec(id, service string) wireRecord {
	a := netip.MustParseAddr("10.0.0.1")
	return wireRecord{
		ID: id, Name: id, Target: id, Source: catalog.SourceDocker, Passing: true,
		Addrs: []catalog.NetAddr{{Network: "net", Prefix: netip.PrefixFrom(a, 24)}},
		Insts: []wireInstance{{IDSuffix: "80/tcp", Service: service, Protocol: catalog.ProtoTCP, Port: 80, Passing: true}},
	}
}

func apiRec(id, service string) wireRecord {
	r := rec(catalog.APIContainerID(id), service)
	r.Name, r.Target, r.Source, r.Insts[0].IDSuffix = id, id, catalog.SourceAPI, ""
	return r
}

func dStep(owner string, inc, seq uint64, puts []wireRecord, dels ...string) step {
	return step{delta: &delta{Owner: owner, Version: Version{inc, seq}, Sent: time.Now(), Puts: puts, Deletes: dels}}
}

func sStep(owner string, inc, seq uint64, recs ...wireRecord) step {
	return step{state: &state{Owner: owner, Version: Version{inc, seq}, Sent: time.Now(), Records: recs}}
}

func recs(rs ...wireRecord) []wireRecord { return rs }

func newTestHolder(cat *catalog.Catalog, maxInsts int) *holder {
	return newHolder("self", cat, maxInsts, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(), nil)
}

func (h *holder) run(s step) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.flush()
	switch {
	case s.delta != nil:
		// Through the wire, as a peer's delta arrives.
		_, body, err := decodeHeader(encodeDelta(s.delta))
		if err != nil {
			panic(err)
		}
		d, err := decodeDelta(body)
		if err != nil {
			panic(err)
		}
		h.applyDelta(d)
	case s.state != nil:
		_, body, _ := decodeHeader(encodeState(s.state))
		st, raws, err := decodeState(body)
		if err != nil {
			panic(err)
		}
		h.applyState(st, raws, nil)
	case s.up != "":
		h.memberUp(s.up, "alive", netip.MustParseAddrPort("127.0.0.1:7946"), s.inc)
		if o := h.owners[s.up]; o != nil && !s.ask {
			o.askNow = false // as if the ask had gone out
		}
	case s.down != "" && s.left:
		h.left(s.down, s.inc)
	case s.down != "":
		h.memberDown(s.down, false)
	}
}

// webIDs lists the instance ids of service web in cat, sorted.
func webIDs(t *testing.T, cat *catalog.Catalog) []string {
	t.Helper()
	_, insts, err := cat.Service(nil, catalog.ServiceQuery{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, i := range insts {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}

func TestHolder(t *testing.T) {
	a, b, c := rec("a", "web"), rec("b", "web"), rec("c", "web")
	pa, pb, pc := "p/a:80/tcp", "p/b:80/tcp", "p/c:80/tcp"
	up := step{up: "p"}
	tests := []struct {
		name    string
		max     int
		steps   []step
		want    []string
		stale   uint64
		refused uint64
		cut     uint64
		held    Version
		wantGap bool // the owner's full state is wanted
	}{
		{name: "deltas in order", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 2, recs(b))},
			want: []string{pa, pb}, held: Version{1, 2}},
		{name: "delete", steps: []step{up, dStep("p", 1, 1, recs(a, b)), dStep("p", 1, 2, nil, "a")},
			want: []string{pb}, held: Version{1, 2}},
		{name: "stale delta dropped", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 2, nil, "a"), dStep("p", 1, 1, recs(a))},
			want: []string{}, stale: 1, held: Version{1, 2}},
		{name: "gap held back, then filled", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 3, recs(c)), dStep("p", 1, 2, recs(b))},
			want: []string{pa, pb, pc}, held: Version{1, 3}},
		{name: "past a gap a delta applies at once, and the gap wants the full state", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 3, recs(c))},
			want: []string{pa, pc}, held: Version{1, 1}, wantGap: true},
		{name: "a late put never undoes a newer delete", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 3, nil, "b"), dStep("p", 1, 2, recs(b))},
			want: []string{pa}, held: Version{1, 3}},
		{name: "a late put never undoes a newer put", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 3, recs(rec("b", "web"))), dStep("p", 1, 2, recs(rec("b", "other")))},
			want: []string{pa, pb}, held: Version{1, 3}},
		{name: "a full state keeps what newer deltas wrote", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 4, recs(c), "a"), sStep("p", 1, 2, a, b)},
			want: []string{pb, pc}, held: Version{1, 2}, wantGap: true},
		{name: "a newer incarnation's later delta waits for its start", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 2, 2, recs(c)), dStep("p", 2, 1, recs(b))},
			want: []string{pb, pc}, held: Version{2, 2}},
		{name: "full state replaces", steps: []step{up, dStep("p", 1, 1, recs(a)), sStep("p", 1, 5, b, c)},
			want: []string{pb, pc}, held: Version{1, 5}},
		{name: "full state fills a gap and pending deltas apply after it", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 4, nil, "b"), sStep("p", 1, 3, a, b)},
			want: []string{pa}, held: Version{1, 4}},
		{name: "older state dropped", steps: []step{up, sStep("p", 1, 5, b), sStep("p", 1, 4, a)},
			want: []string{pb}, stale: 1, held: Version{1, 5}},
		{name: "restart: new incarnation replaces all", steps: []step{up, dStep("p", 1, 1, recs(a)), dStep("p", 1, 2, recs(b)), dStep("p", 2, 1, recs(c))},
			want: []string{pc}, held: Version{2, 1}},
		{name: "restart seen in node meta hides the old life", steps: []step{up, sStep("p", 1, 3, a), {up: "p", inc: 2}},
			want: []string{}, wantGap: true},
		{name: "old incarnation after a new one is stale", steps: []step{up, dStep("p", 2, 1, recs(c)), dStep("p", 1, 7, recs(a))},
			want: []string{pc}, stale: 1, held: Version{2, 1}},
		{name: "dead hides, back shows at once", steps: []step{up, sStep("p", 1, 1, a), {down: "p"}, up},
			want: []string{pa}, held: Version{1, 1}},
		{name: "back from the dead: its state is asked for", steps: []step{up, sStep("p", 1, 1, a), {down: "p"}, {up: "p", ask: true}},
			want: []string{pa}, held: Version{1, 1}, wantGap: true},
		{name: "dead hides", steps: []step{up, sStep("p", 1, 1, a), {down: "p"}},
			want: []string{}, held: Version{1, 1}},
		{name: "left forgets; back, it is asked for its state", steps: []step{up, sStep("p", 1, 1, a), {down: "p", left: true, inc: 1}, up},
			want: []string{}, wantGap: true},
		{name: "a leave of an older incarnation is ignored", steps: []step{up, sStep("p", 2, 1, a), {down: "p", left: true, inc: 1}},
			want: []string{pa}, held: Version{2, 1}},
		{name: "a leave of an older incarnation after the newer one is up is ignored", steps: []step{up, sStep("p", 1, 1, a), {up: "p", inc: 2}, {down: "p", left: true, inc: 1}, sStep("p", 2, 1, b)},
			want: []string{pb}, held: Version{2, 1}},
		{name: "not yet a member: held, not shown", steps: []step{sStep("p", 1, 1, a)},
			want: []string{}, held: Version{1, 1}},
		{name: "not yet a member: shown when it joins", steps: []step{sStep("p", 1, 1, a), up},
			want: []string{pa}, held: Version{1, 1}},
		{name: "instance cap", max: 2, steps: []step{up, sStep("p", 1, 1, a, b, c)},
			want: []string{pa, pb}, cut: 1, held: Version{1, 1}},
		{name: "instance cap on deltas", max: 2, steps: []step{up, dStep("p", 1, 1, recs(a, b)), dStep("p", 1, 2, recs(c))},
			want: []string{pa, pb}, cut: 1, held: Version{1, 2}},
		{name: "bad names refused, the rest kept", steps: []step{up, sStep("p", 1, 1, a, rec("x", "Web"), rec("y", "service"), rec("z/z", "web"), rec("q", "web.v1"))},
			want: []string{pa}, refused: 4, held: Version{1, 1}},
		{name: "the local node's name as owner is ignored", steps: []step{{up: "self"}, dStep("self", 1, 1, recs(a)), sStep("self", 1, 2, b)},
			want: []string{}},
		{name: "API ids live in the owner's namespace", steps: []step{up, sStep("p", 1, 1, apiRec("a", "web"))},
			want: []string{"p/a"}, held: Version{1, 1}},
		{name: "resync delta wants the full state", steps: []step{up, dStep("p", 1, 1, recs(a)), {delta: &delta{Owner: "p", Version: Version{1, 2}, Resync: true}}},
			want: []string{pa}, held: Version{1, 1}, wantGap: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := catalog.New()
			// A local container "a" and a local API instance "a": a peer's
			// records never touch them.
			local, err := toCatalog("self", &a)
			if err != nil {
				t.Fatal(err)
			}
			local.Container.ID, local.Instances[0].ID, local.Instances[0].ContainerID = "a", "a:80/tcp", "a"
			local.Container.Target, local.Instances[0].Target = "a", "a"
			if _, err := cat.PutContainer(local.Container, local.Instances); err != nil {
				t.Fatal(err)
			}
			max := tc.max
			if max == 0 {
				max = 100
			}
			h := newTestHolder(cat, max)
			now := time.Now()
			h.now = func() time.Time { return now }
			for _, s := range tc.steps {
				h.run(s)
			}
			notLocal := func(ids []string) []string {
				return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "a:80/tcp" })
			}
			all := webIDs(t, cat)
			if got, want := notLocal(all), notLocal(tc.want); !slices.Equal(got, want) {
				t.Errorf("catalog holds %v of peers, want %v", got, want)
			}
			if !slices.Contains(all, "a:80/tcp") {
				t.Error("the local container is gone")
			}
			if v := h.m.staleDropped.Load(); v != tc.stale {
				t.Errorf("stale dropped %d, want %d", v, tc.stale)
			}
			if v := h.m.refused.Load(); v != tc.refused {
				t.Errorf("refused %d, want %d", v, tc.refused)
			}
			if v := h.m.instancesCut.Load(); v != tc.cut {
				t.Errorf("cut %d, want %d", v, tc.cut)
			}
			if o := h.owners["p"]; o != nil && o.ver != tc.held {
				t.Errorf("holds p at %v, want %v", o.ver, tc.held)
			}
			now = now.Add(time.Hour)
			h.mu.Lock()
			wanted := h.wanted(time.Second, time.Second)
			h.mu.Unlock()
			if gap := len(wanted) > 0; gap != tc.wantGap {
				t.Errorf("full state wanted: %v, want %v", gap, tc.wantGap)
			}
		})
	}
}

// A full state asked for that does not come is asked for again less and
// less often (a node too busy to answer is not sent the same request, and
// made to send the same state, again and again); once one arrives, the
// next gap is asked for at once.
func TestAskBackoff(t *testing.T) {
	cat := catalog.New()
	h := newTestHolder(cat, 100)
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	h.run(step{up: "p"})
	h.run(dStep("p", 1, 1, recs(rec("a", "web"))))
	h.run(dStep("p", 1, 3, recs(rec("c", "web")))) // a gap: seq 2 missing
	asks := func(d time.Duration) []time.Duration {
		var at []time.Duration
		began := now
		for end := now.Add(d); now.Before(end); now = now.Add(100 * time.Millisecond) {
			h.mu.Lock()
			if len(h.wanted(time.Second, time.Second)) > 0 {
				at = append(at, now.Sub(began))
			}
			h.mu.Unlock()
		}
		return at
	}
	got := asks(100 * time.Second)
	var gaps []time.Duration
	for i := 1; i < len(got); i++ {
		gaps = append(gaps, got[i]-got[i-1])
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(gaps, want) {
		t.Fatalf("asked at %v: %v apart, want %v", got, gaps, want)
	}
	h.run(sStep("p", 1, 3, rec("a", "web"), rec("c", "web")))
	h.run(dStep("p", 1, 5, recs(rec("e", "web")))) // a new gap: seq 4
	if got := asks(3 * time.Second); len(got) == 0 || got[0] > 1100*time.Millisecond {
		t.Errorf("after a state came, the next gap was asked for at %v, want within the gap wait (1 s)", got)
	}
}

// behindCount counts the live members this node is behind on, which the
// benchmark waits to reach zero before it measures idle gossip.
func TestBehindCount(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  int
	}{
		{"nothing held of a live member", []step{{up: "a", inc: 1, ask: true}}, 1},
		{"its state held", []step{{up: "a", inc: 1}, sStep("a", 1, 1, rec("c1", "web"))}, 0},
		{"a gap open", []step{{up: "a", inc: 1}, sStep("a", 1, 1, rec("c1", "web")), dStep("a", 1, 3, recs(rec("c2", "web")))}, 1},
		{"the gap closed", []step{{up: "a", inc: 1}, sStep("a", 1, 1, rec("c1", "web")), dStep("a", 1, 3, recs(rec("c2", "web"))),
			dStep("a", 1, 2, recs(rec("c3", "web")))}, 0},
		{"a dead member is not waited for", []step{{up: "a", inc: 1}, {down: "a"}}, 0},
		{"two members, one behind", []step{{up: "a", inc: 1}, sStep("a", 1, 1, rec("c1", "web")), {up: "b", inc: 1}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHolder(catalog.New(), DefaultMaxInstances)
			for _, s := range tc.steps {
				h.run(s)
			}
			if got := h.behindCount(); got != tc.want {
				t.Errorf("behindCount %d, want %d", got, tc.want)
			}
		})
	}
}

// A member that comes back (held dead by mistake, or back from a cut) is
// asked for its own state, with this node's version, and for no other
// owner's: under steady changes it holds nearly every owner a little
// newer, and every member asking it for all of them would make it send
// N states to each of N members.
func TestAskOnComeBackOwnOnly(t *testing.T) {
	h := newTestHolder(catalog.New(), 100)
	for _, p := range []string{"p", "q", "r"} {
		h.run(step{up: p})
		h.run(sStep(p, 1, 5, rec("a", "web")))
	}
	h.run(step{down: "r"})
	h.run(step{up: "r", ask: true})
	h.mu.Lock()
	got := h.wanted(time.Second, time.Second)
	h.mu.Unlock()
	want := []request{{To: "r", Wants: []digestEntry{{"r", Version{1, 5}}, {"self", Version{}}}}}
	if len(got) != 1 || got[0].To != want[0].To || !slices.Equal(got[0].Wants, want[0].Wants) {
		t.Errorf("asks %+v, want %+v", got, want)
	}
}
