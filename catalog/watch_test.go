package catalog_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/svcdns/svcdns/catalog"
)

// quiet is how long a watch must stay silent to count as not fired.
const quiet = 50 * time.Millisecond

// seedWatch stores books-ms on c1 and orders on c2.
func seedWatch(t *testing.T) *catalog.Catalog {
	t.Helper()
	cat := catalog.New()
	c1 := ctr(nodeA, "c1", "books-1", "172.18.0.5/16")
	put(t, cat, c1, inst(c1, "books-ms", 80))
	c2 := ctr(nodeA, "c2", "orders-1", "172.18.0.6/16")
	put(t, cat, c2, inst(c2, "orders", 80))
	return cat
}

func putBooks(mods ...func(*catalog.Instance)) func(*catalog.Catalog) error {
	return func(cat *catalog.Catalog) error {
		c := ctr(nodeA, "c1", "books-1", "172.18.0.5/16")
		_, err := cat.PutContainer(c, []*catalog.Instance{inst(c, "books-ms", 80, mods...)})
		return err
	}
}

func TestServiceWatch(t *testing.T) {
	tests := []struct {
		name   string
		svc    string
		change func(*catalog.Catalog) error
		fires  bool
	}{
		{"instance of the service changes", "books-ms", putBooks(tags("v2")), true},
		{"instance of the service fails", "books-ms", putBooks(failing), true},
		{"instance added", "books-ms", func(cat *catalog.Catalog) error {
			_, err := cat.RegisterInstance(apiInst("ext-1", "books-ms", 80))
			return err
		}, true},
		{"service emptied", "books-ms", func(cat *catalog.Catalog) error {
			_, err := cat.DeleteContainer("c1")
			return err
		}, true},
		{"unknown service appears", "nope", func(cat *catalog.Catalog) error {
			_, err := cat.RegisterInstance(apiInst("ext-1", "nope", 80))
			return err
		}, true},
		{"another service changes", "books-ms", func(cat *catalog.Catalog) error {
			c := ctr(nodeA, "c2", "orders-1", "172.18.0.6/16")
			_, err := cat.PutContainer(c, []*catalog.Instance{inst(c, "orders", 81)})
			return err
		}, false},
		{"a container without instances of it changes", "books-ms", func(cat *catalog.Catalog) error {
			_, err := cat.PutContainer(ctr(nodeA, "c3", "idle", "172.18.0.7/16"), nil)
			return err
		}, false},
		{"no-op write", "books-ms", putBooks(), false},
		{"failing write", "books-ms", func(cat *catalog.Catalog) error {
			c := ctr(nodeA, "c1", "books-1", "172.18.0.5/16")
			_, _ = cat.PutContainer(c, []*catalog.Instance{inst(c, "books-ms", 80, proto("sctp"))})
			return nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := seedWatch(t)
			ws := memdb.NewWatchSet()
			if _, _, err := cat.Service(ws, catalog.ServiceQuery{Service: tt.svc}); err != nil {
				t.Fatal(err)
			}
			if err := tt.change(cat); err != nil {
				t.Fatal(err)
			}
			wait := quiet
			if tt.fires {
				wait = 5 * time.Second
			}
			timedOut := ws.Watch(time.After(wait))
			if timedOut == tt.fires {
				t.Errorf("watch fired = %v, want %v", !timedOut, tt.fires)
			}
		})
	}
}

func TestServicesWatch(t *testing.T) {
	cat := seedWatch(t)
	ws := memdb.NewWatchSet()
	cat.Services(ws)
	if err := putBooks()(cat); err != nil { // no-op
		t.Fatal(err)
	}
	if !ws.Watch(time.After(quiet)) {
		t.Fatal("Services watch fired on a no-op write")
	}
	if _, err := cat.DeleteContainer("c2"); err != nil {
		t.Fatal(err)
	}
	if ws.Watch(time.After(5 * time.Second)) {
		t.Fatal("Services watch did not fire when orders emptied")
	}
}

type waitResult struct {
	idx   uint64
	insts []string
	err   error
}

// waitAsync starts a WaitService and returns where its result arrives.
func waitAsync(ctx context.Context, cat *catalog.Catalog, q catalog.ServiceQuery, minIndex uint64) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		idx, insts, err := cat.WaitService(ctx, q, minIndex)
		ch <- waitResult{idx, instIDs(insts), err}
	}()
	return ch
}

