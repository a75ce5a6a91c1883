package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/cluster"
	"github.com/svcdns/svcdns/dnsserver"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   func(string) string
		check func(t *testing.T, c config)
	}{
		{"defaults", nil, env(), func(t *testing.T, c config) {
			if c.DNSAddr != ":53" || c.HTTPAddr != "127.0.0.1:8053" || c.Domain != "local." || c.TTL != 5 || c.NegativeTTL != 5 ||
				c.AddressMode != dnsserver.AddressAuto || c.MaxUDPSize != 1232 || c.MaxForwards != 1024 || c.RateLimit != 0 ||
				c.Resync != time.Minute || c.NoDocker || c.HTTPToken != "" || c.ProxyAddr != "" || c.ProxyConnect != 5*time.Second {
				t.Errorf("defaults: %+v", c)
			}
			if !c.Allow.DockerNetworks || !c.RecursionAllow.DockerNetworks {
				t.Errorf("docker networks not allowed by default: %v / %v", c.Allow, c.RecursionAllow)
			}
		}},
		{"env sets a flag", nil, env("SVCDNS_DOMAIN", "svc.internal", "SVCDNS_TTL", "30s", "SVCDNS_DOCKER_HOST", "none"), func(t *testing.T, c config) {
			if c.Domain != "svc.internal." || c.TTL != 30 || !c.NoDocker {
				t.Errorf("got domain %q ttl %d nodocker %v", c.Domain, c.TTL, c.NoDocker)
			}
		}},
		{"the command line beats the environment", []string{"--domain", "cli.test"}, env("SVCDNS_DOMAIN", "env.test"), func(t *testing.T, c config) {
			if c.Domain != "cli.test." {
				t.Errorf("domain %q, want cli.test.", c.Domain)
			}
		}},
		{"non-loopback API with a token", []string{"--http-addr", "0.0.0.0:8053"}, env("SVCDNS_HTTP_TOKEN", "t0k"), func(t *testing.T, c config) {
			if c.HTTPToken != "t0k" {
				t.Errorf("token %q", c.HTTPToken)
			}
		}},
		{"upstreams given", []string{"--upstream", "127.0.0.1:5300, [::1]:5301,192.0.2.1"}, env(), func(t *testing.T, c config) {
			if strings.Join(c.Upstreams, " ") != "127.0.0.1:5300 [::1]:5301 192.0.2.1" {
				t.Errorf("upstreams %q", c.Upstreams)
			}
		}},
		{"proxy", []string{"--proxy-addr", "0.0.0.0:8080", "--proxy-header-timeout", "2s"}, env("SVCDNS_PROXY_IDLE_TIMEOUT", "1m"), func(t *testing.T, c config) {
			if c.ProxyAddr != "0.0.0.0:8080" || c.ProxyHeader != 2*time.Second || c.ProxyIdle != time.Minute {
				t.Errorf("proxy %q header %v idle %v", c.ProxyAddr, c.ProxyHeader, c.ProxyIdle)
			}
		}},
		{"reverse zones", []string{"--reverse-zones", "10.1.2.0/24,fd00::/48"}, env(), func(t *testing.T, c config) {
			if len(c.ReverseZones) != 2 || c.ReverseZones[0].String() != "10.1.2.0/24" || c.ReverseZones[1].String() != "fd00::/48" {
				t.Errorf("reverse zones %v", c.ReverseZones)
			}
		}},
		{"cluster", []string{"--cluster-addr", "0.0.0.0:7946", "--join", "n2, 10.0.0.3:7000", "--cluster-advertise", "10.0.0.1"},
			env("SVCDNS_CLUSTER_KEY", "AAAAAAAAAAAAAAAAAAAAAA==,"+strings.Repeat("B", 43)+"="), func(t *testing.T, c config) {
				cc := c.Cluster
				if cc.Addr != "0.0.0.0:7946" || cc.Advertise != "10.0.0.1" || strings.Join(cc.Join, "|") != "n2|10.0.0.3:7000" ||
					len(cc.Keys) != 2 || len(cc.Keys[0]) != 16 || len(cc.Keys[1]) != 32 || cc.MaxInstances != 10000 {
					t.Errorf("cluster %+v", cc)
				}
				if cc.Timing.ProbeInterval != time.Second || cc.Timing.SuspicionMult != cluster.DefaultSuspicionMult {
					t.Errorf("cluster timing %+v, want the defaults", cc.Timing)
				}
			}},
		{"cluster failure detection", []string{"--cluster-addr", "127.0.0.1:7946", "--cluster-probe-interval", "500ms"},
			env("SVCDNS_CLUSTER_SUSPICION_MULT", "2"), func(t *testing.T, c config) {
				if tm := c.Cluster.Timing; tm.ProbeInterval != 500*time.Millisecond || tm.SuspicionMult != 2 {
					t.Errorf("cluster timing %+v", tm)
				}
			}},
		{"cluster on loopback needs no key", []string{"--cluster-addr", "127.0.0.1:7946"}, env(), func(t *testing.T, c config) {
			if c.Cluster.Addr != "127.0.0.1:7946" || c.Cluster.Keys != nil {
				t.Errorf("cluster %+v", c.Cluster)
			}
		}},
		{"filters", []string{"--docker-filter", "label=env=prod, label=team"}, env(), func(t *testing.T, c config) {
			if strings.Join(c.DockerFilters, "|") != "label=env=prod|label=team" {
				t.Errorf("filters %q", c.DockerFilters)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(append([]string{"--upstream", "none"}, tc.args...), tc.env, io.Discard)
			if tc.name == "upstreams given" {
				c, err = parseConfig(tc.args, tc.env, io.Discard)
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  func(string) string
		want string // in the message
	}{
		{[]string{"--http-addr", "0.0.0.0:8053"}, env(), "set --http-token"},
		{[]string{"--http-addr", "10.1.2.3:8053"}, env(), "not a loopback address"},
		{[]string{"--dns-addr", "5353"}, env(), "--dns-addr"},
		{[]string{"--dns-addr", "example.com:53"}, env(), "not an IP address"},
		{[]string{"--domain", "bad_zone"}, env(), "--domain"},
		{[]string{"--allow", ""}, env(), "--allow"},
		{[]string{"--allow", "10.0.0.0/33"}, env(), "--allow"},
		{[]string{"--recursion-allow", "everyone"}, env(), "--recursion-allow"},
		{[]string{"--ttl", "-1"}, env(), "--ttl"},
		{[]string{"--ttl", "1.5s"}, env(), "whole seconds"},
		{[]string{"--address-mode", "bridge"}, env(), "auto, container or host"},
		{[]string{"--advertise-ip", "0.0.0.0"}, env(), "--advertise-ip"},
		{[]string{"--docker-host", "none", "--docker-filter", "label=a"}, env(), "no Docker to filter"},
		{[]string{"--resync", "10ms"}, env(), "--resync"},
		{[]string{"--max-udp-size", "100"}, env(), "--max-udp-size"},
		{[]string{"--max-forwards", "0"}, env(), "--max-forwards"},
		{[]string{"--rate-limit", "-5"}, env(), "--rate-limit"},
		{[]string{"--reverse-zones", "10.1.0.0"}, env(), "--reverse-zones"},
		{[]string{"--log-level", "loud"}, env(), "--log-level"},
		{[]string{"--log-format", "xml"}, env(), "--log-format"},
		{[]string{"--upstream", "dns.example.com"}, env(), "host names"},
		{[]string{"--upstream", ","}, env(), "empty list"},
		{[]string{"--dns-addr", "127.0.0.1:5353", "--upstream", "127.0.0.1:5353"}, env(), "forward to itself"},
		{[]string{"--dns-addr", "127.0.0.1:53", "--upstream", "127.0.0.1"}, env(), "forward to itself"},
		{[]string{"--proxy-addr", "8080"}, env(), "--proxy-addr"},
		{[]string{"--proxy-connect-timeout", "0s"}, env(), "--proxy-connect-timeout"},
		{[]string{"--cluster-addr", "0.0.0.0:7946"}, env(), "set --cluster-key"},
		{[]string{"--cluster-addr", "10.0.0.1:7946"}, env("SVCDNS_CLUSTER_KEY", "c2hvcnQ="), "has 5 bytes"},
		{[]string{"--cluster-addr", "10.0.0.1:7946", "--cluster-key", "not base64!"}, env(), "not base64"},
		{[]string{"--join", "10.0.0.2"}, env(), "without --cluster-addr"},
		{[]string{"--cluster-addr", "7946"}, env(), "--cluster-addr"},
		{[]string{"--cluster-addr", "127.0.0.1:7946", "--cluster-max-instances", "0"}, env(), "--cluster-max-instances"},
		{[]string{"--cluster-addr", "127.0.0.1:7946", "--cluster-probe-interval", "10ms"}, env(), "--cluster-probe-interval"},
		{[]string{"--cluster-addr", "127.0.0.1:7946", "--cluster-probe-interval", "2m"}, env(), "--cluster-probe-interval"},
		{[]string{"--cluster-addr", "127.0.0.1:7946", "--cluster-suspicion-mult", "0"}, env(), "--cluster-suspicion-mult"},
		{[]string{"--cluster-addr", "127.0.0.1:7946"}, env("SVCDNS_CLUSTER_SUSPICION_MULT", "21"), "SVCDNS_CLUSTER_SUSPICION_MULT"},
		{[]string{"stray"}, env(), "unexpected argument"},
		{[]string{"--no-such-flag"}, env(), "no-such-flag"},
		{nil, env("SVCDNS_TTL", "soon"), "SVCDNS_TTL"},
		{nil, env("SVCDNS_RESYNC", "often"), "SVCDNS_RESYNC"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseConfig(tc.args, tc.env, io.Discard)
			if err == nil {
				t.Fatalf("accepted, want an error mentioning %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 127.0.0.77\nnameserver 192.0.2.53\n")
	c, err := parseConfig([]string{"--resolv-conf", path, "--dns-addr", "127.0.0.77:53"}, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Upstreams, ",") != "192.0.2.53:53" {
		t.Errorf("upstreams %q: want the resolver that is not svcdns itself", c.Upstreams)
	}
	write("nameserver 127.0.0.77\n")
	c, err = parseConfig([]string{"--resolv-conf", path, "--dns-addr", "127.0.0.77:53"}, env(), io.Discard)
	if err != nil || len(c.Upstreams) != 0 || !strings.Contains(c.UpstreamSource, "no nameserver") {
		t.Errorf("only itself listed: upstreams %q source %q err %v, want forwarding off and why", c.Upstreams, c.UpstreamSource, err)
	}
	c, err = parseConfig([]string{"--resolv-conf", filepath.Join(dir, "missing")}, env(), io.Discard)
	if err != nil || len(c.Upstreams) != 0 {
		t.Errorf("missing file: %q %v, want forwarding off, not a failure", c.Upstreams, err)
	}
}

func TestExitCodes(t *testing.T) {
	var buf bytes.Buffer
	if code := exitCode(nil, &buf); code != 0 || buf.Len() != 0 {
		t.Errorf("clean stop: %d %q", code, buf.String())
	}
	_, err := parseConfig([]string{"--ttl", "x"}, env(), io.Discard)
	if code := exitCode(&usageError{err}, &buf); code != 2 || !strings.HasPrefix(buf.String(), "svcdns: --ttl") {
		t.Errorf("bad flag: %d %q", code, buf.String())
	}
	buf.Reset()
	if code := exitCode(io.ErrUnexpectedEOF, &buf); code != 1 || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("failure: %d %q, want 1 and one line", code, buf.String())
	}
}
