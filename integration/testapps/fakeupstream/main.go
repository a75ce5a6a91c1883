//go:build unix

// fakeupstream tells its counts on SIGUSR1, which only unix systems
// have; the tests that run it need Linux and Docker anyway.

// Command fakeupstream is the upstream resolver of svcdns's forwarding tests
// and of the soak (bench/soak.sh): a DNS server on loopback that answers
// every name with fixed data, and misbehaves on request, so that no test
// ever sends a query to a real resolver.
//
//	fakeupstream -addr 127.0.0.1:0 -http 127.0.0.1:0
//
// It serves UDP and TCP on the same port. The first line on stdout is the
// bound DNS address ("127.0.0.1:40123"); with -http, the second line is the
// address of its HTTP endpoint ("http 127.0.0.1:40124"), which serves
//
//	GET /count      {"queries":N,"udp":N,"tcp":N}: queries received so far
//	GET /questions  the last 1,000 questions received, one "proto name type" a line
//
// SIGUSR1 prints the same counts on stderr.
//
// # Answers
//
// A name's first label picks its behaviour (case-insensitively):
//
//	stall.…       never answered (with -stall-for D: answered after D)
//	delay-<ms>.…  answered after <ms> milliseconds (delay-1000.example.com)
//	tc.…          over UDP, an empty reply with TC set; over TCP the full
//	              answer, for A 40 records (198.51.100.1 to .40)
//	forge.…       forged replies first, each carrying A 203.0.113.66, then
//	              the real one. Over UDP: one from another socket (right ID,
//	              wrong source port), one with a wrong ID, one with the right
//	              ID but another question. Over TCP: one with a wrong ID.
//	nx.…          NXDOMAIN
//	servfail.…    SERVFAIL
//	refused.…     REFUSED
//
// Any other name gets A 198.51.100.7, AAAA 2001:db8::7, MX 10 mail.<name>
// and TXT "fakeupstream"; other types get NOERROR with no answer. -stall
// stalls every query, -delay delays every answer. Replies echo the question
// as received (its case included), have RA set and AA clear, and carry no
// OPT record.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Fixed answer data.
var (
	answerA    = net.ParseIP("198.51.100.7")
	answerAAAA = net.ParseIP("2001:db8::7")
	forgedA    = net.ParseIP("203.0.113.66")
)

const (
	tcAnswers    = 40   // A records of a tc.… name over TCP
	keptQuestion = 1000 // questions kept for /questions
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "UDP and TCP `address` to serve DNS on; port 0 picks a free port")
	httpAddr := flag.String("http", "", "`address` of the /count and /questions endpoint; empty = none")
	stall := flag.Bool("stall", false, "never answer any query")
	stallFor := flag.Duration("stall-for", 0, "answer stall.… names (or, with -stall, every name) after this `long` instead of never")
	delay := flag.Duration("delay", 0, "delay every answer by this `long`")
	ttl := flag.Uint("ttl", 60, "TTL of answers, in `seconds`")
	flag.Parse()

	s := &server{stall: *stall, stallFor: *stallFor, delay: *delay, ttl: uint32(*ttl)}
	udp, tcp, err := listen(*addr)
	if err != nil {
		log.Fatalf("fakeupstream: %v", err)
	}
	fmt.Println(udp.LocalAddr().String())
	var hsrv *http.Server
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			log.Fatalf("fakeupstream: http: %v", err)
		}
		fmt.Println("http", ln.Addr().String())
		hsrv = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hsrv.Serve(ln) }()
	}

	servers := []*dns.Server{
		{PacketConn: udp, Handler: s, UDPSize: dns.MaxMsgSize},
		{Listener: tcp, Handler: s, ReadTimeout: 10 * time.Second},
	}
	for _, srv := range servers {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				log.Fatalf("fakeupstream: %v", err)
			}
		}()
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, os.Interrupt)
	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			fmt.Fprintln(os.Stderr, s.countJSON())
			continue
		}
		break
	}
	close(s.quit())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(ctx)
	}
	if hsrv != nil {
		_ = hsrv.Shutdown(ctx)
	}
	fmt.Fprintln(os.Stderr, s.countJSON())
}

// listen binds UDP and TCP on the same port; with port 0, the UDP socket
// picks it, retrying when TCP cannot have the same one.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for range 20 {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, err
		}
		p := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP on %s", host)
}

// server answers queries; see the package doc.
type server struct {
	stall    bool
	stallFor time.Duration
	delay    time.Duration
	ttl      uint32

	udpCount atomic.Uint64
	tcpCount atomic.Uint64

	mu        sync.Mutex
	questions []string // ring of the last keptQuestion
	next      int
	done      chan struct{}
}

// quit returns the channel closed at shutdown, which ends stalls.
func (s *server) quit() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

