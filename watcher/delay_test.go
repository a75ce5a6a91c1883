package watcher

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func sampleCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var d dto.Metric
	if err := h.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

// TestEventToCatalogDelay: a start event is one catalog write, observed
// once in event_to_catalog_seconds; the full sync before it, which no
// event asked for, is not observed.
func TestEventToCatalogDelay(t *testing.T) {
	h := newHarness(t, Config{})
	h.e.run(newCtr(1, "a"))
	h.start()
	h.waitSynced()
	if n := sampleCount(t, h.w.met.eventDelay); n != 0 {
		t.Fatalf("%d observations after the first sync, want 0", n)
	}
	h.e.run(newCtr(2, "b"))
	if err := h.e.emit(events.ContainerEventType, "start", ctrID(2)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("b in the catalog, nothing pending", func() bool { return h.view() == "a b" && h.w.pending.Load() == 0 })
	if n := sampleCount(t, h.w.met.eventDelay); n != 1 {
		t.Fatalf("%d observations after one start event, want 1", n)
	}
}

// TestQueueKeepsEarliestEvent: events merged into one inspect hand its
// result the arrival of the first; a stale result takes nothing.
func TestQueueKeepsEarliestEvent(t *testing.T) {
	q := newQueue(10, time.Millisecond, time.Millisecond)
	before := time.Now()
	q.add(hint{id: "a"})
	between := time.Now()
	time.Sleep(time.Millisecond)
	q.add(hint{id: "a"})
	if id, _ := q.get(); id != "a" {
		t.Fatalf("handed out %q", id)
	}
	q.add(hint{id: "a"}) // while processing: this result is stale
	if since, stale := q.done("a"); !stale || !since.IsZero() {
		t.Fatalf("stale result: since %v stale %t", since, stale)
	}
	q.get()
	since, stale := q.done("a")
	if stale || since.Before(before) || since.After(between) {
		t.Fatalf("since %v stale %t, want the first event's arrival in [%v, %v]", since, stale, before, between)
	}
	if since, _ := q.done("a"); !since.IsZero() {
		t.Fatalf("the time was handed out twice: %v", since)
	}
}
