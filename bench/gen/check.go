package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	server := fs.String("server", "127.0.0.1:53", "server host:port")
	types := fs.String("types", "A,SRV", "query types to check for every name")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the first answer (server start-up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	ask := func(name string, t uint16) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), t)
		r, _, err := c.Exchange(m, *server)
		return r, err
	}
	// Wait for the server: the last name registered answers.
	deadline := time.Now().Add(*wait)
	last := services()[len(services())-1].Name + "." + zone
	for {
		r, err := ask(last, dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			return fmt.Errorf("%s: %s A not answered within %v: %v", *server, last, *wait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var summary []string
	for _, ts := range strings.Split(*types, ",") {
		t, ok := dns.StringToType[strings.ToUpper(strings.TrimSpace(ts))]
		if !ok {
			return fmt.Errorf("unknown type %q", ts)
		}
		okN, extra, size := 0, 0, 0
		var bad []string
		for _, s := range services() {
			r, err := ask(s.Name+"."+zone, t)
			if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				if len(bad) < 3 {
					bad = append(bad, fmt.Sprintf("%s %s: %v", s.Name, ts, describe(r, err)))
				}
				continue
			}
			okN++
			extra += len(r.Extra)
			size += r.Len()
		}
		if okN != len(services()) {
			return fmt.Errorf("%s: %d of %d %s answered; first failures: %s", *server, okN, len(services()), ts, strings.Join(bad, "; "))
		}
		summary = append(summary, fmt.Sprintf("%s %d/%d answered (avg %d B, %.1f additional)", ts, okN, len(services()), size/okN, float64(extra)/float64(okN)))
	}
	fmt.Printf("check %s: %s\n", *server, strings.Join(summary, ", "))
	return nil
}

func describe(r *dns.Msg, err error) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return err.Error()
	}
	return fmt.Sprintf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
}
