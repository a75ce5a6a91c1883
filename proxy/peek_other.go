//go:build !unix

package proxy

import "net"

// idleProbe cannot peek on this system: an idle connection the instance
// closed is found when a request fails on it (h1Transport then sends the
// request again on a new connection when that is safe).
type idleProbe struct{}

func (*idleProbe) init(net.Conn) {}

func (*idleProbe) closed() bool { return false }
