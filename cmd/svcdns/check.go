package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/svcdns/svcdns/forward"
	"github.com/svcdns/svcdns/watcher"
)

// checkTimeout bounds each probe of svcdns check.
const checkTimeout = 5 * time.Second

// checkResult is one line of svcdns check: "ok   what", or "FAIL what:
// err" ("FAIL err" when what is "": the error says it all).
type checkResult struct {
	what string
	err  error
}

// svcdns check [server flags]: are the flags valid, is Docker reachable
// (and which API version), are the ports free, do the upstreams answer?
// One line per check on stdout, "ok" or "FAIL", and nothing else: exit
// status 1 when a check failed, 2 when the flags did (then nothing else is
// checked), as a systemd ExecStartPre or a CI step wants.
func checkCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	// The flag package's own message and usage would repeat the FAIL line.
	var flagOut bytes.Buffer
	cfg, err := parseConfig(args, getenv, &flagOut)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = flagOut.WriteTo(stderr)
		return err
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL flags: %v\n", err)
		return &reportedError{code: 2, err: err}
	}
	fmt.Fprintln(stdout, "ok   flags")
	var results []checkResult
	results = append(results, checkDocker(ctx, cfg))
	results = append(results, checkPorts(cfg)...)
	results = append(results, checkUpstreams(ctx, cfg)...)
	failed := 0
	for _, r := range results {
		switch {
		case r.err == nil:
			fmt.Fprintf(stdout, "ok   %s\n", r.what)
		case r.what == "":
			failed++
			fmt.Fprintf(stdout, "FAIL %v\n", r.err)
		default:
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %v\n", r.what, r.err)
		}
	}
	if failed > 0 {
		return &reportedError{code: 1, err: fmt.Errorf("check: %d of %d checks failed", failed, len(results)+1)}
	}
	return nil
}

func checkDocker(ctx context.Context, cfg config) checkResult {
	if cfg.NoDocker {
		return checkResult{what: "docker: not used (--docker-host none)"}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	e, err := watcher.Ping(ctx, cfg.DockerHost)
	if err != nil {
		return checkResult{what: "docker", err: err}
	}
	return checkResult{what: fmt.Sprintf("docker: engine %s, API %s", e.Version, e.APIVersion)}
}

// checkPorts binds each listener's address and lets it go at once.
func checkPorts(cfg config) []checkResult {
	type port struct{ flag, addr, network string }
	ports := []port{
		{"--dns-addr", cfg.DNSAddr, "udp"},
		{"--dns-addr", cfg.DNSAddr, "tcp"},
		{"--http-addr", cfg.HTTPAddr, "tcp"},
	}
	if cfg.ProxyAddr != "" {
		ports = append(ports, port{"--proxy-addr", cfg.ProxyAddr, "tcp"})
	}
	out := make([]checkResult, 0, len(ports))
	for _, p := range ports {
		r := checkResult{what: fmt.Sprintf("%s %s (%s) free", p.flag, p.addr, p.network)}
		var err error
		if p.network == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", p.addr); err == nil {
				pc.Close()
			}
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				ln.Close()
			}
		}
		if err != nil {
			// listenError names the flag and the address, and the
			// transport is in its "listen udp".
			r.what, r.err = "", listenError(err, p.flag, p.addr)
		}
		out = append(out, r)
	}
	return out
}

// checkUpstreams asks each upstream for the root's NS, all at once.
func checkUpstreams(ctx context.Context, cfg config) []checkResult {
	if len(cfg.Upstreams) == 0 {
		return []checkResult{{what: "upstream: none (forwarding off)"}}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out := make([]checkResult, len(cfg.Upstreams))
	done := make(chan struct{})
	for i, u := range cfg.Upstreams {
		go func() {
			defer func() { done <- struct{}{} }()
			out[i] = checkResult{what: "upstream " + u + " answers"}
			if err := forward.Probe(ctx, u); err != nil {
				// Probe's error names no upstream: this line does.
				out[i] = checkResult{what: "upstream " + u, err: err}
			}
		}()
	}
	for range cfg.Upstreams {
		<-done
	}
	return out
}
