package forward

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// fake is an upstream resolver on 127.0.0.1 that the test scripts. Its UDP
// handler gets the socket and the sender so it can send anything, forged
// datagrams included; its TCP handler (optional) returns one reply per query.
type fake struct {
	t    testing.TB
	addr string
	pc   net.PacketConn
	ln   net.Listener
	done chan struct{} // closed at cleanup: blocked handlers must return

	mu      sync.Mutex
	queries []*dns.Msg
	froms   []netip.AddrPort
	conns   []net.Conn
	wg      sync.WaitGroup
}

type udpHandler func(f *fake, from net.Addr, req *dns.Msg)
type tcpHandler func(req *dns.Msg) *dns.Msg

// newFake starts a fake upstream. udp nil = never answer (a dead upstream);
// tcp nil = no TCP listener (connection refused).
func newFake(t testing.TB, udp udpHandler, tcp tcpHandler) *fake {
	t.Helper()
	f := &fake{t: t, done: make(chan struct{})}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if tcp == nil {
			f.pc = pc
			break
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			f.pc, f.ln = pc, ln
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatalf("no port free for both udp and tcp: %v", err)
		}
	}
	f.addr = f.pc.LocalAddr().String()
	f.wg.Add(1)
	go f.serveUDP(udp)
	if f.ln != nil {
		f.wg.Add(1)
		go f.serveTCP(tcp)
	}
	t.Cleanup(func() {
		close(f.done)
		f.pc.Close()
		if f.ln != nil {
			f.ln.Close()
		}
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fake) record(m *dns.Msg, from net.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, m)
	if ua, ok := from.(*net.UDPAddr); ok {
		f.froms = append(f.froms, ua.AddrPort())
	}
}

// got returns the queries received so far.
func (f *fake) got() []*dns.Msg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*dns.Msg(nil), f.queries...)
}

func (f *fake) serveUDP(h udpHandler) {
	defer f.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil {
			continue
		}
		f.record(m, from)
		if h == nil {
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			h(f, from, m)
		}()
	}
}

func (f *fake) serveTCP(h tcpHandler) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			for {
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				b := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				m := new(dns.Msg)
				if m.Unpack(b) != nil {
					return
				}
				f.record(m, c.RemoteAddr())
				out, err := h(m).Pack()
				if err != nil {
					f.t.Errorf("fake tcp pack: %v", err)
					return
				}
				frame := binary.BigEndian.AppendUint16(nil, uint16(len(out)))
				if _, err := c.Write(append(frame, out...)); err != nil {
					return
				}
			}
		}()
	}
}

// send packs m and sends it to to from the upstream's socket.
func (f *fake) send(to net.Addr, m *dns.Msg) {
	b, err := m.Pack()
	if err != nil {
		f.t.Errorf("fake pack: %v", err)
		return
	}
	f.raw(to, b)
}

func (f *fake) raw(to net.Addr, b []byte) {
	if _, err := f.pc.WriteTo(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		f.t.Errorf("fake send: %v", err)
	}
}

// answer is the upstream's reply to req carrying rrs (zone-file syntax).
func answer(t testing.TB, req *dns.Msg, rrs ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	for _, s := range rrs {
		m.Answer = append(m.Answer, rr(t, s))
	}
	return m
}

func rr(t testing.TB, s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("rr %q: %v", s, err)
	}
	return r
}

// replyWith is a UDP handler answering every query with rrs.
func replyWith(t testing.TB, rrs ...string) udpHandler {
	return func(f *fake, from net.Addr, req *dns.Msg) { f.send(from, answer(t, req, rrs...)) }
}

// rcodeReply is a UDP handler answering every query with rcode.
func rcodeReply(rcode int) udpHandler {
	return func(f *fake, from net.Addr, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		f.send(from, m)
	}
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	return m
}

// rrStrings renders records for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		out = append(out, r.String())
	}
	return out
}
