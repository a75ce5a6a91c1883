package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/catalog"
	"github.com/svcdns/svcdns/httpapi"
	"github.com/svcdns/svcdns/internal/testutil"
)

// cli runs one svcdns command line and returns its stdout and result.
func cli(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := dispatch(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// freeAddr is a loopback address nothing listens on (it was free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestVersion(t *testing.T) {
	out, err := cli(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "svcdns "+version+"\n") || !strings.Contains(out, "linux/") {
		t.Errorf("version: %v %q", err, out)
	}
	out, err = cli(t, nil, "version", "--json")
	var b buildInfo
	if err != nil || json.Unmarshal([]byte(out), &b) != nil || b.Version != version || b.Go == "" {
		t.Errorf("version --json: %v %q", err, out)
	}
}

func TestCheck(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// A dead upstream: a UDP port nothing answers on.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()

	base := func(extra ...string) []string {
		return append([]string{"check", "--dns-addr", freeAddr(t), "--http-addr", freeAddr(t)}, extra...)
	}
	tests := []struct {
		name string
		args []string
		fail string // the start of the FAIL line this case is about; "" = all ok
		// every FAIL line starts so: another process may hold the TCP
		// side of the taken UDP port too, which is a second true line
		only string
		code int // the exit status
	}{
		{"all fine", base("--docker-host", "none", "--upstream", "none"), "", "", 0},
		{"taken port", append([]string{"check", "--dns-addr", taken.LocalAddr().String(), "--http-addr", freeAddr(t)}, "--docker-host", "none", "--upstream", "none"),
			"FAIL --dns-addr " + taken.LocalAddr().String() + ": listen udp ", "FAIL --dns-addr ", 1},
		{"unreachable docker", base("--docker-host", "unix:///nonexistent/docker.sock", "--upstream", "none"), "FAIL docker: ", "", 1},
		{"dead upstream", base("--docker-host", "none", "--upstream", deadAddr), "FAIL upstream " + deadAddr + ": ", "", 1},
		{"bad flag", base("--address-mode", "sideways"), "FAIL flags: --address-mode", "", 2},
		{"unknown flag", base("--nope"), "FAIL flags: flag provided but not defined: -nope", "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cli(t, nil, tc.args...)
			var fails []string
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				switch {
				case strings.HasPrefix(l, "FAIL "):
					fails = append(fails, l)
				case !strings.HasPrefix(l, "ok   "):
					t.Errorf("line %q is neither ok nor FAIL\n%s", l, out)
				}
			}
			// The exit status alone tells the result: no line of its own.
			var said bytes.Buffer
			if code := exitCode(err, &said); code != tc.code || said.Len() > 0 {
				t.Errorf("exit status %d and %q, want %d and nothing (err %v)\n%s", code, said.String(), tc.code, err, out)
			}
			if tc.fail == "" {
				if len(fails) > 0 || !strings.Contains(out, "ok   --http-addr") {
					t.Errorf("check: %v\n%s", err, out)
				}
				return
			}
			only := tc.only
			if only == "" {
				only = tc.fail
			}
			found := false
			for _, l := range fails {
				found = found || strings.HasPrefix(l, tc.fail)
				if !strings.HasPrefix(l, only) {
					t.Errorf("FAIL line %q, want every one starting %q\n%s", l, only, out)
				}
			}
			if !found || len(fails) > 2 {
				t.Errorf("FAIL lines %q, want one starting %q\n%s", fails, tc.fail, out)
			}
		})
	}
	if out, err := cli(t, nil, "check", "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "-dns-addr") {
		t.Errorf("check -h: %v, want the usage\n%s", err, out)
	}
}

func TestServicesAndInstances(t *testing.T) {
	cat := catalog.New()
	ctr := testutil.Container("n1", strings.Repeat("a", 64), "books-1", "172.18.0.5/16")
	insts := []*catalog.Instance{testutil.Instance(ctr, "books-ms", 8080, func(i *catalog.Instance) { i.Tags = []string{"v1"} })}
	if _, err := cat.PutContainer(ctr, insts); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.RegisterInstance(testutil.APIInstance("web-1", "web", "10.0.0.9", 80)); err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := map[string]string{"SVCDNS_API": srv.URL}

	out, err := cli(t, env, "services")
	if err != nil || !strings.Contains(out, "SERVICE") || !regexpLine(out, `books-ms\s+1\s+1`) || !regexpLine(out, `web\s+1\s+1`) {
		t.Errorf("services: %v\n%s", err, out)
	}
	out, err = cli(t, nil, "instances", "books-ms", "--api", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil || !regexpLine(out, `books-1\s+n1\s+172\.18\.0\.5 \(net0\)\s+8080/tcp\s+-\s+v1\s+passing\s+docker\s+aaaaaaaaaaaa:8080/tcp`) {
		t.Errorf("instances books-ms: %v\n%s", err, out)
	}
	out, err = cli(t, env, "instances", "--json", "web")
	var got []httpapi.Instance
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || got[0].ID != "web-1" {
		t.Errorf("instances --json web: %v\n%s", err, out)
	}
	if _, err := cli(t, env, "instances"); err == nil {
		t.Error("instances without a name succeeded")
	}
	out, err = cli(t, map[string]string{"SVCDNS_API": freeAddr(t)}, "services")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the svcdns API") {
		t.Errorf("services with no svcdns: %v %s", err, out)
	}
}

// regexpLine reports whether a line of out matches re.
func regexpLine(out, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range strings.Split(out, "\n") {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}
