package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// A change reaches every node from its owner directly, with no gossip of
// it at all (the owner gossips none of its deltas, push/pull is an hour
// away), and no node relays what it got from the owner.
func TestDirectReachesEveryNode(t *testing.T) {
	mod := func(cfg *Config) { cfg.Timing.PushPullInterval = time.Hour }
	owner := startNode(t, "n1", func(cfg *Config) { mod(cfg); cfg.noOwnGossip = true })
	nodes := []*testNode{owner}
	for _, name := range []string{"n2", "n3", "n4", "n5"} {
		nodes = append(nodes, startNode(t, name, mod, owner))
	}
	for _, n := range nodes {
		eventually(t, n.Name()+" sees 5 members", func() bool { return len(n.Members()) == 5 && allAlive(n.Members()) })
	}
	register(t, owner, "books-1", "books-ms", "10.0.0.5")
	register(t, owner, "books-2", "books-ms", "10.0.0.6")
	want := []string{"n1/books-1", "n1/books-2"}
	for _, n := range nodes[1:] {
		eventually(t, n.Name()+" holds n1's", func() bool { return slices.Equal(serviceOn(t, n, "books-ms"), want) })
		if q := n.relay.NumQueued(); q != 0 {
			t.Errorf("%s relays %d deltas it got from their owner", n.Name(), q)
		}
	}
}

func allAlive(ms []Member) bool {
	for _, m := range ms {
		if m.State != "alive" {
			return false
		}
	}
	return true
}

// A delta that comes by gossip is relayed; one from its owner directly is
// not (the owner sent it to every member). Both are applied.
func TestDirectNotRelayed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     msgType
		relayed int
	}{
		{"gossip", msgDelta, 1},
		{"direct", msgDirect, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Node: "n1", BindAddr: "127.0.0.1:0", Store: catalog.New(), Timing: FastTiming()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Shutdown()
			v := Version{Incarnation: 1, Seq: 1}
			buf := encodeDelta(&delta{Owner: "n2", Version: v, Puts: []wireRecord{rec("x", "web")}})
			buf[1] = byte(tc.typ)
			c.h.mu.Lock()
			c.handleMsg(buf, nil)
			c.h.mu.Unlock()
			if held, _ := c.Held("n2"); !held.AtLeast(v) {
				t.Errorf("held %v, want %v", held, v)
			}
			if got := c.relay.NumQueued(); got != tc.relayed {
				t.Errorf("relayed %d, want %d", got, tc.relayed)
			}
		})
	}
}

// A delta goes directly only if it fits one UDP packet with memberlist's
// type, CRC and encryption (UDPBufferSize 1400); a bigger one goes by
// gossip only.
func TestDirectOnlyWhatFitsAPacket(t *testing.T) {
	c, err := New(Config{Node: "n1", BindAddr: "127.0.0.1:0", Store: catalog.New(), Timing: FastTiming()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	if c.directMax != 1400-directOverhead {
		t.Errorf("directMax %d, want %d", c.directMax, 1400-directOverhead)
	}
	for _, tc := range []struct {
		size   int
		direct bool
	}{{100, true}, {c.directMax, true}, {c.directMax + 1, false}} {
		buf := make([]byte, tc.size)
		buf[0], buf[1] = wireVersion, byte(msgDelta)
		c.queueDirect(buf)
		var got bool
		select {
		case m := <-c.direct:
			got = true
			if msgType(m[1]) != msgDirect || buf[1] != byte(msgDelta) {
				t.Errorf("size %d: direct type %d, gossip type %d", tc.size, m[1], buf[1])
			}
		default:
		}
		if got != tc.direct {
			t.Errorf("size %d: direct %v, want %v", tc.size, got, tc.direct)
		}
	}
}
