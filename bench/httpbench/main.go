// Command httpbench is the HTTP side of the proxy benchmark (bench/proxy.sh):
// the backend that every proxy forwards to, the load generators, and the
// reference floor of svcdns's proxy.
//
//	httpbench backend -addr 127.0.0.1:15370
//	httpbench proxy -addr 127.0.0.1:15375 -target 127.0.0.1:15370
//	httpbench rate -url http://127.0.0.1:15371/ -rate 5000 -duration 10s [-warmup 1s] [-serve 127.0.0.1:15370]
//	httpbench max -url http://127.0.0.1:15371/ -conns 32 -duration 10s
//
// rate is open-loop: requests are due at fixed intervals and each one's
// latency counts from when it was due, so a stall shows in the
// percentiles instead of slowing the sender (no coordinated omission); the
// -warmup requests go at the same rate first and are not counted. -serve
// runs the backend in the same process, so that client and backend share
// one runtime on one core instead of two processes taking turns on it
// (whose scheduling, not the path, set the direct row's latency). It
// prints "p50_us p99_us p999_us sent errors achieved_rps". max is
// closed-loop over keep-alive connections (wrk's method, for machines
// without wrk) and prints "rps errors". proxy is a bare
// httputil.ReverseProxy to one fixed target, with the standard library's
// parts set as svcdns sets them and none of svcdns's own code (no route
// table, balancer, retries or metrics): what svcdns's proxy would cost if
// its own code cost nothing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: httpbench backend|rate|max|proxy [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(os.Args[2:])
	case "rate":
		err = rate(os.Args[2:])
	case "max":
		err = maxRate(os.Args[2:])
	case "proxy":
		err = bareProxy(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

// backend answers every request with 200 and "ok\n", until SIGTERM.
func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:15370", "listen address")
	_ = fs.Parse(args)
	return serve(*addr, backendServer())
}

func backendServer() *http.Server {
	body := []byte("ok\n")
	return &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	}), IdleTimeout: 5 * time.Minute}
}

// serve runs srv on addr until SIGTERM or SIGINT.
func serve(addr string, srv *http.Server) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func client(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
	}}
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func rate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	rps := fs.Int("rate", 5000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	conns := fs.Int("conns", 64, "connections at most (requests in flight at most)")
	warmup := fs.Duration("warmup", 0, "requests sent at the rate first and not counted")
	serveAddr := fs.String("serve", "", "also serve the backend on this address, in this process, for the run")
	_ = fs.Parse(args)
	if *serveAddr != "" {
		ln, err := net.Listen("tcp", *serveAddr)
		if err != nil {
			return err
		}
		srv := backendServer()
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	c := client(*conns)
	// Warm the connections up, so that dials do not count.
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() { defer wg.Done(); _ = get(c, *url) }()
	}
	wg.Wait()

	n := int(float64(*rps) * dur.Seconds())
	skip := int(float64(*rps) * warmup.Seconds())
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	due := make(chan int, *conns)
	interval := time.Second / time.Duration(*rps)
	start := time.Now()
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range due {
				at := start.Add(time.Duration(i) * interval)
				err := get(c, *url)
				if i < skip {
					continue
				}
				if err != nil {
					errs.Add(1)
				}
				lat[i-skip] = time.Since(at)
			}
		}()
	}
	var measured time.Time
	wait := newPacer()
	for i := range skip + n {
		if i == skip {
			measured = start.Add(time.Duration(i) * interval)
		}
		wait(start.Add(time.Duration(i) * interval))
		due <- i
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(measured)
	slices.Sort(lat)
	pct := func(p float64) int64 { return lat[min(n-1, int(p*float64(n)))].Microseconds() }
	fmt.Printf("%d %d %d %d %d %.0f\n", pct(0.50), pct(0.99), pct(0.999), n, errs.Load(), float64(n)/elapsed.Seconds())
	return nil
}

func maxRate(args []string) error {
	fs := flag.NewFlagSet("max", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	conns := fs.Int("conns", 32, "connections, each with one request in flight")
	_ = fs.Parse(args)
	c := client(*conns)
	var done, errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := get(c, *url); err != nil {
					errs.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.0f %d\n", float64(done.Load())/time.Since(start).Seconds(), errs.Load())
	return nil
}
