// Command eventlat measures how fast svcdns notices containers on the real
// Docker engine: it starts svcdns, builds a tiny FROM scratch image (a
// static Go program that sleeps until signalled; nothing is pulled), then
// starts N containers one by one, each with its own SERVICE_NAME, and for
// each records the time from the container's `start` event (the event's
// own timestamp, timeNano) to the first UDP answer from svcdns that holds
// the container's address. Then it removes them one by one with
// `docker rm -f` and records the time from the `die` event to the first
// NXDOMAIN. It prints p50/p99/max and the misses, and removes every
// container and the image it made, on failure and on SIGINT too.
//
//	eventlat -svcdns ./svcdns -n 100
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const prefix = "svcdns-bench-"

func main() {
	bin := flag.String("svcdns", "svcdns", "path of the svcdns binary")
	n := flag.Int("n", 100, "containers to start")
	dnsPort := flag.Int("dns-port", 15357, "loopback UDP/TCP port for svcdns's DNS")
	httpPort := flag.Int("http-port", 0, "loopback port for svcdns's HTTP API (0 = dns-port+1000)")
	wait := flag.Duration("timeout", 5*time.Second, "how long to poll for one container before counting a miss")
	flag.Parse()
	if *httpPort == 0 {
		*httpPort = *dnsPort + 1000
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{
		bin: *bin, n: *n, wait: *wait, runID: strconv.FormatInt(time.Now().UnixNano()%0xffffff, 16),
		dnsAddr: fmt.Sprintf("127.0.0.1:%d", *dnsPort), httpAddr: fmt.Sprintf("127.0.0.1:%d", *httpPort),
	}
	err := b.run(ctx)
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventlat:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin               string
	n                 int
	wait              time.Duration
	runID             string
	dnsAddr, httpAddr string
	dir               string
	image             string
	svcdns            *exec.Cmd
	svcdnsLog         *os.File
	events            *exec.Cmd
	evMu              sync.Mutex
	evCond            *sync.Cond
	evs               map[string]map[string]int64 // container id -> action -> timeNano (first seen)
	evErr             error
	startLat, rmLat   []time.Duration
	startMiss, rmMiss []string
}

// docker runs the docker CLI with a bound and returns its trimmed stdout.
func docker(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *bench) run(ctx context.Context) error {
	if _, err := docker(ctx, 20*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return err
	}
	var err error
	if b.dir, err = os.MkdirTemp("", prefix+"eventlat-"); err != nil {
		return err
	}
	if err := b.buildImage(ctx); err != nil {
		return err
	}
	if err := b.startEvents(ctx); err != nil {
		return err
	}
	if err := b.startSvcdns(ctx); err != nil {
		return err
	}

	ids := make([]string, 0, b.n)
	for i := range b.n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := fmt.Sprintf("%s%s-%d", prefix, b.runID, i)
		id, err := b.measureStart(ctx, name)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := b.measureRemove(ctx, fmt.Sprintf("%s%s-%d", prefix, b.runID, i), id); err != nil {
			return err
		}
	}
	b.print()
	return nil
}

// buildImage builds a FROM scratch image from a static Go program.
func (b *bench) buildImage(ctx context.Context) error {
	src := `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`
	files := map[string]string{
		"main.go":    src,
		"go.mod":     "module sleeper\n\ngo 1.22\n",
		"Dockerfile": "FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", "sleeper", ".")
	build.Dir = b.dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build sleeper: %w: %s", err, out)
	}
	b.image = prefix + "sleeper:" + b.runID
	if _, err := docker(ctx, 2*time.Minute, "build", "-q", "-t", b.image, "--label", prefix+"run="+b.runID, b.dir); err != nil {
		b.image = ""
		return err
	}
	return nil
}

// startEvents follows `docker events` for this run's containers. --since
// replays from before the subscription, so no start can slip between it and
// the first container.
func (b *bench) startEvents(ctx context.Context) error {
	b.evs = map[string]map[string]int64{}
	b.evCond = sync.NewCond(&b.evMu)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	b.events = exec.CommandContext(ctx, "docker", "events", "--format", "{{json .}}", "--since", since,
		"--filter", "type=container", "--filter", "label="+prefix+"run="+b.runID)
	out, err := b.events.StdoutPipe()
	if err != nil {
		return err
	}
	if err := b.events.Start(); err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m struct {
				Action   string
				TimeNano int64 `json:"timeNano"`
				Actor    struct{ ID string }
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			b.evMu.Lock()
			if b.evs[m.Actor.ID] == nil {
				b.evs[m.Actor.ID] = map[string]int64{}
			}
			if _, seen := b.evs[m.Actor.ID][m.Action]; !seen {
				b.evs[m.Actor.ID][m.Action] = m.TimeNano
			}
			b.evCond.Broadcast()
			b.evMu.Unlock()
		}
		b.evMu.Lock()
		b.evErr = errors.New("docker events ended")
		b.evCond.Broadcast()
		b.evMu.Unlock()
	}()
	return nil
}

