// Command fakesvc is the service the integration tests run in containers:
// it listens on the TCP and UDP ports it is given and answers every request
// with its hostname (the container's short id), so a client that reached it
// through DNS can tell which instance it reached; HTTP answers also carry
// the headers X-Fakesvc-Host and X-Fakesvc-Version (env FAKESVC_VERSION),
// so a client of the proxy can tell which version answered. GET /metrics
// answers in Prometheus's text format. A request with ?delay=300ms is
// answered that much later.
//
// Stopping: without -stop-grace, SIGTERM or SIGINT ends it at once. With
// -stop-grace 2s it stops as a careful server does: it goes on serving
// everything for that long (answers then carry X-Fakesvc-Stopping: 1, and
// it counts the requests that arrive), then stops accepting, finishes the
// requests it holds and exits, logging the count. -ignore-term makes it
// ignore SIGTERM (and keep running), as a process without a handler does.
//
// Its health, read by the healthcheck command used as the image's
// HEALTHCHECK, is a file: -healthy creates it at start, -healthy-after and
// -unhealthy-after flip it later, and GET /health/pass or /health/fail flips
// it on request. An image FROM scratch has no shell, so this is how a test
// controls a container's health without one.
//
//	fakesvc -ports 8080,9090,5353/udp -healthy-after 2s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ports := flag.String("ports", envOr("FAKESVC_PORTS", "8080"), "comma-separated ports to listen on: 8080 (tcp) or 5353/udp")
	healthFile := flag.String("health-file", envOr("HEALTH_FILE", "/health/ok"), "file whose existence means healthy")
	healthy := flag.Bool("healthy", false, "create the health file at start")
	healthyAfter := flag.Duration("healthy-after", 0, "create the health file after this long")
	unhealthyAfter := flag.Duration("unhealthy-after", 0, "remove the health file after this long")
	stopGrace := flag.Duration("stop-grace", 0, "on SIGTERM/SIGINT, go on serving this long, then finish the requests in flight and exit")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	flag.Parse()

	// Before it serves, so that a test that saw it answer may signal it.
	// As PID 1 in a container the process gets no default signal handling:
	// without this, docker stop would wait for its timeout and then kill.
	sig := make(chan os.Signal, 1)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(sig, syscall.SIGINT)
	} else {
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	}
	host, _ := os.Hostname()
	if *healthy {
		must(setHealth(*healthFile, true))
	}
	if *healthyAfter > 0 {
		time.AfterFunc(*healthyAfter, func() { must(setHealth(*healthFile, true)) })
	}
	if *unhealthyAfter > 0 {
		time.AfterFunc(*unhealthyAfter, func() { must(setHealth(*healthFile, false)) })
	}

	a := &app{host: host, version: os.Getenv("FAKESVC_VERSION"), healthFile: *healthFile}
	servers := listen(*ports, a.mux(), host)
	s := <-sig
	if *stopGrace > 0 {
		a.stop(s, *stopGrace, servers)
	}
}

// app is what the HTTP handlers share.
type app struct {
	host, version, healthFile string
	stopping                  atomic.Bool
	afterStop                 atomic.Int64 // requests that arrived after the stop signal
	served                    atomic.Int64 // scrapes of /metrics
}

// mux is the HTTP handler of every TCP port.
func (a *app) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if a.stopping.Load() {
			a.afterStop.Add(1)
			w.Header().Set("X-Fakesvc-Stopping", "1")
		}
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil && d > 0 {
			time.Sleep(min(d, time.Minute))
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Fakesvc-Host", a.host)
		w.Header().Set("X-Fakesvc-Version", a.version)
		fmt.Fprintln(w, a.host)
	})
	// Prometheus text format, for the discovery test: a counter of the
	// requests served and which instance this is.
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP fakesvc_info Always 1; the host label is the instance.\n# TYPE fakesvc_info gauge\nfakesvc_info{host=%q} 1\n", a.host)
		fmt.Fprintf(w, "# HELP fakesvc_metrics_requests_total Scrapes served.\n# TYPE fakesvc_metrics_requests_total counter\nfakesvc_metrics_requests_total %d\n", a.served.Add(1))
	})
	mux.HandleFunc("/health/pass", func(w http.ResponseWriter, r *http.Request) {
		report(w, setHealth(a.healthFile, true))
	})
	mux.HandleFunc("/health/fail", func(w http.ResponseWriter, r *http.Request) {
		report(w, setHealth(a.healthFile, false))
	})
	return mux
}

// listen serves mux on every TCP port of the list and answers with host on
// every UDP port, and returns the HTTP servers.
func listen(ports string, mux http.Handler, host string) []*http.Server {
	var servers []*http.Server
	for _, p := range strings.Split(ports, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		num, proto, _ := strings.Cut(p, "/")
		switch proto {
		case "", "tcp":
			ln, err := net.Listen("tcp", ":"+num)
			must(err)
			srv := &http.Server{Handler: mux}
			servers = append(servers, srv)
			go func() {
				if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					log.Fatal(err)
				}
			}()
		case "udp":
			pc, err := net.ListenPacket("udp", ":"+num)
			must(err)
			go serveUDP(pc, host)
		default:
			log.Fatalf("port %q: protocol must be tcp or udp", p)
		}
	}
	return servers
}

// stop is -stop-grace after the signal s: serve on for grace, answers
// marked, then stop accepting, finish what is held, and log the count.
func (a *app) stop(s os.Signal, grace time.Duration, servers []*http.Server) {
	a.stopping.Store(true)
	log.Printf("fakesvc: %v: serving for %v more", s, grace)
	time.Sleep(grace)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("fakesvc: shutdown: %v", err)
		}
	}
	log.Printf("fakesvc: stopped; requests that arrived after %v: %d", s, a.afterStop.Load())
}

func serveUDP(pc net.PacketConn, host string) {
	buf := make([]byte, 1500)
	for {
		_, addr, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = pc.WriteTo([]byte(host+"\n"), addr)
	}
}

func setHealth(path string, ok bool) error {
	if !ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte("ok\n"), 0o644)
}

func report(w http.ResponseWriter, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
