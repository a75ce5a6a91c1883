package cluster

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The encoding half of the wire format wire.go describes.

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) byte1(v byte)     { e.b = append(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }

func (e *encoder) header(t msgType) { e.b = append(e.b, wireVersion, byte(t)) }

func (e *encoder) addr(a netip.Addr) {
	if !a.IsValid() {
		e.byte1(0)
		return
	}
	s := a.AsSlice()
	e.byte1(byte(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) netAddrs(as []catalog.NetAddr) {
	e.uvarint(uint64(len(as)))
	for _, a := range as {
		if a.SpansHosts {
			e.str(a.Network + spanSep + a.NetworkID)
		} else {
			e.str(a.Network)
		}
		e.addr(a.Prefix.Addr())
		e.byte1(byte(a.Prefix.Bits()))
	}
}

func (e *encoder) version(v Version, sent time.Time) {
	e.uvarint(v.Incarnation)
	e.uvarint(v.Seq)
	e.varint(sent.UnixNano())
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func sourceByte(s catalog.Source) byte {
	if s == catalog.SourceAPI {
		return 2
	}
	return 1
}

func (e *encoder) record(r *wireRecord) {
	e.str(r.ID)
	e.str(r.Name)
	e.str(r.Target)
	e.byte1(sourceByte(r.Source))
	e.byte1(boolByte(r.Passing))
	e.addr(r.HostIP)
	e.netAddrs(r.Addrs)
	e.uvarint(uint64(len(r.Insts)))
	for i := range r.Insts {
		in := &r.Insts[i]
		e.str(in.IDSuffix)
		e.str(in.Service)
		e.uvarint(uint64(len(in.Tags)))
		for _, t := range in.Tags {
			e.str(t)
		}
		e.byte1(boolByte(in.Protocol == catalog.ProtoUDP))
		e.uvarint(uint64(in.Port))
		e.str(in.PortName)
		flags := boolByte(in.Passing)
		if in.Addrs == nil {
			flags |= instOwnAddrs
		}
		if in.Proxy != nil {
			flags |= instProxy
		}
		if in.Metrics != nil {
			flags |= instExt
		}
		e.byte1(flags)
		if in.Addrs != nil {
			e.netAddrs(in.Addrs)
		}
		e.addr(in.HostIP)
		e.uvarint(uint64(in.HostPort))
		if r := in.Proxy; r != nil {
			e.uvarint(uint64(len(r.Paths)))
			for _, p := range r.Paths {
				e.str(p)
			}
			e.str(r.Host)
			e.byte1(boolByte(r.Strip))
		}
		if m := in.Metrics; m != nil {
			var x encoder
			x.uvarint(uint64(m.Port))
			x.str(m.Path)
			e.uvarint(1)
			e.uvarint(extMetrics)
			e.bytes(x.b)
		}
	}
}

func encodeDelta(d *delta) []byte {
	e := encoder{b: make([]byte, 0, 256)}
	e.header(msgDelta)
	e.str(d.Owner)
	e.version(d.Version, d.Sent)
	e.byte1(boolByte(d.Resync))
	e.uvarint(uint64(len(d.Puts)))
	for i := range d.Puts {
		e.record(&d.Puts[i])
	}
	e.uvarint(uint64(len(d.Deletes)))
	for _, id := range d.Deletes {
		e.str(id)
	}
	return e.b
}

func encodeState(s *state) []byte {
	e := encoder{b: make([]byte, 0, 64+100*len(s.Records))}
	e.header(msgState)
	e.str(s.Owner)
	e.version(s.Version, s.Sent)
	e.uvarint(uint64(len(s.Records)))
	for i := range s.Records {
		e.record(&s.Records[i])
	}
	return e.b
}

func encodePushPull(p *pushPull) []byte {
	n := 64
	for _, s := range p.States {
		n += len(s) + 4
	}
	e := encoder{b: make([]byte, 0, n)}
	e.header(msgPushPull)
	e.str(p.Sender)
	e.uvarint(uint64(len(p.States)))
	for _, s := range p.States {
		e.bytes(s)
	}
	e.digest(p.Digest)
	return e.b
}

// digest writes a list of owners with their versions: a push/pull's
// digest and a request's wants alike.
func (e *encoder) digest(ds []digestEntry) {
	e.uvarint(uint64(len(ds)))
	for _, d := range ds {
		e.str(d.Owner)
		e.uvarint(d.Version.Incarnation)
		e.uvarint(d.Version.Seq)
	}
}

func encodeRequest(r *request) []byte {
	e := encoder{}
	e.header(msgRequest)
	e.str(r.From)
	e.digest(r.Wants)
	return e.b
}

func encodeLeave(owner string, inc uint64) []byte {
	e := encoder{}
	e.header(msgLeave)
	e.str(owner)
	e.uvarint(inc)
	return e.b
}

// encodeRawState builds a state from records already encoded.
func encodeRawState(owner string, v Version, sent time.Time, n int, each func(func([]byte))) []byte {
	e := encoder{b: make([]byte, 0, 64+100*n)}
	e.header(msgState)
	e.str(owner)
	e.version(v, sent)
	e.uvarint(uint64(n))
	each(func(raw []byte) { e.b = append(e.b, raw...) })
	return e.b
}
