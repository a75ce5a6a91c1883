// Package bufpool lends httputil.ReverseProxy its copy buffers, for the
// proxy and for the bare ReverseProxy of the proxy benchmark.
package bufpool

import (
	"net/http/httputil"
	"sync"
)

// Size is the size of the buffers, ReverseProxy's own default.
const Size = 32 << 10

// Pool is an httputil.BufferPool of Size-byte buffers; the zero value is
// ready to use. It keeps them as array pointers, which a slice converts to
// without allocating: a pointer to a slice header, the usual way, costs
// an allocation on every Put.
type Pool struct{ p sync.Pool }

var _ httputil.BufferPool = (*Pool)(nil)

// Get returns a buffer of Size bytes.
func (b *Pool) Get() []byte {
	if v, ok := b.p.Get().(*[Size]byte); ok {
		return v[:]
	}
	return new([Size]byte)[:]
}

// Put takes back a buffer that Get returned; a smaller one is dropped.
func (b *Pool) Put(buf []byte) {
	if cap(buf) >= Size {
		b.p.Put((*[Size]byte)(buf[:Size]))
	}
}
