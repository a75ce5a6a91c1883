// Command fakesvc is the service the integration tests run in containers:
// it listens on the TCP and UDP ports it is given and answers every request
// with its hostname (the container's short id), so a client that reached it
// through DNS can tell which instance it reached.
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
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ports := flag.String("ports", envOr("FAKESVC_PORTS", "8080"), "comma-separated ports to listen on: 8080 (tcp) or 5353/udp")
	healthFile := flag.String("health-file", envOr("HEALTH_FILE", "/health/ok"), "file whose existence means healthy")
	healthy := flag.Bool("healthy", false, "create the health file at start")
	healthyAfter := flag.Duration("healthy-after", 0, "create the health file after this long")
	unhealthyAfter := flag.Duration("unhealthy-after", 0, "remove the health file after this long")
	flag.Parse()

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

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, host) })
	mux.HandleFunc("/health/pass", func(w http.ResponseWriter, r *http.Request) {
		report(w, setHealth(*healthFile, true))
	})
	mux.HandleFunc("/health/fail", func(w http.ResponseWriter, r *http.Request) {
		report(w, setHealth(*healthFile, false))
	})

	for _, p := range strings.Split(*ports, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		num, proto, _ := strings.Cut(p, "/")
		switch proto {
		case "", "tcp":
			ln, err := net.Listen("tcp", ":"+num)
			must(err)
			go func() { log.Fatal(http.Serve(ln, mux)) }()
		case "udp":
			pc, err := net.ListenPacket("udp", ":"+num)
			must(err)
			go serveUDP(pc, host)
		default:
			log.Fatalf("port %q: protocol must be tcp or udp", p)
		}
	}

	// As PID 1 in a container the process gets no default signal handling:
	// without this, docker stop would wait for its timeout and then kill.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
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
