// Command bare is the reference ceiling of the side-by-side benchmark: a
// bare miekg/dns Server whose handler does one map lookup and builds the
// reply (performance-anchors.md §4, "bare miekg/dns Server"). It takes
// svcdns's flags and registration API (PUT /v1/instances/{id}), answers
// <service>.service.local A and SRV with the same shape as svcdns (SRV
// target <id>.container.local, its A in the additional section), and
// nothing else. It is not svcdns: it shows what miekg/dns's goroutine per
// packet allows on this machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

type entry struct {
	a, srv, target dns.RR
}

type store struct {
	mu sync.RWMutex
	m  map[string]entry // lower-case FQDN
}

func (s *store) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.RLock()
		e, ok := s.m[strings.ToLower(q.Name)]
		s.mu.RUnlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{e.a}
		case q.Qtype == dns.TypeSRV:
			m.Answer = []dns.RR{e.srv}
			m.Extra = []dns.RR{e.target}
		}
	}
	_ = w.WriteMsg(m)
}

func (s *store) put(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	var in struct {
		Service string
		Address string
		Port    uint16
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := strings.ToLower(in.Service) + ".service.local."
	target := id + ".container.local."
	a, err1 := dns.NewRR(fmt.Sprintf("%s 0 IN A %s", name, in.Address))
	srv, err2 := dns.NewRR(fmt.Sprintf("%s 0 IN SRV 1 1 %d %s", name, in.Port, target))
	ta, err3 := dns.NewRR(fmt.Sprintf("%s 0 IN A %s", target, in.Address))
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	s.m[name] = entry{a, srv, ta}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func main() {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	dnsAddr := fs.String("dns-addr", "127.0.0.1:15360", "UDP address")
	httpAddr := fs.String("http-addr", "127.0.0.1:15361", "registration API address")
	for _, f := range []string{"docker-host", "upstream", "ttl"} {
		fs.String(f, "", "ignored (svcdns's flag)")
	}
	_ = fs.Parse(os.Args[1:])

	s := &store{m: map[string]entry{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/instances/{id}", s.put)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	hln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(hln) }()

	pc, err := net.ListenPacket("udp", *dnsAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	ds := &dns.Server{PacketConn: pc, Handler: s}
	go func() { _ = ds.ActivateAndServe() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = ds.Shutdown()
	_ = hs.Close()
}
