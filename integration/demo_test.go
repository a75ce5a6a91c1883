//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// make demo, as a user runs it from a fresh clone (of the commit checked
// out: what is not committed is not in it): it builds the images
// (nothing pulled), starts svcdns and two books-ms replicas with Debian's
// docker-compose, and the client prints an answer from each replica.
func TestComposeDemo(t *testing.T) {
	requireDocker(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no docker-compose (apt-get install docker-compose)")
		}
		t.Skip("no docker-compose")
	}
	dir := freshClone(t)
	make := func(target string) (string, error) {
		out, err := exec.Command("make", "-C", dir, target).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := make("demo-down"); err != nil {
			t.Errorf("make demo-down: %v\n%s", err, tail(out))
		}
	})
	out, err := make("demo")
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, tail(out))
	}
	replies := regexp.MustCompile(`(?m)^GET http://svcdns-demo-books-ms-\d\.container\.local:8080/api/v1/books -> books-ms replica ([0-9a-f]{12}):`).FindAllStringSubmatch(out, -1)
	if len(replies) != 2 || replies[0][1] == replies[1][1] {
		t.Errorf("make demo: want answers from two different replicas, got %q\n%s", replies, tail(out))
	}
}

// freshClone clones the repository's HEAD into a temporary directory, so
// that make demo sees only committed files (a file left out of git, or
// ignored, would make the demo pass here and fail for a user). Outside a
// git work tree (an exported tarball) it is the tree itself.
func freshClone(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("git", "-C", "..", "rev-parse", "--is-inside-work-tree").Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Logf("not a git work tree (%v): make demo runs in the tree itself", err)
		return ".."
	}
	dir := filepath.Join(t.TempDir(), "svcdns")
	if out, err := exec.Command("git", "clone", "--quiet", "--no-hardlinks", "..", dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if out, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", "Makefile", "examples/compose").Output(); err == nil && len(out) > 0 {
		t.Logf("uncommitted changes to the demo are not in the clone:\n%s", out)
	}
	return dir
}