func TestWaitService(t *testing.T) {
	books := catalog.ServiceQuery{Service: "books-ms"}
	tests := []struct {
		name string
		q    catalog.ServiceQuery
		// minIndex from the seeded catalog's books-ms index b and catalog
		// index c.
		minIndex func(b, c uint64) uint64
		timeout  time.Duration
		// writes run once the wait has had time to block; each but the
		// last must not end it.
		writes    []func(*catalog.Catalog) error
		immediate bool // returns before any write
		wantIdx   func(b, c uint64) uint64
		want      []string
	}{
		{
			name: "minIndex 0 returns at once", q: books,
			minIndex: func(b, c uint64) uint64 { return 0 }, immediate: true,
			wantIdx: func(b, c uint64) uint64 { return b }, want: []string{"c1:80/tcp"},
		},
		{
			name: "minIndex below the service index returns at once", q: books,
			minIndex: func(b, c uint64) uint64 { return b - 1 }, immediate: true,
			wantIdx: func(b, c uint64) uint64 { return b }, want: []string{"c1:80/tcp"},
		},
		{
			name: "blocks until the service changes", q: books,
			minIndex: func(b, c uint64) uint64 { return b },
			writes: []func(*catalog.Catalog) error{
				func(cat *catalog.Catalog) error { // another service
					c := ctr(nodeA, "c2", "orders-1", "172.18.0.6/16")
					_, err := cat.PutContainer(c, []*catalog.Instance{inst(c, "orders", 81)})
					return err
				},
				putBooks(), // no-op
				putBooks(tags("v2")),
			},
			wantIdx: func(b, c uint64) uint64 { return c + 2 }, want: []string{"c1:80/tcp"},
		},
		{
			name: "a change the filter hides still ends the wait", q: catalog.ServiceQuery{Service: "books-ms", PassingOnly: true},
			minIndex: func(b, c uint64) uint64 { return b },
			writes:   []func(*catalog.Catalog) error{putBooks(failing)},
			wantIdx:  func(b, c uint64) uint64 { return c + 1 }, want: nil,
		},
		{
			name: "service emptied", q: books,
			minIndex: func(b, c uint64) uint64 { return b },
			writes: []func(*catalog.Catalog) error{func(cat *catalog.Catalog) error {
				_, err := cat.DeleteContainer("c1")
				return err
			}},
			wantIdx: func(b, c uint64) uint64 { return c + 1 }, want: nil,
		},
		{
			name: "unknown service, until it appears", q: catalog.ServiceQuery{Service: "nope"},
			minIndex: func(b, c uint64) uint64 { return c },
			writes: []func(*catalog.Catalog) error{func(cat *catalog.Catalog) error {
				_, err := cat.RegisterInstance(apiInst("ext-1", "nope", 80))
				return err
			}},
			wantIdx: func(b, c uint64) uint64 { return c + 1 }, want: []string{"ext-1"},
		},
		{
			name: "timeout returns the old index and no error", q: books,
			minIndex: func(b, c uint64) uint64 { return b }, timeout: quiet,
			wantIdx: func(b, c uint64) uint64 { return b }, want: []string{"c1:80/tcp"},
		},
		{
			name: "a future index waits out the timeout", q: books,
			minIndex: func(b, c uint64) uint64 { return c + 100 }, timeout: quiet,
			wantIdx: func(b, c uint64) uint64 { return b }, want: []string{"c1:80/tcp"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := seedWatch(t)
			b, _, _ := cat.Service(nil, books)
			c := cat.Index()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 20 * time.Second // a failure timeout only
			}
			// start before the context: its deadline counts from its
			// creation, and a wait that honours it must not look early
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			ch := waitAsync(ctx, cat, tt.q, tt.minIndex(b, c))

			if !tt.immediate && tt.timeout == 0 {
				for i, w := range tt.writes {
					select {
					case r := <-ch:
						t.Fatalf("returned %+v before write %d", r, i)
					case <-time.After(quiet):
					}
					if err := w(cat); err != nil {
						t.Fatal(err)
					}
				}
			}
			var r waitResult
			select {
			case r = <-ch:
			case <-time.After(30 * time.Second):
				t.Fatal("WaitService did not return")
			}
			elapsed := time.Since(start)
			ended := ctx.Err() // before the deferred cancel
			if r.err != nil {
				t.Errorf("error %v, want nil", r.err)
			}
			if want := tt.wantIdx(b, c); r.idx != want {
				t.Errorf("index %d, want %d", r.idx, want)
			}
			if !slices.Equal(r.insts, tt.want) && len(r.insts)+len(tt.want) > 0 {
				t.Errorf("instances %v, want %v", r.insts, tt.want)
			}
			switch {
			case tt.immediate && ended != nil:
				// its context's end, not the time taken, tells a wait
				t.Errorf("waited until its context ended (%v), want at once", ended)
			case tt.timeout > 0 && elapsed < tt.timeout:
				t.Errorf("returned after %v, before the %v timeout", elapsed, tt.timeout)
			}
		})
	}
}

func TestWait(t *testing.T) {
	cat := seedWatch(t)
	c := cat.Index()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if idx, err := cat.Wait(ctx, c-1); err != nil || idx != c {
		t.Errorf("Wait(%d) = %d, %v; want %d at once", c-1, idx, err, c)
	}

	ch := make(chan waitResult, 1)
	go func() {
		idx, err := cat.Wait(ctx, c)
		ch <- waitResult{idx: idx, err: err}
	}()
	select {
	case r := <-ch:
		t.Fatalf("Wait(%d) returned %+v with nothing written", c, r)
	case <-time.After(quiet):
	}
	if err := putBooks()(cat); err != nil { // no-op: no new index
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		t.Fatalf("Wait(%d) returned %+v after a no-op write", c, r)
	case <-time.After(quiet):
	}
	if err := putBooks(tags("v9"))(cat); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.err != nil || r.idx != c+1 {
			t.Errorf("Wait(%d) = %d, %v; want %d, nil", c, r.idx, r.err, c+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after a write")
	}

	short, cancelShort := context.WithTimeout(context.Background(), quiet)
	defer cancelShort()
	if idx, err := cat.Wait(short, c+1); !errors.Is(err, context.DeadlineExceeded) || idx != c+1 {
		t.Errorf("Wait until timeout = %d, %v; want %d, DeadlineExceeded", idx, err, c+1)
	}
}
