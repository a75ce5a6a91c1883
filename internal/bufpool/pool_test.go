package bufpool

import "testing"

// TestPutAllocatesNothing: returning a buffer costs no allocation, which
// is the point of the pool on every proxied response.
func TestPutAllocatesNothing(t *testing.T) {
	var p Pool
	buf := p.Get()
	if len(buf) != Size {
		t.Fatalf("len %d, want %d", len(buf), Size)
	}
	allocs := testing.AllocsPerRun(100, func() { p.Put(p.Get()) })
	if allocs != 0 {
		t.Errorf("%v allocations per Get and Put, want 0", allocs)
	}
	p.Put(make([]byte, 10)) // too small: dropped, not a panic
}
