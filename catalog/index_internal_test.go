package catalog

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Index() must not fall behind the last write once the writes are done.
// It once did (76a31af): memdb's Commit released the writer lock before
// write stored the new index, so a second write could commit and store a
// higher index in between, and the first write's plain Store took it back
// down. Writes now hold writeMu until their snapshot is published; this
// test forces the same interleaving and checks the outcome.
//
// With one P, the first writer (this goroutine) takes the lock, lets a
// second writer queue behind it, releases the lock and takes it straight
// back, so that the second writer has waited more than 1ms when it finds
// the lock taken again, and the mutex turns to starvation mode. The next
// Unlock then hands the lock, and the P, directly to the waiter.
func TestIndexNotBehindAfterOverlappingWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := New()
	change := func(w *writeTxn, id string) error {
		ctr := &Container{ID: id, Target: id, Node: "n", Source: SourceDocker,
			Addrs: []NetAddr{{Prefix: netip.MustParsePrefix("172.18.0.5/16")}}}
		inst := &Instance{ID: InstanceID(id, "80/tcp"), Service: "books-ms", Protocol: ProtoTCP, Port: 80,
			ContainerID: id, Target: id, Node: "n", Source: SourceDocker}
		_, err := w.putRecord(ContainerRecord{Container: ctr, Instances: []*Instance{inst}})
		return err
	}

	other := make(chan uint64, 1)
	if _, err := c.write(func(w *writeTxn) error {
		go func() {
			ctr := &Container{ID: "other", Target: "other", Node: "n", Source: SourceDocker}
			idx, err := c.PutContainer(ctr, nil) // waits for the lock
			if err != nil {
				t.Error(err)
			}
			other <- idx
		}()
		time.Sleep(2 * time.Millisecond) // the other writer queues on the lock
		return change(w, "c1")
	}); err != nil {
		t.Fatal(err)
	}
	// The Unlock woke the other writer, but it has not run yet: this write
	// gets the lock first, and the other writer, on waking, finds it taken
	// after waiting more than 1ms.
	idx, err := c.write(func(w *writeTxn) error {
		time.Sleep(2 * time.Millisecond)
		return change(w, "c2")
	})
	if err != nil {
		t.Fatal(err)
	}
	otherIdx := <-other

	if idx == otherIdx {
		t.Fatalf("both writes returned index %d", idx)
	}
	if got := c.Index(); got != max(idx, otherIdx) {
		t.Errorf("Index() = %d after the writes returned %d and %d", got, idx, otherIdx)
	}
}
