//go:build integration

package integration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/internal/testutil"
)

// Resources the tests create carry this label, and names with this prefix.
const (
	testLabel   = "svcdns-test=1"
	namePrefix  = "svcdns-test-"
	testNode    = "svcdns-test-node"
	testZone    = "local"
	testFilter  = "label=" + testLabel
	ignoreLabel = "svcdns-test-ignored" // marks containers svcdns must leave out of the catalog
)

// Images built from testapps/ and the svcdns binary, FROM scratch.
const (
	imgFakesvc  = "svcdns-test-fakesvc:latest"    // /fakesvc, EXPOSE 8080
	imgBooks    = "svcdns-test/books-ms:1.0"      // the same image; its base name is books-ms
	imgHealth   = "svcdns-test-fakesvc-hc:latest" // fakesvc with HEALTHCHECK /healthcheck
	imgResolve  = "svcdns-test-resolve:latest"
	imgBusybox  = "svcdns-test-busybox:latest"
	imgSvcdns   = "svcdns-test-svcdns:latest"
	busyboxPath = "/bin/busybox" // Debian busybox-static
)

var keep = flag.Bool("keep", false, "keep the images built for the run")

// Set by TestMain.
var (
	binDir    string // svcdns and the test apps, CGO_ENABLED=0
	svcdnsBin string
	buildErr  error // the svcdns binary did not build
	appsErr   error // the test apps did not build
	dockerErr error // nil when `docker info` works

	imagesOnce sync.Once
	imagesErr  error
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	unlock, err := lockEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir, err = os.MkdirTemp("", namePrefix+"bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)

	began := time.Now()
	svcdnsBin = filepath.Join(binDir, "svcdns")
	buildErr = goBuild(root, svcdnsBin, "./cmd/svcdns")
	appsErr = goBuild(root, filepath.Join(binDir, "apps")+"/", "./integration/testapps/...")
	fmt.Fprintf(os.Stderr, "integration: built svcdns and test apps in %v (svcdns: %v, apps: %v)\n",
		time.Since(began).Round(time.Millisecond), errOrOK(buildErr), errOrOK(appsErr))

	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		dockerErr = fmt.Errorf("docker info: %v: %s", err, bytes.TrimSpace(out))
	} else {
		sweep()
	}
	code := m.Run()
	if dockerErr == nil {
		sweep()
		if !*keep {
			removeImages()
		}
	}
	return code
}

// engineLock is held by one run of this package at a time on a machine:
// two runs on one engine break each other (each run's sweep and image
// removal takes away the other's), so the second waits for the first.
const engineLock = "/tmp/svcdns-integration.lock"

func lockEngine() (unlock func(), err error) {
	f, err := os.OpenFile(engineLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", engineLock, err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		fmt.Fprintf(os.Stderr, "integration: waiting for another run holding %s\n", engineLock)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", engineLock, err)
		}
	}
	return func() { f.Close() }, nil
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// goBuild builds pkg without VCS stamping: the tests need no revision in
// the binary, and stamping runs git, which fails (exit status 128) in a
// clone that another user owns.
func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// sweep removes what a crashed earlier run left: containers and networks
// labelled svcdns-test=1.
func sweep() {
	if ids := dockerLines("ps", "-aq", "--filter", "label="+testLabel); len(ids) > 0 {
		_, _ = dockerCmd(append([]string{"rm", "-f", "-v"}, ids...)...)
	}
	if ids := dockerLines("network", "ls", "-q", "--filter", "label="+testLabel); len(ids) > 0 {
		_, _ = dockerCmd(append([]string{"network", "rm"}, ids...)...)
	}
}

func removeImages() {
	var refs []string
	for _, pat := range []string{namePrefix + "*", "svcdns-test/*"} {
		refs = append(refs, dockerLines("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference="+pat)...)
	}
	if len(refs) > 0 {
		_, _ = dockerCmd(append([]string{"rmi", "-f"}, refs...)...)
	}
}

// requireBinary stops a test when svcdns did not build.
func requireBinary(t testing.TB) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("svcdns binary: %v", buildErr)
	}
}

