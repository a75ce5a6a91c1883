package catalog

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// Index() must not fall behind the committed index once the writes are
// done. memdb's Commit releases the writer lock before write can store the
// new index in c.index, so a second write can commit and store a higher
// index in between; a plain Store by the first write would then take
// c.index back down, and Index() would stay one write behind the data
// until some later write: a DNS answer cache labelled with Index() would
// never be rebuilt for the last change. (76a31af had that plain Store.)
//
// The interleaving is forced, not hoped for. With one P, the first writer
// (this goroutine) takes the lock, lets a second writer queue behind it,
// releases the lock and takes it straight back, so that the second writer
// has waited more than 1ms when it finds the lock taken again, and the
// mutex turns to starvation mode. The next Unlock then hands the lock,
// and the P, directly to the waiter, which runs its whole write before
// Commit returns to the first writer.
func TestIndexNotBehindAfterOverlappingWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := New()
	change := func(w *writeTxn, id string) error {
		ctr := &Container{ID: id, Node: "n", Source: SourceDocker,
			Addrs: []NetAddr{{Prefix: netip.MustParsePrefix("172.18.0.5/16")}}}
		inst := &Instance{ID: id + ":80/tcp", Service: "books-ms", Protocol: ProtoTCP, Port: 80,
			ContainerID: id, Node: "n", Source: SourceDocker}
		_, err := w.putRecord(ContainerRecord{Container: ctr, Instances: []*Instance{inst}})
		return err
	}

	other := make(chan uint64, 1)
	if _, err := c.write(func(w *writeTxn) error {
		go func() {
			ctr := &Container{ID: "other", Node: "n", Source: SourceDocker}
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

	committed := indexTxn(c.db.Txn(false), nil)
	t.Logf("DEBUG idx=%d other=%d committed=%d Index=%d", idx, otherIdx, committed, c.Index())
	if committed != max(idx, otherIdx) {
		t.Fatalf("committed index %d, writes returned %d and %d", committed, idx, otherIdx)
	}
	if got := c.Index(); got != committed {
		t.Errorf("Index() = %d after the writes returned %d and %d; the committed index is %d", got, idx, otherIdx, committed)
	}
}
