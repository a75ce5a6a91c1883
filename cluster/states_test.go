package cluster

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// logStore is a catalog that logs its writes: for each Apply, the owner
// of each change, in order.
type logStore struct {
	*catalog.Catalog
	log *[]string // "write <n>" before each Apply, "told <owner>" from OnApply
	// writes holds, for each Apply, the owner of each change.
	writes [][]string
}

func (s *logStore) Apply(changes []catalog.Change) (uint64, []error) {
	*s.log = append(*s.log, fmt.Sprintf("write %d", len(s.writes)))
	owners := make([]string, len(changes))
	for k, ch := range changes {
		switch {
		case ch.Put != nil:
			owners[k] = ch.Put.Container.Node
		case ch.Node != nil:
			owners[k] = "node " + ch.Node.Name
		default:
			owners[k], _, _ = strings.Cut(ch.Delete, "/")
		}
	}
	s.writes = append(s.writes, owners)
	return s.Catalog.Apply(changes)
}

// newBundleCluster is a node without memberlist, as far as the apply loop
// needs one, over store; onApply as Config.OnApply.
func newBundleCluster(store Store, onApply func(Applied)) *Cluster {
	c := &Cluster{cfg: Config{Node: "self", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, m: newMetrics()}
	c.h = newHolder("self", store, 2*flushAt, c.cfg.Logger, c.m, onApply)
	return c
}

// deliver handles one message as the apply loop does: one event, then
// the round's write.
func (c *Cluster) deliver(buf []byte) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.handle(event{kind: evMsg, buf: buf}, nil)
	c.h.flush()
}

// bundleOf is a push/pull of the encoded states given, as a node asked
// for them sends it.
func bundleOf(states ...[]byte) []byte {
	return encodePushPull(&pushPull{Sender: "p0", States: states})
}

func stateMsg(owner string, inc, seq uint64, rs ...wireRecord) []byte {
	return encodeState(&state{Owner: owner, Version: Version{inc, seq}, Sent: time.Now(), Records: rs})
}

// manyRecs is n records of service web, named <prefix>00000 on.
func manyRecs(prefix string, n int) []wireRecord {
	out := make([]wireRecord, n)
	for i := range out {
		out[i] = rec(fmt.Sprintf("%s%05d", prefix, i), "web")
	}
	return out
}

// A bundle of many states goes to the store a few states at a time,
// never splitting one: each owner's state replaces what was held of it in
// one write, and is told (OnApply) before the next write.
func TestBundleWrites(t *testing.T) {
	tests := []struct {
		name       string
		owners     int
		per        int // records per owner
		wantWrites int
	}{
		{name: "a join's states, in writes of about flushAt changes", owners: 12, per: 1000, wantWrites: 2},
		{name: "states of half flushAt: two to a write", owners: 5, per: flushAt / 2, wantWrites: 3},
		{name: "one state bigger than flushAt: one write", owners: 1, per: flushAt + 500, wantWrites: 1},
		{name: "a few small states: one write", owners: 3, per: 10, wantWrites: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			store := &logStore{Catalog: catalog.New(), log: &log}
			c := newBundleCluster(store, func(a Applied) { log = append(log, "told "+a.Owner) })
			var states [][]byte
			for o := range tc.owners {
				name := fmt.Sprintf("p%02d", o)
				c.h.mu.Lock()
				c.h.memberUp(name, "alive", netip.MustParseAddrPort("127.0.0.1:7946"), 0)
				c.h.mu.Unlock()
				states = append(states, stateMsg(name, 1, 1, manyRecs("c", tc.per)...))
			}
			c.h.mu.Lock()
			c.h.flush() // the members' node records
			c.h.mu.Unlock()
			log, store.writes = nil, nil
			c.deliver(bundleOf(states...))

			if len(store.writes) != tc.wantWrites {
				t.Errorf("%d writes, want %d", len(store.writes), tc.wantWrites)
			}
			in := map[string]int{} // owner -> the write that held its records
			for k, owners := range store.writes {
				before := 0 // changes before the write's last state
				for i, o := range owners {
					if w, ok := in[o]; ok && w != k {
						t.Errorf("%s's state split over writes %d and %d", o, w, k)
					}
					in[o] = k
					if i > 0 && o != owners[i-1] {
						before = i
					}
				}
				if before >= flushAt {
					t.Errorf("write %d: %d changes before its last state, want under flushAt (%d)", k, before, flushAt)
				}
			}
			for o := range tc.owners {
				name := fmt.Sprintf("p%02d", o)
				told := slices.Index(log, "told "+name)
				next := slices.Index(log, fmt.Sprintf("write %d", in[name]+1))
				if told < 0 || next >= 0 && told > next {
					t.Errorf("%s told at %d of the log, after write %d began (at %d): %v", name, told, in[name]+1, next, log)
				}
			}
			st, err := store.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.owners * tc.per; st.Instances != want {
				t.Errorf("catalog holds %d instances, want %d", st.Instances, want)
			}
		})
	}
}

