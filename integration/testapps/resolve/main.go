// Command resolve looks names up with Go's own DNS resolver (the pure Go
// one, reading /etc/resolv.conf as any program in the container would) and
// prints one JSON line per query. The integration tests run it in client
// containers started with --dns, to prove that an ordinary resolver finds
// services through svcdns.
//
//	resolve -retry 10s -min 3 -fetch A=books-ms.service.local SRV=books-ms.service.local
//
// A query is TYPE=NAME with TYPE one of A, AAAA, IP (both families) or SRV.
// With -fetch, each SRV target is resolved and GET http://<addr>:<port>/ is
// sent; the reply (fakesvc's hostname) is printed with the record. The exit
// status is 1 when any query failed, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one printed line.
type Result struct {
	Query string   `json:"query"`
	Type  string   `json:"type"`
	Name  string   `json:"name"`
	Addrs []string `json:"addrs,omitempty"`
	SRV   []SRV    `json:"srv,omitempty"`
	Error string   `json:"error,omitempty"`
	Tries int      `json:"tries"`
}

// SRV is one SRV record, with its target's addresses and, with -fetch, what
// the instance answered.
type SRV struct {
	Target   string   `json:"target"`
	Port     uint16   `json:"port"`
	Priority uint16   `json:"priority"`
	Weight   uint16   `json:"weight"`
	Addrs    []string `json:"addrs,omitempty"`
	Body     string   `json:"body,omitempty"`
}

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "time limit of one lookup")
	retry := flag.Duration("retry", 0, "keep retrying a failed (or short, see -min) lookup for this long")
	minimum := flag.Int("min", 1, "a lookup with fewer results than this counts as failed")
	fetch := flag.Bool("fetch", false, "GET / from every SRV target and print the reply")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: resolve [flags] TYPE=NAME...")
		os.Exit(2)
	}
	r := &net.Resolver{PreferGo: true}
	failed := false
	enc := json.NewEncoder(os.Stdout)
	for _, q := range flag.Args() {
		typ, name, ok := strings.Cut(q, "=")
		typ = strings.ToUpper(typ)
		if !ok || !slices.Contains([]string{"A", "AAAA", "IP", "SRV"}, typ) {
			fmt.Fprintf(os.Stderr, "query %q: want TYPE=NAME, TYPE one of A, AAAA, IP, SRV\n", q)
			os.Exit(2)
		}
		res := Result{Query: q, Type: typ, Name: name}
		deadline := time.Now().Add(*retry)
		for {
			res.Tries++
			err := lookup(r, &res, *timeout, *minimum)
			if err == nil {
				res.Error = ""
				break
			}
			res.Error = err.Error()
			if time.Now().After(deadline) {
				failed = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if res.Error == "" && *fetch {
			for i := range res.SRV {
				res.SRV[i].Body = get(res.SRV[i], *timeout)
			}
		}
		_ = enc.Encode(res)
	}
	if failed {
		os.Exit(1)
	}
}

func lookup(r *net.Resolver, res *Result, timeout time.Duration, minimum int) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res.Addrs, res.SRV = nil, nil
	switch res.Type {
	case "SRV":
		_, recs, err := r.LookupSRV(ctx, "", "", res.Name)
		if err != nil {
			return err
		}
		for _, s := range recs {
			out := SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight}
			addrs, err := r.LookupNetIP(ctx, "ip", s.Target)
			if err != nil {
				return fmt.Errorf("target %s: %w", s.Target, err)
			}
			out.Addrs = strs(addrs)
			res.SRV = append(res.SRV, out)
		}
		if len(res.SRV) < minimum {
			return fmt.Errorf("%d SRV records, want at least %d", len(res.SRV), minimum)
		}
	default:
		network := map[string]string{"A": "ip4", "AAAA": "ip6", "IP": "ip"}[res.Type]
		addrs, err := r.LookupNetIP(ctx, network, res.Name)
		if err != nil {
			return err
		}
		res.Addrs = strs(addrs)
		if len(res.Addrs) < minimum {
			return fmt.Errorf("%d addresses, want at least %d", len(res.Addrs), minimum)
		}
	}
	return nil
}

func get(s SRV, timeout time.Duration) string {
	if len(s.Addrs) == 0 {
		return "error: no address"
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + net.JoinHostPort(s.Addrs[0], strconv.Itoa(int(s.Port))) + "/")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil && !errors.Is(err, io.EOF) {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

func strs(addrs []netip.Addr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap().String())
	}
	slices.Sort(out)
	return out
}
