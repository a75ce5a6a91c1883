package forward

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// udpBufSize is the UDP read buffer. It is larger than the 1232 bytes we
// advertise, for upstreams that ignore it; a datagram that fills it may
// have been cut by the kernel and is treated as truncated (TCP retry).
const udpBufSize = 4096

var udpBufPool = sync.Pool{New: func() any {
	b := make([]byte, udpBufSize)
	return &b
}}

// verdict is what one received message means for the exchange.
type verdict int

const (
	vMismatch  verdict = iota // not our reply: ignore it and keep reading
	vAccept                   // our reply
	vTruncated                // our reply, but cut: retry over TCP
)

// exchange sends q (with a fresh ID) to u over network ("udp" or "tcp") on a
// fresh socket and waits until end (or ctx) for a matching reply. For UDP,
// truncated reports a TC reply (resp may then be nil if it did not parse).
func (f *Forwarder) exchange(ctx context.Context, u *upstream, q *dns.Msg, network string, end time.Time) (resp *dns.Msg, truncated bool, err error) {
	id := randomID()
	q.Id = id
	wire, err := q.Pack()
	if err != nil {
		return nil, false, fmt.Errorf("pack query: %w", err)
	}
	f.m.requests.WithLabelValues(u.name, network).Inc()
	start := time.Now()

	var conn net.Conn
	if network == "udp" {
		// Connected: a kernel-chosen random source port, and only
		// datagrams from u.addr are delivered to us.
		conn, err = net.DialUDP("udp", nil, u.udp)
	} else {
		d := net.Dialer{Deadline: end}
		conn, err = d.DialContext(ctx, "tcp", u.name)
	}
	if err != nil {
		return nil, false, f.ioFail(ctx, u, fmt.Errorf("dial %s: %w", network, err))
	}
	defer conn.Close()
	if err := conn.SetDeadline(end); err != nil {
		return nil, false, f.ioFail(ctx, u, err)
	}
	// Cancelling ctx unblocks the read at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if network == "udp" {
		resp, truncated, err = f.readUDP(conn, u, q, id, wire)
	} else {
		resp, err = f.readTCP(conn, u, q, id, wire)
	}
	if err != nil {
		return nil, false, f.ioFail(ctx, u, err)
	}
	if !truncated {
		f.m.latency.WithLabelValues(u.name).Observe(time.Since(start).Seconds())
	}
	return resp, truncated, nil
}

func (f *Forwarder) readUDP(conn net.Conn, u *upstream, q *dns.Msg, id uint16, wire []byte) (*dns.Msg, bool, error) {
	if _, err := conn.Write(wire); err != nil {
		return nil, false, fmt.Errorf("send udp: %w", err)
	}
	bp := udpBufPool.Get().(*[]byte)
	defer udpBufPool.Put(bp)
	buf := *bp
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, false, fmt.Errorf("read udp: %w", err)
		}
		m, v := check(buf[:n], n == len(buf), q, id)
		switch v {
		case vAccept:
			return m, false, nil
		case vTruncated:
			return m, true, nil
		}
		f.m.errors.WithLabelValues(u.name, kindMismatch).Inc()
	}
}

func (f *Forwarder) readTCP(conn net.Conn, u *upstream, q *dns.Msg, id uint16, wire []byte) (*dns.Msg, error) {
	frame := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(frame, uint16(len(wire)))
	copy(frame[2:], wire)
	if _, err := conn.Write(frame); err != nil {
		return nil, fmt.Errorf("send tcp: %w", err)
	}
	var l [2]byte
	for {
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, fmt.Errorf("read tcp: %w", err)
		}
		data := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, data); err != nil {
			return nil, fmt.Errorf("read tcp: %w", err)
		}
		// Over TCP a TC bit means nothing more can be had: take the
		// message as it is, if it parsed.
		if m, v := check(data, false, q, id); v == vAccept || (v == vTruncated && m != nil) {
			return m, nil
		}
		f.m.errors.WithLabelValues(u.name, kindMismatch).Inc()
	}
}

var errTimeout = errors.New("timeout")

// ioFail classifies a dial, read or write error, counts it, and returns it.
// An error caused by the caller cancelling ctx is not the upstream's fault
// and is not counted.
func (f *Forwarder) ioFail(ctx context.Context, u *upstream, err error) error {
	kind := kindNetwork
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled):
		return fmt.Errorf("%w: %w", cerr, err)
	case cerr != nil, errors.Is(err, os.ErrDeadlineExceeded):
		kind = kindTimeout
		err = errTimeout
	}
	f.m.errors.WithLabelValues(u.name, kind).Inc()
	return err
}

// check decides whether b is the reply to q sent with id. full says the
// read filled the buffer, so the datagram may have been cut.
func check(b []byte, full bool, q *dns.Msg, id uint16) (*dns.Msg, verdict) {
	// Cheap header checks first: a flood of forged datagrams costs no
	// parsing.
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id || b[2]&0x80 == 0 {
		return nil, vMismatch
	}
	tc := b[2]&0x02 != 0 || full
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		if tc {
			return nil, vTruncated
		}
		return nil, vMismatch
	}
	if m.Opcode != q.Opcode {
		return nil, vMismatch
	}
	if len(m.Question) == 0 && rcodeKind(m.Rcode) != "" &&
		len(m.Answer) == 0 && len(m.Ns) == 0 {
		// Some servers (9.9.9.9) send a bare header with REFUSED or
		// SERVFAIL. Taking it only moves us on to the next upstream,
		// never into an answer, so it is safe and saves a timeout.
		return m, vAccept
	}
	if len(m.Question) != 1 || !sameQuestion(m.Question[0], q.Question[0]) {
		return nil, vMismatch
	}
	if tc {
		return m, vTruncated
	}
	return m, vAccept
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && equalFoldASCII(a.Name, b.Name)
}

// equalFoldASCII compares DNS names case-insensitively, ASCII only
// (RFC 4343): no Unicode folding, so "K" never equals the Kelvin sign.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// randomID draws a query ID from crypto/rand (CVE-2019-19794: predictable
// IDs let an off-path attacker forge replies).
func randomID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+ crashes the program instead)
	return binary.BigEndian.Uint16(b[:])
}
