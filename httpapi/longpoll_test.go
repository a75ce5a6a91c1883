package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// poll runs one GET in the background; its answer arrives on the channel.
func (f *fixture) poll(ctx context.Context, path string) <-chan *httptest.ResponseRecorder {
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() { ch <- f.doCtx(ctx, http.MethodGet, path, "") }()
	return ch
}

func TestLongPollWakesOnChange(t *testing.T) {
	f := newFixture(t, nil)
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	idx := indexOf(t, f.do("GET", "/v1/services/books", ""))

	done := f.poll(context.Background(), fmt.Sprintf("/v1/services/books?index=%d&wait=30s", idx))
	waitFor(t, func() bool { return len(f.api.polls) == 1 })

	// A change to another service does not end the poll.
	f.register("p1", `{"service":"papers","address":"10.0.0.9","port":80}`)
	select {
	case w := <-done:
		t.Fatalf("long poll on books returned on a change to papers: %d %s", w.Code, w.Body)
	case <-time.After(50 * time.Millisecond):
	}

	f.register("b2", `{"service":"books","address":"10.0.0.2","port":80}`)
	// The new index below, not the time taken, tells the change woke the
	// poll (its wait would answer the old one); 20s is a failure timeout.
	var w *httptest.ResponseRecorder
	select {
	case w = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not return within 20s of a change to its service")
	}
	if w.Code != 200 {
		t.Fatalf("code %d %s", w.Code, w.Body)
	}
	if got := indexOf(t, w); got <= idx || got != f.cat.Index() {
		t.Errorf("X-Svcdns-Index %d, want the new index %d (above %d)", got, f.cat.Index(), idx)
	}
	if list := decode[[]Instance](t, w); len(list) != 2 {
		t.Errorf("long poll answered %d instances, want 2 (b1 and b2)", len(list))
	}
	if n := len(f.api.polls); n != 0 {
		t.Errorf("%d long polls still counted after the answer", n)
	}
}

func TestLongPollTimesOut(t *testing.T) {
	f := newFixture(t, nil)
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	idx := indexOf(t, f.do("GET", "/v1/services/books", ""))
	f.register("p1", `{"service":"papers","address":"10.0.0.9","port":80}`)

	const wait = 200 * time.Millisecond
	// A failure timeout only: the poll must end at its wait, long before.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	w := f.doCtx(ctx, "GET", fmt.Sprintf("/v1/services/books?index=%d&wait=%s", idx, wait), "")
	if d := time.Since(start); d < wait || ctx.Err() != nil {
		t.Errorf("long poll returned after %v (client's context: %v), want at its wait of %v", d, ctx.Err(), wait)
	}
	if w.Code != 200 || indexOf(t, w) != idx {
		t.Errorf("at expiry: %d index %d, want 200 and the old index %d", w.Code, indexOf(t, w), idx)
	}
	if list := decode[[]Instance](t, w); len(list) != 1 || list[0].ID != "b1" {
		t.Errorf("at expiry answered %+v, want b1", list)
	}
}

// Without ?index, or with an index the service is already past, a read
// never blocks; an index from an earlier svcdns process (above the
// catalog's) answers at once too.
func TestLongPollNoBlock(t *testing.T) {
	f := newFixture(t, nil)
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	f.register("p1", `{"service":"papers","address":"10.0.0.9","port":80}`)
	for _, path := range []string{
		"/v1/services/books?wait=1m",
		"/v1/services/books?index=0&wait=1m",
		"/v1/services/books?index=0",
		"/v1/services/books?index=999&wait=1m",
	} {
		// Ended by the client's context, the read would have blocked (its
		// wait is a minute or more); 30s is a failure timeout only.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w := f.doCtx(ctx, "GET", path, "")
		blocked := ctx.Err()
		cancel()
		if blocked != nil || w.Code != 200 {
			t.Errorf("GET %s: %d, ended by the client's context: %v; want 200 at once", path, w.Code, blocked)
		}
		if got := indexOf(t, w); got != 1 {
			t.Errorf("GET %s: X-Svcdns-Index %d, want books' index 1", path, got)
		}
	}
}

func TestLongPollCap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxLongPolls = 1 })
	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	path := "/v1/services/books?index=1&wait=1m"

	ctx, cancel := context.WithCancel(context.Background())
	first := f.poll(ctx, path)
	waitFor(t, func() bool { return len(f.api.polls) == 1 })

	w := f.do("GET", path, "")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second long poll: %d %s, want 429", w.Code, w.Body)
	}
	if msg := errorOf(t, w); !strings.Contains(msg, "long polls") {
		t.Errorf("429 message %q", msg)
	}
	// Plain reads are never refused.
	if w := f.do("GET", "/v1/services/books", ""); w.Code != 200 {
		t.Errorf("plain read while the cap is reached: %d", w.Code)
	}

	cancel() // the client of the first poll goes away
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still waiting 5s after its client went away")
	}
	waitFor(t, func() bool { return len(f.api.polls) == 0 })
	done := f.poll(context.Background(), "/v1/services/books?index=1&wait=10ms")
	if w := <-done; w.Code != 200 {
		t.Errorf("long poll once the first ended: %d %s, want 200", w.Code, w.Body)
	}
}

func TestPollParams(t *testing.T) {
	tests := []struct {
		query string
		index uint64
		wait  time.Duration
	}{
		{"", 0, MaxWait},
		{"index=7", 7, MaxWait},
		{"index=7&wait=30s", 7, 30 * time.Second},
		{"index=7&wait=1h", 7, MaxWait},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/v1/services/x?"+tc.query, nil)
		idx, wait, err := pollParams(r.URL.Query())
		if err != nil || idx != tc.index || wait != tc.wait {
			t.Errorf("%q: index %d wait %v err %v, want %d %v", tc.query, idx, wait, err, tc.index, tc.wait)
		}
	}
}
