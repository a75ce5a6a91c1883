package cluster

import (
	"errors"
	"net/netip"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The wire format: hand-written binary, varint lengths and numbers, every
// length and count capped before anything is allocated. Each message
// starts with the format version and its type.
//
//	delta:    owner, incarnation, seq, sent, resync, puts [record], deletes [id]
//	state:    owner, incarnation, seq, sent, records [record]
//	pushpull: sender, states [state], digest [owner, incarnation, seq]
//	request:  requester, wants [owner, incarnation, seq]
//	leave:    owner, incarnation (a graceful leave: forget its records)
//	direct:   a delta, sent by its owner to each member (not relayed)
//
// A record is one container with its instances, ids as its owner knows
// them; instance ids are sent as what follows "<container id>:".
//
// A network address is its network, the address and the prefix length.
// The network is the name for a network local to its host (only API
// records send those), and "<name>\x00<id>" for a network that spans
// hosts (an overlay: only those of a Docker container are sent). Nodes
// from before overlays were answered read that field and drop every
// address of a Docker record, so that change kept format version 1.
//
// Format version 2 adds instance extensions: flag bit 8 of an instance,
// then, after its proxy route, a list of (kind, body), each body
// length-prefixed. A reader skips a kind it does not know, so a later
// field travels as a new kind without a new format version (and is
// dropped by nodes that do not know it yet). Kind 1 is the Prometheus
// metrics endpoint: port, path. Nothing else changed, so a record of
// version 1 reads the same under version 2 (a node relays the records it
// holds of older peers in its own states); instance flag bits above 8 are
// refused. This node reads versions 1 and 2 and writes 2. A node from
// before version 2 refuses every message of version 2 (it checks the
// version byte, and would misread bit 8 if it did not), so in a mixed
// cluster the older nodes hold none of the newer nodes' records (nor the
// states the newer ones relay) and drop and count what they send; the
// newer nodes read everything. Upgrade every node.
const (
	wireVersion    = 2
	minWireVersion = 1 // the oldest format this node reads
)

// spanSep separates a spanning network's name from its id on the wire;
// neither may hold it.
const spanSep = "\x00"

type msgType byte

const (
	msgDelta msgType = iota + 1
	msgState
	msgPushPull
	msgRequest
	msgLeave
	// msgDirect is a delta its owner sent straight to each live member:
	// the body of a delta, not relayed by who receives it. A node from
	// before it drops it as of an unknown type and gets the delta by
	// gossip.
	msgDirect
)

// Caps on what a peer may send.
const (
	maxString     = 512     // ids, names, networks
	maxList       = 1 << 16 // records, instances, addresses, tags in one list
	maxStateBytes = 8 << 20 // one owner's full state
	maxMsgBytes   = 1 << 20 // a delta or request
	maxOwners     = 4096    // owners in one push/pull
)

var errMalformed = errors.New("malformed")

// wireRecord is a container with its instances as its owner holds them.
type wireRecord struct {
	ID      string // the owner's container id
	Name    string
	Target  string // the owner's SRV target label(s), qualified with the owner's name here
	Source  catalog.Source
	Passing bool
	HostIP  netip.Addr
	Addrs   []catalog.NetAddr
	Insts   []wireInstance
}

type wireInstance struct {
	IDSuffix string // the instance id after "<container id>:"; "" for an API instance
	Service  string
	Tags     []string
	Protocol string
	Port     uint16
	PortName string
	Passing  bool
	Addrs    []catalog.NetAddr // nil: the container's
	HostIP   netip.Addr
	HostPort uint16
	Proxy    *catalog.ProxyRoute // the HTTP proxy's route to it; nil: none
	// Metrics is where Prometheus scrapes it (extension extMetrics);
	// nil: not opted in.
	Metrics *catalog.MetricsEndpoint
}

// Instance flags, one byte after the port name.
const (
	instPassing  = 1
	instOwnAddrs = 2 // clear: the instance's addresses are the container's
	instProxy    = 4
	instExt      = 8 // version 2: extensions follow
	instFlags    = instPassing | instOwnAddrs | instProxy | instExt
)

// Instance extension kinds (format version 2).
const (
	extMetrics = 1   // the metrics endpoint: port, path
	maxExts    = 16  // extensions of one instance
	maxExtSize = 600 // one extension's body: a string and a few numbers
)

// delta is a change of one owner's records: the state at Version is the
// state at the previous seq with Puts stored and Deletes removed.
type delta struct {
	Owner   string
	Version Version
	Sent    time.Time
	// Resync says the change did not fit a packet: receivers ask for the
	// owner's full state instead.
	Resync  bool
	Puts    []wireRecord
	Deletes []string
}

// state is one owner's full state.
type state struct {
	Owner   string
	Version Version
	Sent    time.Time
	Records []wireRecord
}

type digestEntry struct {
	Owner   string
	Version Version
}

type pushPull struct {
	Sender string
	States [][]byte // encoded states, decoded one by one
	Digest []digestEntry
}

// request asks for the full states of Wants, each with the version the
// asker holds: the answer skips those it holds no newer.
type request struct {
	From  string
	Wants []digestEntry
	To    string // where it goes; not on the wire
}