// requireDocker skips (locally) or fails (CI=true) a test without Docker,
// and builds the test images once.
func requireDocker(t testing.TB) {
	t.Helper()
	requireBinary(t)
	if dockerErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no Docker engine: %v", dockerErr)
		}
		t.Skipf("no Docker engine: %v", dockerErr)
	}
	if appsErr != nil {
		t.Fatalf("test apps: %v", appsErr)
	}
	imagesOnce.Do(func() { imagesErr = buildImages() })
	if imagesErr != nil {
		t.Fatalf("test images: %v", imagesErr)
	}
}

// buildImages makes the FROM scratch images of the test apps, the busybox
// client and svcdns itself.
func buildImages() error {
	began := time.Now()
	ctxDir, err := os.MkdirTemp("", namePrefix+"images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ctxDir)
	copies := map[string]string{
		filepath.Join(binDir, "apps", "fakesvc"):     "fakesvc",
		filepath.Join(binDir, "apps", "healthcheck"): "healthcheck",
		filepath.Join(binDir, "apps", "resolve"):     "resolve",
		svcdnsBin:                                    "svcdns",
	}
	haveBusybox := true
	if _, err := os.Stat(busyboxPath); err != nil {
		haveBusybox = false
	} else {
		copies[busyboxPath] = "busybox"
	}
	for src, dst := range copies {
		if err := copyFile(src, filepath.Join(ctxDir, dst)); err != nil {
			return err
		}
	}
	files := map[string]string{
		"Dockerfile.fakesvc": `FROM scratch
COPY fakesvc healthcheck /
EXPOSE 8080
ENTRYPOINT ["/fakesvc"]
`,
		"Dockerfile.hc": `FROM scratch
COPY fakesvc healthcheck /
EXPOSE 8080
HEALTHCHECK --interval=500ms --timeout=2s --retries=1 CMD ["/healthcheck"]
ENTRYPOINT ["/fakesvc"]
`,
		"Dockerfile.resolve": "FROM scratch\nCOPY resolve /\nENTRYPOINT [\"/resolve\"]\n",
		"Dockerfile.svcdns":  "FROM scratch\nCOPY svcdns /\nEXPOSE 53/udp 53/tcp 8053\nENTRYPOINT [\"/svcdns\"]\n",
	}
	builds := [][]string{
		{"Dockerfile.fakesvc", imgFakesvc, imgBooks},
		{"Dockerfile.hc", imgHealth},
		{"Dockerfile.resolve", imgResolve},
		{"Dockerfile.svcdns", imgSvcdns},
	}
	if haveBusybox {
		files["Dockerfile.busybox"] = "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n"
		builds = append(builds, []string{"Dockerfile.busybox", imgBusybox})
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, b := range builds {
		args := []string{"build", "-q", "--label", testLabel, "-f", filepath.Join(ctxDir, b[0])}
		for _, tag := range b[1:] {
			args = append(args, "-t", tag)
		}
		if _, err := dockerCmd(append(args, ctxDir)...); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "integration: built %d images in %v\n", len(builds), time.Since(began).Round(time.Millisecond))
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// ---- svcdns, the process ----

// svcdns is one running svcdns binary.
type svcdns struct {
	DNS   string // host:port of the DNS listener
	HTTP  string // host:port of the HTTP API
	Proxy string // host:port of the HTTP proxy, "" when off
	Token string // --http-token, "" for none

	args   []string
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// startSvcdns runs the binary with a DNS listener on dnsAddr ("" = a port
// the kernel picks on 127.0.0.1), the API on such a port, --upstream none
// and --node svcdns-test-node unless flags say otherwise, and returns once
// its start line names the addresses it bound. At cleanup it sends SIGTERM
// and expects exit status 0; its log goes to the test log when the test
// failed.
func startSvcdns(t testing.TB, dnsAddr string, flags ...string) *svcdns {
	t.Helper()
	s := launchSvcdns(t, dnsAddr, flags)
	t.Cleanup(func() { s.stop(t) })
	s.waitStarted(t)
	return s
}

// launchSvcdns starts the binary as startSvcdns describes, without
// waiting or a cleanup.
func launchSvcdns(t testing.TB, dnsAddr string, flags []string) *svcdns {
	t.Helper()
	requireBinary(t)
	s := &svcdns{
		stderr: &testutil.LogBuffer{Max: 4 << 20},
		exited: make(chan struct{}),
	}
	s.args = []string{"--dns-addr", cmp.Or(dnsAddr, "127.0.0.1:0"), "--http-addr", "127.0.0.1:0", "--log-level", "debug"}
	if !hasFlag(flags, "--upstream") {
		s.args = append(s.args, "--upstream", "none")
	}
	if !hasFlag(flags, "--node") {
		s.args = append(s.args, "--node", testNode)
	}
	for i, f := range flags {
		if f == "--http-token" && i+1 < len(flags) {
			s.Token = flags[i+1]
		}
	}
	s.args = append(s.args, flags...)
	s.cmd = exec.Command(svcdnsBin, s.args...)
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start svcdns: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	return s
}

// waitStarted waits for the start line and reads the bound addresses
// from it. Every listener is bound (and queues what arrives) before the
// line is written: there is nothing to poll.
func (s *svcdns) waitStarted(t testing.TB) {
	t.Helper()
	m := s.waitLog(t, testutil.StartedLine, 15*time.Second)
	s.DNS, s.HTTP = m[1], m[2]
	if m[3] != "off" {
		s.Proxy = m[3]
	}
}

// waitLog returns the submatches of the first line of svcdns's log that
// re matches, waiting for it at most timeout; the test fails if svcdns
// exits or the time runs out first.
func (s *svcdns) waitLog(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-s.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	m, err := s.stderr.WaitFor(ctx, re)
	if err != nil {
		select {
		case <-s.exited:
			t.Fatalf("svcdns %s exited waiting for %q: %v\n%s", strings.Join(s.args, " "), re, s.err, s.stderr)
		default:
			t.Fatalf("svcdns %s: no %q after %v\n%s", strings.Join(s.args, " "), re, timeout, s.stderr)
		}
	}
	return m
}

func (s *svcdns) stop(t testing.TB) {
	select {
	case <-s.exited:
		t.Errorf("svcdns exited before the test ended: %v", s.err)
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.err != nil {
				t.Errorf("svcdns after SIGTERM: %v (want exit status 0)", s.err)
			}
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			t.Errorf("svcdns did not exit within 10s of SIGTERM")
		}
	}
	if t.Failed() {
		t.Logf("svcdns log:\n%s", s.stderr)
	}
}

// Log returns what svcdns wrote so far.
func (s *svcdns) Log() string { return s.stderr.String() }

func hasFlag(flags []string, name string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return f == name || strings.HasPrefix(f, name+"=") })
}

// cleanEnv is the test's environment without SVCDNS_* settings, which the
// binary would read as flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SVCDNS_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns a port that was free on 127.0.0.1 for both TCP and UDP.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port for both TCP and UDP")
	return 0
}