// What a bundle's states do is what they did one at a time: each state
// is checked and applied in the order of the bundle, whatever is decoded
// beside the apply loop.
func TestBundleStates(t *testing.T) {
	a, b, c, d := rec("a", "web"), rec("b", "web"), rec("c", "web"), rec("d", "web")
	b2 := rec("b", "web")
	b2.Insts[0].IDSuffix, b2.Insts[0].Port = "81/tcp", 81
	truncated := stateMsg("q", 1, 1, a)
	truncated = truncated[:len(truncated)-3]
	badSource := stateMsg("q", 1, 1, a)
	badSource[bytes.Index(badSource, []byte("\x01a\x01a\x01a"))+6] = 9 // the record's source byte
	notState := encodeDelta(&delta{Owner: "q", Version: Version{1, 1}})

	tests := []struct {
		name    string
		owners  int // owners held besides p, q and r (members), to test the owner cap
		before  [][]byte
		bundle  [][]byte
		after   [][]byte
		want    []string // instances of service web held
		held    map[string]Version
		dropped uint64
		stale   uint64
	}{
		{name: "states of three owners",
			bundle: [][]byte{stateMsg("p", 1, 1, a, b), stateMsg("q", 1, 1, c), stateMsg("r", 1, 1, d)},
			want:   []string{"p/a:80/tcp", "p/b:80/tcp", "q/c:80/tcp", "r/d:80/tcp"},
			held:   map[string]Version{"p": {1, 1}, "q": {1, 1}, "r": {1, 1}}},
		{name: "a state that does not decode, in the middle: only it is dropped",
			bundle:  [][]byte{stateMsg("p", 1, 1, a), truncated, stateMsg("r", 1, 1, d)},
			want:    []string{"p/a:80/tcp", "r/d:80/tcp"},
			held:    map[string]Version{"p": {1, 1}, "r": {1, 1}},
			dropped: 1},
		{name: "a bad record and a message not a state, in the middle: only they are dropped",
			bundle:  [][]byte{stateMsg("p", 1, 1, a), badSource, notState, stateMsg("r", 1, 1, d)},
			want:    []string{"p/a:80/tcp", "r/d:80/tcp"},
			held:    map[string]Version{"p": {1, 1}, "r": {1, 1}},
			dropped: 2},
		{name: "two states of one owner, newer first: the older is skipped",
			bundle: [][]byte{stateMsg("p", 1, 2, b), stateMsg("p", 1, 1, a)},
			want:   []string{"p/b:80/tcp"},
			held:   map[string]Version{"p": {1, 2}}},
		{name: "two states of one owner, older first: the newer replaces it",
			bundle: [][]byte{stateMsg("p", 1, 1, a), stateMsg("p", 1, 2, b), stateMsg("q", 1, 1, c)},
			want:   []string{"p/b:80/tcp", "q/c:80/tcp"},
			held:   map[string]Version{"p": {1, 2}, "q": {1, 1}}},
		{name: "a state no newer than held is skipped",
			before: [][]byte{bundleOf(stateMsg("p", 1, 3, a))},
			bundle: [][]byte{stateMsg("p", 1, 3, b), stateMsg("q", 1, 1, c)},
			want:   []string{"p/a:80/tcp", "q/c:80/tcp"},
			held:   map[string]Version{"p": {1, 3}, "q": {1, 1}}},
		{name: "a newer state of a held owner: changed records replaced, gone ones removed",
			before: [][]byte{bundleOf(stateMsg("p", 1, 1, a, b, c))},
			bundle: [][]byte{stateMsg("p", 1, 2, a, b2), stateMsg("q", 1, 1, d)},
			want:   []string{"p/a:80/tcp", "p/b:81/tcp", "q/d:80/tcp"},
			held:   map[string]Version{"p": {1, 2}, "q": {1, 1}}},
		{name: "a new incarnation replaces all its owner had",
			before: [][]byte{bundleOf(stateMsg("p", 1, 5, a, b))},
			bundle: [][]byte{stateMsg("p", 2, 1, c), stateMsg("q", 1, 1, d)},
			want:   []string{"p/c:80/tcp", "q/d:80/tcp"},
			held:   map[string]Version{"p": {2, 1}, "q": {1, 1}}},
		{name: "a delta held back before the bundle applies after its owner's state",
			before: [][]byte{directDelta("p", 1, 3, recs(c), "a")},
			bundle: [][]byte{stateMsg("p", 1, 2, a, b), stateMsg("q", 1, 1, d)},
			want:   []string{"p/b:80/tcp", "p/c:80/tcp", "q/d:80/tcp"},
			held:   map[string]Version{"p": {1, 3}, "q": {1, 1}}},
		{name: "a delta after the bundle applies over it",
			bundle: [][]byte{stateMsg("p", 1, 1, a, b), stateMsg("q", 1, 1, d)},
			after:  [][]byte{directDelta("p", 1, 2, recs(c), "a")},
			want:   []string{"p/b:80/tcp", "p/c:80/tcp", "q/d:80/tcp"},
			held:   map[string]Version{"p": {1, 2}, "q": {1, 1}}},
		{name: "a delta the bundle made stale is dropped",
			bundle: [][]byte{stateMsg("p", 1, 4, a, b)},
			after:  [][]byte{directDelta("p", 1, 2, recs(c), "a")},
			want:   []string{"p/a:80/tcp", "p/b:80/tcp"},
			held:   map[string]Version{"p": {1, 4}},
			stale:  1},
		{name: "room for one more owner: the bundle's second new owner is dropped",
			owners:  maxOwners - 4, // with p, q and r: one short of the cap
			bundle:  [][]byte{stateMsg("s", 1, 1, a), stateMsg("t", 1, 1, b), stateMsg("p", 1, 1, c)},
			want:    []string{"p/c:80/tcp"}, // s is held, not a member
			held:    map[string]Version{"s": {1, 1}, "t": {}, "p": {1, 1}},
			dropped: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := catalog.New()
			c := newBundleCluster(cat, nil)
			c.h.mu.Lock()
			for _, name := range []string{"p", "q", "r"} {
				c.h.memberUp(name, "alive", netip.MustParseAddrPort("127.0.0.1:7946"), 0)
			}
			for k := range tc.owners {
				c.h.get(fmt.Sprintf("x%04d", k))
			}
			c.h.flush()
			c.h.mu.Unlock()
			for _, m := range tc.before {
				c.deliver(m)
			}
			c.deliver(bundleOf(tc.bundle...))
			for _, m := range tc.after {
				c.deliver(m)
			}
			if got := webIDs(t, cat); !slices.Equal(got, tc.want) {
				t.Errorf("catalog holds %v, want %v", got, tc.want)
			}
			for owner, v := range tc.held {
				if got, _ := c.Held(owner); got != v {
					t.Errorf("holds %s at %v, want %v", owner, got, v)
				}
			}
			if v := c.m.dropped.Load(); v != tc.dropped {
				t.Errorf("dropped %d, want %d", v, tc.dropped)
			}
			if v := c.m.staleDropped.Load(); v != tc.stale {
				t.Errorf("stale dropped %d, want %d", v, tc.stale)
			}
		})
	}
}

// directDelta is a delta as its owner sends it to each member.
func directDelta(owner string, inc, seq uint64, puts []wireRecord, dels ...string) []byte {
	m := encodeDelta(&delta{Owner: owner, Version: Version{inc, seq}, Sent: time.Now(), Puts: puts, Deletes: dels})
	m[1] = byte(msgDirect)
	return m
}
