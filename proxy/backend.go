package proxy

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
)

// errInstanceLeft: the instance left the catalog (stopped, drained,
// deregistered, moved) before the proxy had a connection to it.
var errInstanceLeft = errors.New("instance left the catalog")

// backend is one instance the proxy sends requests to. It outlives the
// tables that list it, as long as the instance keeps its address, so that
// its count of requests in flight stays true across rebuilds.
//
// Each backend has a transport of its own: its connections belong to it,
// so that its leaving can close them, and its dialer knows which instance
// it dials for, even when the instance left between the pick and the dial.
type backend struct {
	id       string
	service  string
	addr     string // host:port
	inflight atomic.Int64
	// newTransport makes the transport on the first request (most
	// instances of a large catalog never get one, and a transport is
	// 400 bytes); nil in a builder that only makes tables.
	newTransport func(*backend) *h1Transport
	tr           atomic.Pointer[h1Transport]
	// gone is closed when the catalog no longer lists the instance at
	// addr: a request picked from an older table skips it, and a dial to
	// it, in progress or not yet begun, is given up and the request
	// retried elsewhere.
	gone     chan struct{}
	goneFlag atomic.Bool
}

func newBackend(id, service, addr string) *backend {
	return &backend{id: id, service: service, addr: addr, gone: make(chan struct{})}
}

func (be *backend) isGone() bool { return be.goneFlag.Load() }

// transport sends the requests to the instance.
func (be *backend) transport() *h1Transport {
	if t := be.tr.Load(); t != nil {
		return t
	}
	// One stored after leave looked is dialed only once the backend is
	// gone, which dial refuses: it never holds a connection.
	be.tr.CompareAndSwap(nil, be.newTransport(be))
	return be.tr.Load()
}

// closeIdle closes the backend's idle connections, if it has a transport.
func (be *backend) closeIdle() {
	if t := be.tr.Load(); t != nil {
		t.closeIdle()
	}
}

// leave marks the backend gone, once, and closes its idle connections. A
// connection serving a request when it leaves is closed when the request
// ends: h1Transport keeps no connection once closeIdle ran, and the
// fallback http.Transport's CloseIdleConnections closes the connections
// that become idle after it too, until a request asks that transport for
// a connection. Only one that picked the backend just before it left
// does; its dial is refused, and refuse closes them again. The requests
// in flight complete.
func (be *backend) leave() {
	if !be.goneFlag.CompareAndSwap(false, true) {
		return
	}
	close(be.gone)
	be.closeIdle()
}

// dial connects to the instance with d, and gives up as soon as the
// backend is gone: a dial to a container whose network is gone gets no
// answer at all, and would wait out the connect timeout. A dial that
// would begin after the instance left (it left between the pick and the
// dial) is not tried, and a connection made just as it left is closed:
// the request, never sent, is retried on another instance (a failed dial
// is retryable).
func (be *backend) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	if be.isGone() {
		return nil, be.refuse(network)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-be.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := d.DialContext(ctx, network, addr)
	if be.isGone() {
		if c != nil {
			_ = c.Close()
		}
		return nil, be.refuse(network)
	}
	return c, err
}

// refuse is the error of a dial to a gone backend. The request that asked
// for the dial undid leave's CloseIdleConnections when it looked for an
// idle connection: refuse closes again the connections that become idle
// from now on.
func (be *backend) refuse(network string) error {
	be.closeIdle()
	return &net.OpError{Op: "dial", Net: network, Err: errInstanceLeft}
}