func (s *server) record(proto string, r *dns.Msg) {
	q := "(no question)"
	if len(r.Question) > 0 {
		q = r.Question[0].Name + " " + dns.Type(r.Question[0].Qtype).String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	line := proto + " " + q
	if len(s.questions) < keptQuestion {
		s.questions = append(s.questions, line)
		return
	}
	s.questions[s.next] = line
	s.next = (s.next + 1) % keptQuestion
}

// wait sleeps for d, or until shutdown; d < 0 waits for shutdown only.
func (s *server) wait(d time.Duration) {
	if d == 0 {
		return
	}
	if d < 0 {
		<-s.quit()
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.quit():
	}
}

func (s *server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	proto := "udp"
	if tcp {
		proto = "tcp"
		s.tcpCount.Add(1)
	} else {
		s.udpCount.Add(1)
	}
	s.record(proto, r)
	if len(r.Question) != 1 {
		m := new(dns.Msg)
		_ = w.WriteMsg(m.SetRcodeFormatError(r))
		return
	}
	q := r.Question[0]
	first := ""
	if labels := dns.SplitDomainName(q.Name); len(labels) > 0 {
		first = strings.ToLower(labels[0])
	}

	switch {
	case s.stall || first == "stall":
		if s.stallFor <= 0 {
			s.wait(-1)
			return // never answered
		}
		s.wait(s.stallFor)
	case strings.HasPrefix(first, "delay-"):
		if ms, err := strconv.Atoi(strings.TrimPrefix(first, "delay-")); err == nil && ms > 0 {
			s.wait(time.Duration(ms) * time.Millisecond)
		}
	}
	s.wait(s.delay)

	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	m.Authoritative = false
	m.Extra = nil // no OPT back: svcdns adds its own

	switch first {
	case "tc":
		if !tcp {
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
		if q.Qtype == dns.TypeA {
			for i := 1; i <= tcAnswers; i++ {
				m.Answer = append(m.Answer, &dns.A{Hdr: s.hdr(q, dns.TypeA), A: net.IPv4(198, 51, 100, byte(i))})
			}
		} else {
			m.Answer = s.answers(q)
		}
	case "forge":
		s.forge(w, r, tcp)
		m.Answer = s.answers(q)
	case "nx":
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{s.soa()}
	case "servfail":
		m.Rcode = dns.RcodeServerFailure
	case "refused":
		m.Rcode = dns.RcodeRefused
	default:
		m.Answer = s.answers(q)
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{s.soa()}
		}
	}
	m.Compress = true
	_ = w.WriteMsg(m)
}

func (s *server) hdr(q dns.Question, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
}

// answers are the fixed records for q's type; nil for other types.
func (s *server) answers(q dns.Question) []dns.RR {
	switch q.Qtype {
	case dns.TypeA:
		return []dns.RR{&dns.A{Hdr: s.hdr(q, dns.TypeA), A: answerA}}
	case dns.TypeAAAA:
		return []dns.RR{&dns.AAAA{Hdr: s.hdr(q, dns.TypeAAAA), AAAA: answerAAAA}}
	case dns.TypeMX:
		return []dns.RR{&dns.MX{Hdr: s.hdr(q, dns.TypeMX), Preference: 10, Mx: "mail." + dns.Fqdn(q.Name)}}
	case dns.TypeTXT:
		return []dns.RR{&dns.TXT{Hdr: s.hdr(q, dns.TypeTXT), Txt: []string{"fakeupstream"}}}
	}
	return nil
}

func (s *server) soa() dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: "fake.invalid.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl},
		Ns:  "ns.fake.invalid.", Mbox: "hostmaster.fake.invalid.",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 30,
	}
}

// forge sends the forged replies of a forge.… name before the real one.
func (s *server) forge(w dns.ResponseWriter, r *dns.Msg, tcp bool) {
	q := r.Question[0]
	forged := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		m.Extra = nil
		m.Answer = []dns.RR{&dns.A{Hdr: s.hdr(q, dns.TypeA), A: forgedA}}
		return m
	}
	// A wrong ID, on the client's own connection or socket pair.
	wrongID := forged()
	wrongID.Id = r.Id + 1
	_ = w.WriteMsg(wrongID)
	if tcp {
		return
	}
	// The right ID from another source port: a connected client socket
	// never sees it.
	if b, err := forged().Pack(); err == nil {
		if c, err := net.ListenPacket("udp", net.JoinHostPort(w.LocalAddr().(*net.UDPAddr).IP.String(), "0")); err == nil {
			_, _ = c.WriteTo(b, w.RemoteAddr())
			c.Close()
		}
	}
	// The right ID and source, another question.
	other := forged()
	other.Question = []dns.Question{{Name: "forged.invalid.", Qtype: q.Qtype, Qclass: q.Qclass}}
	other.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "forged.invalid.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: s.ttl}, A: forgedA}}
	_ = w.WriteMsg(other)
	// Let the forgeries arrive first.
	time.Sleep(20 * time.Millisecond)
}

func (s *server) countJSON() string {
	u, t := s.udpCount.Load(), s.tcpCount.Load()
	b, _ := json.Marshal(map[string]uint64{"queries": u + t, "udp": u, "tcp": t})
	return string(b)
}

func (s *server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, s.countJSON())
	})
	mux.HandleFunc("GET /questions", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		lines := append(append([]string(nil), s.questions[s.next:]...), s.questions[:s.next]...)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	})
	return mux
}