// event waits (bounded) for the first action event of container id.
func (b *bench) event(id, action string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { b.evMu.Lock(); b.evCond.Broadcast(); b.evMu.Unlock() })
	defer t.Stop()
	b.evMu.Lock()
	defer b.evMu.Unlock()
	for {
		if ns, ok := b.evs[id][action]; ok {
			return time.Unix(0, ns), nil
		}
		if b.evErr != nil {
			return time.Time{}, b.evErr
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no %s event for %.12s within %v", action, id, timeout)
		}
		b.evCond.Wait()
	}
}

func (b *bench) startSvcdns(ctx context.Context) error {
	var err error
	if b.svcdnsLog, err = os.Create(filepath.Join(b.dir, "svcdns.log")); err != nil {
		return err
	}
	b.svcdns = exec.Command(b.bin, "--dns-addr", b.dnsAddr, "--http-addr", b.httpAddr,
		"--upstream", "none", "--ttl", "0")
	b.svcdns.Stdout, b.svcdns.Stderr = b.svcdnsLog, b.svcdnsLog
	if err := b.svcdns.Start(); err != nil {
		return fmt.Errorf("start svcdns: %w", err)
	}
	// Ready once synced: an unknown name gets NXDOMAIN, not SERVFAIL.
	deadline := time.Now().Add(30 * time.Second)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	for {
		m := new(dns.Msg)
		m.SetQuestion(prefix+"probe.service.local.", dns.TypeA)
		r, _, err := c.ExchangeContext(ctx, m, b.dnsAddr)
		if err == nil && r.Rcode == dns.RcodeNameError {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("svcdns not ready within 30s (last: %v); log: %s", describe(r, err), b.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bench) logTail() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "svcdns.log"))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func describe(r *dns.Msg, err error) string {
	if err != nil {
		return err.Error()
	}
	return dns.RcodeToString[r.Rcode]
}

// poll asks svcdns for name A in a tight loop on one UDP socket until done
// reports true for an answer, or the deadline, or stop is closed. It
// returns the receive time of that answer (zero when none).
func (b *bench) poll(name string, deadline time.Time, stop <-chan struct{}, done func(*dns.Msg) bool) (time.Time, *dns.Msg, error) {
	conn, err := net.Dial("udp", b.dnsAddr)
	if err != nil {
		return time.Time{}, nil, err
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	buf := make([]byte, 1500)
	for id := uint16(1); ; id++ {
		select {
		case <-stop:
			return time.Time{}, nil, nil
		default:
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil, nil
		}
		q.Id = id
		wire, _ := q.Pack()
		if _, err := conn.Write(wire); err != nil {
			return time.Time{}, nil, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				break // timeout: ask again
			}
			now := time.Now()
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil || r.Id != id {
				continue
			}
			if done(r) {
				return now, r, nil
			}
			break
		}
	}
}

func hasA(r *dns.Msg, ip string) bool {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && (ip == "" || a.A.String() == ip) {
			return true
		}
	}
	return false
}

type pollResult struct {
	at  time.Time
	msg *dns.Msg
	err error
}