// ---- HTTP API ----

// do sends one API request with the token, and returns status and body.
func (s *svcdns) do(t testing.TB, method, path string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+s.HTTP+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// apiInstance is the body of PUT /v1/instances/{id}.
type apiInstance struct {
	Service  string   `json:"service"`
	Address  string   `json:"address"`
	Port     int      `json:"port"`
	Protocol string   `json:"protocol,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	TTL      string   `json:"ttl,omitempty"`
}

// register puts an API instance and fails the test unless it is accepted.
func (s *svcdns) register(t testing.TB, id string, inst apiInstance) {
	t.Helper()
	code, body, _ := s.do(t, http.MethodPut, "/v1/instances/"+id, inst)
	if code/100 != 2 {
		t.Fatalf("PUT /v1/instances/%s %+v: %d %s", id, inst, code, body)
	}
}

// catalogContainers returns the ids of the Docker containers in svcdns's
// catalog, from GET /v1/containers, or, if svcdns has no such endpoint,
// from the instances of every service.
func (s *svcdns) catalogContainers() (map[string]bool, error) {
	ids := map[string]bool{}
	code, body, err := s.get("/v1/containers")
	if err != nil {
		return nil, err
	}
	if code == http.StatusOK {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, fmt.Errorf("GET /v1/containers: %v: %.300s", err, body)
		}
		collectContainerIDs(v, ids)
		return ids, nil
	}
	if code != http.StatusNotFound {
		return nil, fmt.Errorf("GET /v1/containers: %d %.300s", code, body)
	}
	code, body, err = s.get("/v1/services")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/services: %d %.300s", code, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("GET /v1/services: %v: %.300s", err, body)
	}
	for _, name := range serviceNames(v) {
		code, body, err := s.get("/v1/services/" + name)
		if err != nil {
			return nil, err
		}
		if code == http.StatusNotFound {
			continue // removed since the list
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET /v1/services/%s: %d %.300s", name, code, body)
		}
		var iv any
		if err := json.Unmarshal(body, &iv); err != nil {
			return nil, fmt.Errorf("GET /v1/services/%s: %v", name, err)
		}
		collectContainerIDs(iv, ids)
	}
	return ids, nil
}

func (s *svcdns) get(path string) (int, []byte, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.HTTP + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// collectContainerIDs walks decoded JSON and collects every 64-hex-digit
// Docker container id found under a key naming a container id (or "id").
func collectContainerIDs(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			key := strings.ToLower(strings.ReplaceAll(k, "_", ""))
			if str, ok := val.(string); ok && (key == "id" || key == "containerid") {
				if id, _, _ := strings.Cut(str, ":"); hexID.MatchString(id) {
					out[id] = true
				}
			}
			collectContainerIDs(val, out)
		}
	case []any:
		for _, e := range x {
			collectContainerIDs(e, out)
		}
	}
}

// serviceNames reads the names out of GET /v1/services: a list of objects
// with a name, or an object keyed by name.
func serviceNames(v any) []string {
	var names []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				for k, val := range m {
					if strings.EqualFold(k, "name") || strings.EqualFold(k, "service") {
						if s, ok := val.(string); ok {
							names = append(names, s)
						}
					}
				}
			}
		}
	case map[string]any:
		if inner, ok := x["services"]; ok {
			return serviceNames(inner)
		}
		for k := range x {
			names = append(names, k)
		}
	}
	return names
}

// ---- DNS, in process ----

// ask sends one query over UDP with EDNS0 (4096) and retries over TCP when
// the answer is truncated.
func ask(server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.Exchange(m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s @%s: %w", name, dns.TypeToString[qtype], server, err)
	}
	return r, nil
}

// aRecords returns the A and AAAA addresses of the answer section, sorted.
func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// srvRecords returns the SRV answers as "target:port", sorted.
func srvRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if r, ok := rr.(*dns.SRV); ok {
			out = append(out, strings.ToLower(r.Target)+":"+strconv.Itoa(int(r.Port)))
		}
	}
	slices.Sort(out)
	return out
}

// glue returns the additional section's addresses by owner name.
func glue(m *dns.Msg) map[string][]string {
	out := map[string][]string{}
	for _, rr := range m.Extra {
		name := strings.ToLower(rr.Header().Name)
		switch r := rr.(type) {
		case *dns.A:
			out[name] = append(out[name], r.A.String())
		case *dns.AAAA:
			out[name] = append(out[name], r.AAAA.String())
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// ---- dig and kdig ----

// digResult is one parsed dig or kdig output.
type digResult struct {
	Tool                          string
	Status                        string
	Flags                         []string
	Answer, Authority, Additional []dns.RR
	Size                          int // bytes of the reply, as the tool reports it
	Out                           string
}

// Has reports whether the header flag (qr, aa, tc, rd, ra) was set.
func (r digResult) Has(flag string) bool { return slices.Contains(r.Flags, flag) }

var (
	reStatus  = regexp.MustCompile(`->>HEADER<<-.*status: ([A-Z]+)`)
	reFlags   = regexp.MustCompile(`(?i)^;; flags: ([a-z ]*);`)
	reSection = regexp.MustCompile(`^;; ([A-Z]+) SECTION:`)
	reDigSize = regexp.MustCompile(`MSG SIZE\s+rcvd: (\d+)`)
	reKdigRcv = regexp.MustCompile(`^;; Received (\d+) B`)
)

// runDig runs tool ("dig" or "kdig") against server with args and parses
// its output; a run that printed no reply header fails the test.
func runDig(t testing.TB, tool, server string, args ...string) digResult {
	t.Helper()
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		t.Fatal(err)
	}
	full := []string{"@" + host, "-p", port}
	if tool == "dig" {
		full = append(full, "+time=2", "+tries=1")
	} else {
		full = append(full, "+time=2", "+retry=0")
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, full...).CombinedOutput()
	res := parseDig(tool, string(out))
	if res.Status == "" {
		t.Fatalf("%s %s: no reply (%v):\n%s", tool, strings.Join(full, " "), err, out)
	}
	return res
}

func parseDig(tool, out string) digResult {
	res := digResult{Tool: tool, Out: out}
	var section *[]dns.RR
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := reStatus.FindStringSubmatch(line); m != nil {
			res.Status = m[1]
			continue
		}
		if m := reFlags.FindStringSubmatch(line); m != nil {
			res.Flags = strings.Fields(strings.ToLower(m[1]))
			continue
		}
		if m := reDigSize.FindStringSubmatch(line); m != nil {
			res.Size, _ = strconv.Atoi(m[1])
		}
		if m := reKdigRcv.FindStringSubmatch(line); m != nil {
			res.Size, _ = strconv.Atoi(m[1])
		}
		if m := reSection.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "ANSWER":
				section = &res.Answer
			case "AUTHORITY":
				section = &res.Authority
			case "ADDITIONAL":
				section = &res.Additional
			default:
				section = nil
			}
			continue
		}
		if strings.TrimSpace(line) == "" {
			section = nil
			continue
		}
		if section == nil || strings.HasPrefix(line, ";") {
			continue
		}
		if rr, err := dns.NewRR(line); err == nil && rr != nil {
			*section = append(*section, rr)
		}
	}
	return res
}

// ---- Docker ----

// dockerCmd runs the docker CLI (at most 2 minutes) and returns its
// trimmed stdout.
func dockerCmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker %s: %v: %s%s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()), tail(stdout.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func tail(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return "\nstdout: " + s
}

func dockerLines(args ...string) []string {
	out, err := dockerCmd(args...)
	if err != nil || out == "" {
		return nil
	}
	return strings.Fields(out)
}

// mustDocker runs docker and fails the test on error.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dockerCmd(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runContainer starts a detached container named svcdns-test-<name> with
// the test label; it is removed at cleanup. args are docker run options,
// then the image and its arguments. It returns the full id.
func runContainer(t testing.TB, name string, args ...string) string {
	t.Helper()
	full := append([]string{"run", "-d", "--name", namePrefix + name, "--label", testLabel}, args...)
	id, err := dockerCmd(full...)
	t.Cleanup(func() { _, _ = dockerCmd("rm", "-f", "-v", namePrefix+name) })
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runClient runs a container in the foreground (docker run --rm) and
// returns its output and error.
func runClient(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"run", "--rm", "--name", namePrefix + name, "--label", testLabel}, args...)
	t.Cleanup(func() { _, _ = dockerCmd("rm", "-f", namePrefix+name) })
	return dockerCmd(full...)
}

// createNetwork makes a user-defined bridge network svcdns-test-<name>,
// removed at cleanup (after the containers: cleanups run last-in first-out).
func createNetwork(t testing.TB, name string, args ...string) string {
	t.Helper()
	full := append([]string{"network", "create", "--label", testLabel}, args...)
	mustDocker(t, append(full, namePrefix+name)...)
	t.Cleanup(func() { _, _ = dockerCmd("network", "rm", namePrefix+name) })
	return namePrefix + name
}

// containerIP is the container's IPv4 address on network ("" = its only
// or first one).
func containerIP(t testing.TB, id, network string) string {
	t.Helper()
	out := mustDocker(t, "inspect", "--format", "{{json .NetworkSettings.Networks}}", id)
	var nets map[string]struct{ IPAddress string }
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		t.Fatalf("inspect %s: %v: %s", id, err, out)
	}
	if network != "" {
		ip := nets[network].IPAddress
		if ip == "" {
			t.Fatalf("container %s has no address on %s: %s", id, network, out)
		}
		return ip
	}
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if ip := nets[n].IPAddress; ip != "" {
			return ip
		}
	}
	t.Fatalf("container %s has no address: %s", id, out)
	return ""
}

// hostname is a container's hostname, which fakesvc answers with.
func hostname(t testing.TB, id string) string {
	t.Helper()
	return mustDocker(t, "inspect", "--format", "{{.Config.Hostname}}", id)
}

// bridgeGateway is the default bridge's gateway address, which every
// container on it (and, routed, on user networks) reaches.
func bridgeGateway(t testing.TB) netip.Addr {
	t.Helper()
	out := mustDocker(t, "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}} {{end}}")
	for _, f := range strings.Fields(out) {
		if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
			return a
		}
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() {
			return p.Masked().Addr().Next() // Docker's default: the subnet's first address
		}
	}
	t.Fatalf("no IPv4 gateway for the default bridge: %q", out)
	return netip.Addr{}
}

// dockerDNSAddr is the address svcdns listens on for containers started
// with --dns: port 53 (resolv.conf has no port) of the bridge gateway.
func dockerDNSAddr(t testing.TB) (netip.Addr, string) {
	t.Helper()
	gw := bridgeGateway(t)
	addr := net.JoinHostPort(gw.String(), "53")
	for _, network := range []string{"udp", "tcp"} {
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenPacket("udp", addr)
		} else {
			c, err = net.Listen("tcp", addr)
		}
		if err != nil {
			t.Fatalf("svcdns must listen on %s for containers started with --dns %s, and it cannot be bound here (tests run as root): %v", addr, gw, err)
		}
		c.Close()
	}
	return gw, addr
}

// runningContainers is `docker ps` (running and paused) with the test label
// when filtered, without the containers marked as ignored.
func runningContainers(filtered bool) (map[string]bool, error) {
	args := []string{"ps", "--no-trunc", "--format", `{{.ID}} {{.Label "` + ignoreLabel + `"}}`}
	if filtered {
		args = append(args, "--filter", "label="+testLabel)
	}
	out, err := dockerCmd(args...)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 1 {
			ids[f[0]] = true
		}
	}
	return ids, nil
}

// catalogMatchesDockerPS returns nil when the containers in svcdns's catalog
// are exactly the running containers of `docker ps` (only those with the
// test label when filtered), containers labelled svcdns-test-ignored aside.
func catalogMatchesDockerPS(s *svcdns, filtered bool) error {
	want, err := runningContainers(filtered)
	if err != nil {
		return err
	}
	got, err := s.catalogContainers()
	if err != nil {
		return err
	}
	var missing, stale []string
	for id := range want {
		if !got[id] {
			missing = append(missing, id[:12])
		}
	}
	for id := range got {
		if !want[id] {
			stale = append(stale, id[:12])
		}
	}
	if len(missing)+len(stale) > 0 {
		slices.Sort(missing)
		slices.Sort(stale)
		return fmt.Errorf("catalog differs from docker ps (%d running): missing %v, stale %v", len(want), missing, stale)
	}
	return nil
}

// ---- waiting ----

// eventually calls fn until it returns nil and returns how long that took;
// after timeout it fails the test with fn's last error. Timeouts are
// generous: it waits for convergence, it does not measure speed.
func eventually(t testing.TB, timeout time.Duration, what string, fn func() error) time.Duration {
	t.Helper()
	return poll(t, timeout, 20*time.Millisecond, what, fn)
}

func poll(t testing.TB, timeout, every time.Duration, what string, fn func() error) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		err := fn()
		if err == nil {
			return time.Since(began)
		}
		if time.Since(began) > timeout {
			t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(every)
	}
}

// never checks that fn keeps returning nil for d.
func never(t testing.TB, d time.Duration, what string, fn func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameSet is an error unless got and want hold the same strings.
func sameSet(what string, got, want []string) error {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		return fmt.Errorf("%s: got %v, want %v", what, g, w)
	}
	return nil
}
