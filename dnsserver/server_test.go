package dnsserver

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// serve runs a Server for h on a free loopback port until the test ends.
func serve(t *testing.T, h dns.Handler) string {
	t.Helper()
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: h, UDPSockets: 2, TCPIdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, 5*time.Second, func() { close(started) }) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown, want nil", err)
		}
	})
	return srv.Addr()
}

func TestServerUDPAndTCP(t *testing.T) {
	cat := seed(t)
	bigService(t, cat, 60)
	addr := serve(t, newHandler(t, testConfig(cat)))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := &dns.Client{Net: network, Timeout: 2 * time.Second}
			r, _, err := c.Exchange(newQuery("books-ms.service.local.", dns.TypeA, 0), addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 2 {
				t.Fatalf("rcode %s AA=%v %d answers, want NOERROR, AA, 2", dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
			}
			r, _, err = c.Exchange(newQuery("big.service.local.", dns.TypeSRV, 0), addr)
			if err != nil {
				t.Fatal(err)
			}
			if network == "udp" && (!r.Truncated || len(r.Answer) == 60) {
				t.Errorf("UDP: TC=%v with %d answers, want truncated", r.Truncated, len(r.Answer))
			}
			if network == "tcp" && (r.Truncated || len(r.Answer) != 60 || len(r.Extra) != 60) {
				t.Errorf("TCP: TC=%v with %d answers and %d additional, want all 60 of each", r.Truncated, len(r.Answer), len(r.Extra))
			}
		})
	}
}

// Garbage, responses and odd opcodes never stop the server: a normal query
// right after still answers.
func TestServerSurvivesMalformedPackets(t *testing.T) {
	addr := serve(t, newHandler(t, testConfig(seed(t))))
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp := newQuery("books-ms.service.local.", dns.TypeA, 0)
	resp.Response = true
	respWire, _ := resp.Pack()
	notify := newQuery("local.", dns.TypeSOA, 0)
	notify.Opcode = dns.OpcodeNotify
	notifyWire, _ := notify.Pack()
	packets := [][]byte{
		{},               // empty
		{0x12},           // short header
		make([]byte, 12), // header only, QDCOUNT 0
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a'},              // label runs past the end
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, // compression pointer to itself
		respWire,   // a response: dropped
		notifyWire, // NOTIFY: NOTIMP
	}
	for _, p := range packets {
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// Over TCP: a length prefix promising more than is sent, then close.
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write([]byte{0x10, 0x00, 1, 2, 3})
	tc.Close()

	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(newQuery("books-ms.service.local.", dns.TypeA, 0), addr)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("query after malformed packets: %v %v", r, err)
	}
}

func TestListenPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = Listen(ServerConfig{Addr: pc.LocalAddr().String(), Handler: dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})})
	if err == nil {
		t.Fatal("Listen on a taken port succeeded")
	}
	t.Logf("error: %v", err)
}

// The UDP sockets get large receive buffers, so a burst that arrives while
// the read loop waits for a core is queued, not dropped (as root the size
// passes net.core.rmem_max).
func TestUDPBuffers(t *testing.T) {
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", Handler: dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}), UDPSockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rc, err := srv.udp[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	_ = rc.Control(func(fd uintptr) { size, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && size < udpBufferSize {
		t.Errorf("receive buffer %d bytes as root, want at least %d", size, udpBufferSize)
	}
	t.Logf("receive buffer: %d bytes", size)
}
