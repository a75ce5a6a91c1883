package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A node cut off until the others declare it dead, while every node keeps
// changing its records, comes back: every node holds every owner's
// newest version soon after the changes stop, not after the asks' backoff.
func TestFlapConverges(t *testing.T) {
	nodes := startCluster(t, 6, nil)
	back := nodes[5]
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				register(t, n, fmt.Sprintf("i%d", i%20), "web", fmt.Sprintf("10.0.%d.%d", i/250%250, i%250+1))
				time.Sleep(30 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	heal := cut(back, nodes[:5]...)
	eventually(t, "n1 sees "+back.Name()+" dead", func() bool {
		for _, m := range nodes[0].Members() {
			if m.Name == back.Name() {
				return m.State == "dead"
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)
	heal()
	healed := time.Now()
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	stopped := time.Now()
	deadline := stopped.Add(10 * time.Second)
	for {
		var lag []string
		for _, n := range nodes {
			for _, o := range nodes {
				if n == o {
					continue
				}
				if h, _ := n.Held(o.Name()); !h.AtLeast(o.LocalVersion()) {
					lag = append(lag, fmt.Sprintf("%s holds %s at %v, not %v", n.Name(), o.Name(), h, o.LocalVersion()))
				}
			}
		}
		if len(lag) == 0 {
			t.Logf("converged %v after the changes stopped, %v after the heal", time.Since(stopped), time.Since(healed))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged 10 s after the changes stopped: %v", lag)
		}
		t.Logf("%v: %v", time.Since(stopped).Round(time.Millisecond), lag)
		time.Sleep(time.Second)
	}
}
