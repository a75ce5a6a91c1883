package cluster

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The decoding half of the wire format wire.go describes: every length and
// count capped before anything is allocated, the first error sticks.

// decoder reads what encoder wrote. The first error sticks; every read
// after it returns zero values, so a message is checked once at the end.
type decoder struct {
	b   []byte
	err error
	// names holds the service names, tags and instance id suffixes read
	// so far, so that the thousand records of a state share one string
	// for each rather than allocate one per record.
	names map[string]string
}

// maxNames bounds the strings a decoder keeps for sharing.
const maxNames = 1024

// name reads a string that many records repeat (a service, a tag): the
// copy read before when there is one.
func (d *decoder) name() string {
	p := d.raw(maxString)
	if s, ok := d.names[string(p)]; ok {
		return s
	}
	s := string(p)
	if len(d.names) < maxNames {
		if d.names == nil {
			d.names = make(map[string]string)
		}
		d.names[s] = s
	}
	return s
}

// strAs reads a string, and returns prev itself when they are equal: a
// container's name and target are often its id or its name.
func (d *decoder) strAs(prev string) string {
	p := d.raw(maxString)
	if string(p) == prev {
		return prev
	}
	return string(p)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads what binary.AppendVarint wrote: a zig-zag uvarint.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) raw(max int) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("length %d over %d or past the end", n, max)
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw(maxString)) }

// count reads a list length, capped, and no longer than the bytes left
// could hold (each element takes a byte at least).
func (d *decoder) count(max int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("count %d over %d or past the end", n, max)
		return 0
	}
	return int(n)
}

func (d *decoder) addr() netip.Addr {
	switch n := d.byte1(); n {
	case 0:
		return netip.Addr{}
	case 4, 16:
		if len(d.b) < int(n) {
			d.fail("truncated address")
			return netip.Addr{}
		}
		a, _ := netip.AddrFromSlice(d.b[:n])
		d.b = d.b[n:]
		return a
	default:
		d.fail("address of %d bytes", n)
		return netip.Addr{}
	}
}

func (d *decoder) netAddrs() []catalog.NetAddr {
	n := d.count(maxList)
	out := make([]catalog.NetAddr, 0, n)
	for range n {
		nw := d.str()
		a := d.addr()
		bits := int(d.byte1())
		if d.err != nil {
			return nil
		}
		p, err := a.Prefix(a.BitLen())
		if err != nil || bits > a.BitLen() {
			d.fail("address %v/%d", a, bits)
			return nil
		}
		p = netip.PrefixFrom(p.Addr(), bits)
		na := catalog.NetAddr{Network: nw, Prefix: p}
		if name, id, ok := strings.Cut(nw, spanSep); ok {
			na.Network, na.NetworkID, na.SpansHosts = name, id, true
		}
		out = append(out, na)
	}
	return out
}

func (d *decoder) version() (Version, time.Time) {
	v := Version{Incarnation: d.uvarint(), Seq: d.uvarint()}
	return v, time.Unix(0, d.varint())
}

func (d *decoder) record() wireRecord {
	r := wireRecord{ID: d.str()}
	r.Name = d.strAs(r.ID)
	r.Target = d.strAs(r.Name)
	switch d.byte1() {
	case 1:
		r.Source = catalog.SourceDocker
	case 2:
		r.Source = catalog.SourceAPI
	default:
		d.fail("source")
	}
	r.Passing = d.byte1() == 1
	r.HostIP = d.addr()
	r.Addrs = d.netAddrs()
	n := d.count(maxList)
	r.Insts = make([]wireInstance, 0, n)
	for range n {
		in := wireInstance{IDSuffix: d.name(), Service: d.name()}
		nt := d.count(maxList)
		for range nt {
			in.Tags = append(in.Tags, d.name())
		}
		in.Protocol = catalog.ProtoTCP
		if d.byte1() == 1 {
			in.Protocol = catalog.ProtoUDP
		}
		in.Port = d.port()
		in.PortName = d.name()
		flags := d.byte1()
		if flags&^instFlags != 0 {
			d.fail("instance flags %#x", flags)
		}
		in.Passing = flags&instPassing != 0
		if flags&instOwnAddrs == 0 {
			in.Addrs = d.netAddrs()
		}
		in.HostIP = d.addr()
		in.HostPort = d.port()
		if flags&instProxy != 0 {
			pr := &catalog.ProxyRoute{}
			np := d.count(catalog.MaxProxyPaths)
			for range np {
				pr.Paths = append(pr.Paths, d.str())
			}
			pr.Host = d.str()
			pr.Strip = d.byte1() == 1
			in.Proxy = pr
		}
		if flags&instExt != 0 {
			d.extensions(&in)
		}
		if d.err != nil {
			return r
		}
		r.Insts = append(r.Insts, in)
	}
	return r
}

