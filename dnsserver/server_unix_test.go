//go:build unix

package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The UDP sockets get large receive buffers, so a burst that arrives while
// the read loop waits for a core is queued, not dropped (on Linux with
// CAP_NET_ADMIN the size passes net.core.rmem_max; elsewhere the kernel
// caps it).
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
	if want := minRecvBuffer(t); size < want {
		t.Errorf("receive buffer %d bytes, want at least %d", size, want)
	}
	t.Logf("receive buffer: %d bytes", size)
}
