package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/internal/testutil"
)

// testNode is one node of a test cluster with its own catalog.
type testNode struct {
	*Cluster
	cat    *catalog.Catalog
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with err set
	err    error
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// startNode starts a node on 127.0.0.1:0 with fast timings, joining join.
func startNode(t *testing.T, name string, mod func(*Config), join ...*testNode) *testNode {
	t.Helper()
	n, err := newNode(t, name, mod, join...)
	if err != nil {
		t.Fatal(err)
	}
	n.run()
	return n
}

// newNode binds a node as startNode does without running it: memberlist
// answers on its address, but it joins nobody until run.
func newNode(t *testing.T, name string, mod func(*Config), join ...*testNode) (*testNode, error) {
	t.Helper()
	cfg := Config{Node: name, BindAddr: "127.0.0.1:0", Store: catalog.New(), Timing: FastTiming(), Logger: testLogger(t)}
	for _, j := range join {
		cfg.Join = append(cfg.Join, j.Addr().String())
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	n := &testNode{Cluster: c, cat: cfg.Store.(*catalog.Catalog), done: make(chan struct{})}
	t.Cleanup(n.stop)
	return n, nil
}

// run runs the node until stop.
func (n *testNode) run() {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		n.err = n.Run(ctx)
		close(n.done)
	}()
}

func (n *testNode) stop() {
	if n.cancel == nil { // never run
		n.Shutdown()
		return
	}
	n.cancel()
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
	}
}

// kill stops a node without leaving, as a crash would.
func (n *testNode) kill() {
	n.Shutdown()
	n.stop()
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitNameTaken waits for dup, a node with a taken name, to give up: it
// waits for the holder to be declared dead first (nameWait: 4.6 s with
// FastTiming).
func waitNameTaken(t *testing.T, dup *testNode) {
	t.Helper()
	select {
	case <-dup.done:
		if !errors.Is(dup.err, ErrNameTaken) {
			t.Fatalf("Run returned %v, want ErrNameTaken", dup.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the duplicate is still running")
	}
}

// register puts an API instance on n's catalog.
func register(t *testing.T, n *testNode, id, service, addr string) {
	t.Helper()
	_, err := n.cat.RegisterInstance(testutil.APIInstance(id, service, addr, 8080, func(i *catalog.Instance) { i.Node = n.Name() }))
	if err != nil {
		t.Fatalf("register %s on %s: %v", id, n.Name(), err)
	}
}

// serviceOn returns the ids of service's instances in n's catalog, sorted.
func serviceOn(t *testing.T, n *testNode, service string) []string {
	t.Helper()
	_, insts, err := n.cat.Service(nil, catalog.ServiceQuery{Service: service})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range insts {
		out = append(out, i.ID)
	}
	slices.Sort(out)
	return out
}
