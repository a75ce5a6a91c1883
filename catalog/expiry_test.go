package catalog_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

func expires(t time.Time) func(*catalog.Instance) {
	return func(i *catalog.Instance) { i.Expires = t; i.TTL = 30 * time.Second }
}

func TestExpireInstances(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	cat := catalog.New()
	c := ctr(nodeA, "c1", "web-1", "172.18.0.5/16")
	put(t, cat, c, inst(c, "books-ms", 80))
	register(t, cat, apiInst("past", "books-ms", 8080, expires(t0.Add(-time.Second))))
	register(t, cat, apiInst("ancient", "books-ms", 8080, expires(time.Unix(-100, 0)))) // before 1970
	register(t, cat, apiInst("now", "orders", 8080, expires(t0)))
	register(t, cat, apiInst("later", "books-ms", 8080, expires(t0.Add(time.Second))))
	register(t, cat, apiInst("forever", "books-ms", 8080))
	// Put again with a later expiry before it came due: the refresh counts.
	register(t, cat, apiInst("refreshed", "books-ms", 8080, expires(t0.Add(-time.Minute))))
	register(t, cat, apiInst("refreshed", "books-ms", 8080, expires(t0.Add(time.Hour))))

	steps := []struct {
		name      string
		now       time.Time
		want      []string // expired ids
		wantCtrs  []string
		wantBooks []string
	}{
		{
			name:      "nothing due yet",
			now:       time.Unix(-200, 0),
			wantCtrs:  []string{"api/ancient", "api/forever", "api/later", "api/now", "api/past", "api/refreshed", "c1"},
			wantBooks: []string{"ancient", "c1:80/tcp", "forever", "later", "past", "refreshed"},
		},
		{
			name:      "due at or before now",
			now:       t0,
			want:      []string{"ancient", "now", "past"},
			wantCtrs:  []string{"api/forever", "api/later", "api/refreshed", "c1"},
			wantBooks: []string{"c1:80/tcp", "forever", "later", "refreshed"},
		},
		{
			name:      "again at the same time",
			now:       t0,
			wantCtrs:  []string{"api/forever", "api/later", "api/refreshed", "c1"},
			wantBooks: []string{"c1:80/tcp", "forever", "later", "refreshed"},
		},
		{
			name:      "a nanosecond before the next",
			now:       t0.Add(time.Second - 1),
			wantCtrs:  []string{"api/forever", "api/later", "api/refreshed", "c1"},
			wantBooks: []string{"c1:80/tcp", "forever", "later", "refreshed"},
		},
		{
			name:      "far future: all with a TTL",
			now:       t0.Add(24 * time.Hour),
			want:      []string{"later", "refreshed"},
			wantCtrs:  []string{"api/forever", "c1"},
			wantBooks: []string{"c1:80/tcp", "forever"},
		},
	}
	for _, s := range steps {
		prev := cat.Index()
		ids, idx, err := cat.ExpireInstances(s.now)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, s.want) && len(ids)+len(s.want) > 0 {
			t.Errorf("%s: expired %v, want %v", s.name, ids, s.want)
		}
		want := prev
		if len(s.want) > 0 {
			want = prev + 1
		}
		if idx != want {
			t.Errorf("%s: index %d, want %d", s.name, idx, want)
		}
		checkIndex(t, cat, want)
		if got := allCtrIDs(t, cat); !slices.Equal(got, s.wantCtrs) {
			t.Errorf("%s: containers %v, want %v", s.name, got, s.wantCtrs)
		}
		if _, got := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(got, s.wantBooks) {
			t.Errorf("%s: books-ms %v, want %v", s.name, got, s.wantBooks)
		}
		for _, id := range s.want {
			if _, err := cat.Instance(id); !errors.Is(err, catalog.ErrNotFound) {
				t.Errorf("%s: Instance(%s) error %v, want ErrNotFound", s.name, id, err)
			}
		}
	}
	if _, svcs := cat.Services(nil); len(svcs) != 1 || svcs[0] != (catalog.ServiceSummary{Name: "books-ms", Instances: 2, Passing: 2}) {
		t.Errorf("Services() = %+v, want books-ms with 2", svcs)
	}
}

func TestRunExpiry(t *testing.T) {
	cat := catalog.New()
	register(t, cat, apiInst("due", "books-ms", 80, expires(time.Now().Add(-time.Second))))
	register(t, cat, apiInst("soon", "books-ms", 81, expires(time.Now().Add(100*time.Millisecond))))
	register(t, cat, apiInst("keep", "books-ms", 82, expires(time.Now().Add(time.Hour))))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []string, 10)
	done := make(chan error, 1)
	go func() { done <- cat.RunExpiry(ctx, 5*time.Millisecond, func(ids []string) { got <- ids }) }()

	// "due" goes in the first pass, "soon" in a later one (or the same,
	// on a slow machine).
	var all []string
	for len(all) < 2 {
		select {
		case ids := <-got:
			if len(ids) == 0 {
				t.Error("onExpire called with no ids")
			}
			all = append(all, ids...)
		case <-time.After(5 * time.Second):
			t.Fatalf("onExpire called for %v only, want due and soon", all)
		}
	}
	if !slices.Equal(all, []string{"due", "soon"}) {
		t.Errorf("onExpire ids = %v, want [due soon] in expiry order", all)
	}
	if _, ids := serviceIDs(t, cat, catalog.ServiceQuery{Service: "books-ms"}); !slices.Equal(ids, []string{"keep"}) {
		t.Errorf("books-ms = %v, want [keep]", ids)
	}
	// Passes that expire nothing do not call onExpire.
	select {
	case ids := <-got:
		t.Errorf("onExpire(%v) with nothing due", ids)
	case <-time.After(quiet):
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunExpiry returned %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunExpiry did not stop when ctx was cancelled")
	}
}

func TestRunExpiryNilCallback(t *testing.T) {
	cat := catalog.New()
	register(t, cat, apiInst("due", "books-ms", 80, expires(time.Now().Add(-time.Second))))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cat.RunExpiry(ctx, time.Millisecond, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := cat.Instance("due"); errors.Is(err, catalog.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance not expired")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunExpiry = %v", err)
	}
}
