//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svcdns/svcdns/internal/testutil"
)

// The programs people put in front of a discovery DNS (HAProxy, unbound,
// dnsmasq, CoreDNS, nginx), each run as a process of the test: its own
// config in a temp dir, loopback ports chosen by the test, killed at the
// end. The Debian packages come from scripts/deps.sh.

// requireTool returns the path of a program from a Debian package: it
// skips the test locally when the program is missing, and fails it under
// CI=true, where scripts/deps.sh installed it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (scripts/deps.sh installs the test packages)", name)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// consumer is one running program of a test.
type consumer struct {
	name   string
	cmd    *exec.Cmd
	out    *testutil.LogBuffer
	exited chan struct{}
	err    error
}

// startConsumer runs bin with args; its output is kept for Log and shown
// when the test fails; it is killed at cleanup.
func startConsumer(t testing.TB, name, bin string, args ...string) *consumer {
	t.Helper()
	c := &consumer{name: name, cmd: exec.Command(bin, args...), out: &testutil.LogBuffer{Max: 4 << 20}, exited: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.Env = cleanEnv()
	// Its own process group: a program that forks (nginx's workers) is
	// killed whole.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, c.out)
		}
	})
	return c
}

// Log returns what the program wrote so far.
func (c *consumer) Log() string { return c.out.String() }

// running fails the test when the program exited.
func (c *consumer) running(t testing.TB) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("%s exited: %v\n%s", c.name, c.err, c.out)
	default:
	}
}

// writeConfig writes a file into dir and returns its path.
func writeConfig(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unixCommand sends one line to a unix socket (a stats or control socket)
// and returns everything it answers until it closes the connection.
func unixCommand(path, line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// loopbackAddr is 127.0.<a>.<b>, the address of instance b in a test's
// block a: instances registered over the API need an address, and the
// consumers never connect to them.
func loopbackAddr(a, b int) string { return fmt.Sprintf("127.0.%d.%d", a, b) }

// lines returns the lines of s that contain sub.
func lines(s, sub string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
