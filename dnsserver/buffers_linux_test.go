package dnsserver

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// minRecvBuffer is the least receive buffer a server's UDP socket may
// have: udpBufferSize when this process may pass net.core.rmem_max
// (SO_RCVBUFFORCE needs CAP_NET_ADMIN, which root in a container usually
// lacks: being root is not the test), else as much of it as rmem_max lets
// SO_RCVBUF set. The kernel doubles either for its bookkeeping.
func minRecvBuffer(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var forced error
	if err := rc.Control(func(fd uintptr) {
		forced = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpBufferSize)
	}); err != nil {
		t.Fatal(err)
	}
	if forced == nil {
		return udpBufferSize
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Logf("no CAP_NET_ADMIN (%v), and net.core.rmem_max unreadable: %v", forced, err)
		return 0
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("net.core.rmem_max %q: %v", b, err)
	}
	t.Logf("no CAP_NET_ADMIN (%v): capped at net.core.rmem_max %d", forced, limit)
	return min(udpBufferSize, limit)
}
