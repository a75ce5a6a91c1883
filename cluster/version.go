package cluster

import (
	"fmt"
	"net/netip"
	"time"
)

// Version orders the states of one owner: the incarnation it chose at
// start, then the sequence number it raises with every change.
type Version struct {
	Incarnation uint64
	Seq         uint64
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Incarnation != o.Incarnation {
		return v.Incarnation < o.Incarnation
	}
	return v.Seq < o.Seq
}

// AtLeast reports whether v is o or newer.
func (v Version) AtLeast(o Version) bool { return !v.Less(o) }

// IsZero reports whether nothing is held.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Incarnation, v.Seq) }

// Applied describes one delta or full state of a peer written to the store.
type Applied struct {
	Owner     string
	Version   Version
	Full      bool      // a full state, not a delta
	Sent      time.Time // when the owner made the change (its clock)
	Received  time.Time // when it was written here
	Instances int       // the owner's instances held after it
}

// Delay is the time from the change on its owner to its arrival here (the
// two clocks' offset included).
func (a Applied) Delay() time.Duration { return a.Received.Sub(a.Sent) }

// Member is one node of the cluster as this node sees it.
type Member struct {
	Name      string
	Addr      netip.AddrPort // its gossip address
	State     string         // "alive", "suspect", "dead" or "left"
	Local     bool           // this node
	Instances int            // its instances held here
	Version   Version        // of its records held here
	// LastFullState is when a full state of it was last applied here
	// (zero for the local node, or when none has arrived).
	LastFullState time.Time
}

// Stats are the cluster's counters, as numbers (the metrics carry the same).
type Stats struct {
	MsgsIn, MsgsOut     uint64 // gossip packets and streams of memberlist
	BytesIn, BytesOut   uint64
	PushPulls           uint64 // push/pull exchanges merged
	DeltasApplied       uint64
	StatesApplied       uint64
	StaleDropped        uint64 // deltas and states older than what was held
	Dropped             uint64 // malformed, oversized or refused payloads
	StateRequests       uint64 // full states asked for, after a gap or a newer digest
	InstancesCut        uint64 // instances over MaxInstances left out
	RecordsRefused      uint64 // records the store refused (bad names, conflicts)
	StrangerJoins       uint64 // peers joined because they asked before they were known here
	Members, LiveMember int
	// Queued is what waits to go out now: deltas still to gossip or relay,
	// deltas to send directly, and messages and full states for the TCP
	// senders.
	Queued int
	// Behind counts the live peers held here with a gap open, a full
	// state needed, or nothing held yet.
	Behind int
}
