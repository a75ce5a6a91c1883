package cluster

import (
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport is memberlist's own UDP+TCP transport with every
// packet and stream byte counted, memberlist's protocol included, so the
// bytes a node spends on gossip can be read off its metrics.
type countingTransport struct {
	nt      *memberlist.NetTransport
	m       *metrics
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	stop    sync.Once
	// cut, when set, drops all traffic to and from the addresses it
	// reports: a network cut, for tests.
	cut atomic.Pointer[func(addr string) bool]
}

// isCut reports whether traffic with addr is dropped.
func (t *countingTransport) isCut(addr string) bool {
	f := t.cut.Load()
	return f != nil && (*f)(addr)
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

// newTransport binds host:port (port 0: any free port) and starts counting.
func newTransport(host string, port int, m *metrics, logger *log.Logger) (*countingTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host}, BindPort: port, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", net.JoinHostPort(host, fmt.Sprint(port)), err)
	}
	t := &countingTransport{
		nt: nt, m: m, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		done: make(chan struct{}),
	}
	go t.countPackets()
	go t.countStreams()
	return t, nil
}

// port is the bound port.
func (t *countingTransport) port() int { return t.nt.GetAutoBindPort() }

// countPackets and countStreams end when the inner transport shuts down
// (its channels are never closed, so done tells them).
func (t *countingTransport) countPackets() {
	for {
		select {
		case p := <-t.nt.PacketCh():
			if t.isCut(p.From.String()) {
				continue
			}
			t.m.msgsIn.Inc()
			t.m.bytesIn.Add(float64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *countingTransport) countStreams() {
	for {
		select {
		case c := <-t.nt.StreamCh():
			if t.isCut(c.RemoteAddr().String()) {
				c.Close()
				continue
			}
			t.m.msgsIn.Inc()
			select {
			case t.streams <- &countingConn{Conn: c, m: t.m}:
			case <-t.done:
				c.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.nt.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.isCut(a.Addr) {
		return time.Now(), nil // lost on the way
	}
	t.m.msgsOut.Inc()
	t.m.bytesOut.Add(float64(len(b)))
	return t.nt.WriteToAddress(b, a)
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.isCut(a.Addr) {
		return nil, fmt.Errorf("dial %s: network cut", a.Addr)
	}
	c, err := t.nt.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	t.m.msgsOut.Inc()
	return &countingConn{Conn: c, m: t.m}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the inner transport. Its listeners may be blocked
// handing over a packet or a connection: both are drained (and dropped)
// until it has stopped, then the counting goroutines end.
func (t *countingTransport) Shutdown() error {
	errc := make(chan error, 1)
	go func() { errc <- t.nt.Shutdown() }()
	for {
		select {
		case err := <-errc:
			t.stop.Do(func() { close(t.done) })
			return err
		case <-t.nt.PacketCh():
		case c := <-t.nt.StreamCh():
			c.Close()
		}
	}
}

// countingConn counts a stream's bytes both ways.
type countingConn struct {
	net.Conn
	m *metrics
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.bytesIn.Add(float64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.m.bytesOut.Add(float64(n))
	return n, err
}