func (b *bench) measureStart(ctx context.Context, name string) (string, error) {
	qname := name + ".service.local"
	stop := make(chan struct{})
	res := make(chan pollResult, 1)
	deadline := time.Now().Add(b.wait + 30*time.Second) // docker run itself may be slow on a busy host
	go func() {
		at, msg, err := b.poll(qname, deadline, stop, func(r *dns.Msg) bool { return hasA(r, "") })
		res <- pollResult{at, msg, err}
	}()
	id, err := docker(ctx, time.Minute, "run", "-d", "--name", name,
		"--label", "SERVICE_NAME="+name, "--label", prefix+"run="+b.runID, b.image)
	if err != nil {
		close(stop)
		<-res
		return "", err
	}
	ip, err := docker(ctx, 20*time.Second, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", id)
	if err != nil {
		close(stop)
		<-res
		return id, err
	}
	ip = strings.Fields(ip + " ?")[0]
	started, err := b.event(id, "start", 10*time.Second)
	if err != nil {
		close(stop)
		<-res
		return id, err
	}
	// Bound the poll to b.wait after the start event.
	var r pollResult
	select {
	case r = <-res:
	case <-time.After(time.Until(started.Add(b.wait))):
		close(stop)
		r = <-res
	}
	switch {
	case r.err != nil:
		return id, fmt.Errorf("poll %s: %w", qname, r.err)
	case r.msg == nil:
		b.startMiss = append(b.startMiss, name+": no answer within "+b.wait.String())
	case !hasA(r.msg, ip):
		b.startMiss = append(b.startMiss, fmt.Sprintf("%s: answered %v, container has %s", name, r.msg.Answer, ip))
	default:
		b.startLat = append(b.startLat, r.at.Sub(started))
	}
	return id, nil
}

func (b *bench) measureRemove(ctx context.Context, name, id string) error {
	qname := name + ".service.local"
	stop := make(chan struct{})
	res := make(chan pollResult, 1)
	deadline := time.Now().Add(b.wait + 30*time.Second)
	go func() {
		at, msg, err := b.poll(qname, deadline, stop, func(r *dns.Msg) bool { return r.Rcode == dns.RcodeNameError })
		res <- pollResult{at, msg, err}
	}()
	if _, err := docker(ctx, time.Minute, "rm", "-f", id); err != nil {
		close(stop)
		<-res
		return err
	}
	died, err := b.event(id, "die", 10*time.Second)
	if err != nil {
		close(stop)
		<-res
		return err
	}
	var r pollResult
	select {
	case r = <-res:
	case <-time.After(time.Until(died.Add(b.wait))):
		close(stop)
		r = <-res
	}
	switch {
	case r.err != nil:
		return fmt.Errorf("poll %s: %w", qname, r.err)
	case r.msg == nil:
		b.rmMiss = append(b.rmMiss, name+": still answered "+b.wait.String()+" after die")
	default:
		b.rmLat = append(b.rmLat, r.at.Sub(died))
	}
	return nil
}

func pct(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func (b *bench) print() {
	ver, _ := docker(context.Background(), 10*time.Second, "version", "--format", "{{.Server.Version}}")
	fmt.Printf("real Docker engine %s, %d containers, polled over UDP on %s\n", ver, b.n, b.dnsAddr)
	line := func(what string, lat []time.Duration, miss []string) {
		if len(lat) == 0 {
			fmt.Printf("%-36s no measurement, misses %d/%d\n", what, len(miss), b.n)
		} else {
			fmt.Printf("%-36s p50 %s  p99 %s  max %s  misses %d/%d\n", what,
				ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(pct(lat, 1)), len(miss), b.n)
		}
		for _, m := range miss[:min(len(miss), 5)] {
			fmt.Printf("  miss: %s\n", m)
		}
	}
	line("start event -> answer with its IP:", b.startLat, b.startMiss)
	line("die event (rm -f) -> NXDOMAIN:", b.rmLat, b.rmMiss)
}

// cleanup removes everything this run made; it runs on every exit path.
func (b *bench) cleanup() {
	ctx := context.Background()
	if ids, err := docker(ctx, 30*time.Second, "ps", "-aq", "--filter", "label="+prefix+"run="+b.runID); err == nil && ids != "" {
		args := append([]string{"rm", "-f"}, strings.Fields(ids)...)
		if _, err := docker(ctx, 2*time.Minute, args...); err != nil {
			fmt.Fprintln(os.Stderr, "eventlat: cleanup:", err)
		}
	}
	if b.image != "" {
		if _, err := docker(ctx, time.Minute, "rmi", "-f", b.image); err != nil {
			fmt.Fprintln(os.Stderr, "eventlat: cleanup:", err)
		}
	}
	if b.svcdns != nil && b.svcdns.Process != nil {
		_ = b.svcdns.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = b.svcdns.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = b.svcdns.Process.Kill()
			<-done
		}
	}
	if b.svcdnsLog != nil {
		b.svcdnsLog.Close()
	}
	if b.events != nil && b.events.Process != nil {
		_ = b.events.Process.Kill()
		_ = b.events.Wait()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