// extensions reads an instance's extensions into in, skipping kinds this
// version does not know; a known kind given twice, or a body that does
// not read to its end, is malformed.
func (d *decoder) extensions(in *wireInstance) {
	n := d.count(maxExts)
	for range n {
		kind := d.uvarint()
		body := d.raw(maxExtSize)
		if d.err != nil {
			return
		}
		switch kind {
		case extMetrics:
			if in.Metrics != nil {
				d.fail("metrics extension twice")
				return
			}
			// Checked with the rules of local labels by toCatalog.
			x := decoder{b: body}
			in.Metrics = &catalog.MetricsEndpoint{Port: x.port(), Path: x.str()}
			if err := x.end(); err != nil {
				d.fail("metrics extension: %v", err)
			}
		}
	}
}

func (d *decoder) port() uint16 {
	v := d.uvarint()
	if v > 65535 {
		d.fail("port %d", v)
	}
	return uint16(v)
}

// decodeHeader checks the version and returns the type and the body.
func decodeHeader(b []byte) (msgType, []byte, error) {
	if len(b) < 2 {
		return 0, nil, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if b[0] < minWireVersion || b[0] > wireVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, want %d to %d", errMalformed, b[0], minWireVersion, wireVersion)
	}
	return msgType(b[1]), b[2:], nil
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes left over", len(d.b))
	}
	return d.err
}

func decodeDelta(body []byte) (*delta, error) {
	d := decoder{b: body}
	m := &delta{Owner: d.str()}
	m.Version, m.Sent = d.version()
	m.Resync = d.byte1() == 1
	n := d.count(maxList)
	for range n {
		if m.Puts = append(m.Puts, d.record()); d.err != nil {
			break
		}
	}
	n = d.count(maxList)
	for range n {
		m.Deletes = append(m.Deletes, d.str())
	}
	return m, d.end()
}

// decodeState decodes a state and returns each record's encoding too.
func decodeState(body []byte) (*state, [][]byte, error) {
	d := decoder{b: body}
	s := &state{Owner: d.str()}
	s.Version, s.Sent = d.version()
	n := d.count(maxList)
	s.Records = make([]wireRecord, 0, n)
	raws := make([][]byte, 0, n)
	for range n {
		rest := d.b
		if s.Records = append(s.Records, d.record()); d.err != nil {
			break
		}
		raws = append(raws, rest[:len(rest)-len(d.b)])
	}
	return s, raws, d.end()
}

// stateHead reads a state's owner and version only.
func stateHead(body []byte) (string, Version, error) {
	d := decoder{b: body}
	owner := d.str()
	v, _ := d.version()
	return owner, v, d.err
}

func decodePushPull(body []byte) (*pushPull, error) {
	d := decoder{b: body}
	p := &pushPull{Sender: d.str()}
	n := d.count(maxOwners)
	for range n {
		p.States = append(p.States, d.raw(maxStateBytes))
	}
	p.Digest = d.digest()
	return p, d.end()
}

// digest reads what encoder.digest writes.
func (d *decoder) digest() []digestEntry {
	var ds []digestEntry
	for range d.count(maxOwners) {
		e := digestEntry{Owner: d.str()}
		e.Version = Version{Incarnation: d.uvarint(), Seq: d.uvarint()}
		ds = append(ds, e)
	}
	return ds
}

func decodeRequest(body []byte) (*request, error) {
	d := decoder{b: body}
	r := &request{From: d.str()}
	r.Wants = d.digest()
	return r, d.end()
}

func decodeLeave(body []byte) (string, uint64, error) {
	d := decoder{b: body}
	owner := d.str()
	inc := d.uvarint()
	return owner, inc, d.end()
}
