package watcher

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/svcdns/svcdns/catalog"
)

var testAdvertise = netip.MustParseAddr("192.0.2.10")

const testNode = "node-1"

// fixture reads testdata/<name>.json, the output of `docker inspect` on the
// Docker 20.10 engine this project runs on.
func fixture(t testing.TB, name string) container.InspectResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []container.InspectResponse
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(list) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(list))
	}
	return list[0]
}

// render prints a conversion as the lines a test compares.
func render(c conversion) string {
	if c.Skip != "" {
		return "skip: " + c.Skip
	}
	ctr := c.Record.Container
	var b strings.Builder
	fmt.Fprintf(&b, "container %q passing=%t host=%s addrs=%s", ctr.Name, ctr.Passing, addrStr(ctr.HostIP), addrsStr(ctr.Addrs))
	for _, i := range c.Record.Instances {
		fmt.Fprintf(&b, "\n%d/%s %s tags=%s portname=%s host=%s:%d", i.Port, i.Protocol, i.Service,
			strings.Join(i.Tags, ","), i.PortName, addrStr(i.HostIP), i.HostPort)
	}
	return b.String()
}

func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func addrsStr(list []catalog.NetAddr) string {
	var s []string
	for _, a := range list {
		s = append(s, a.Network+"/"+a.Prefix.String())
	}
	return strings.Join(s, ",")
}

func reasons(ps []problem) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Reason)
	}
	return strings.Join(s, ",")
}

func withLabels(kv ...string) func(*container.InspectResponse) {
	return func(c *container.InspectResponse) {
		if c.Config.Labels == nil {
			c.Config.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Config.Labels[kv[i]] = kv[i+1]
		}
	}
}

func withEnv(env ...string) func(*container.InspectResponse) {
	return func(c *container.InspectResponse) { c.Config.Env = append(c.Config.Env, env...) }
}

func withoutPorts(c *container.InspectResponse) {
	c.Config.ExposedPorts = nil
	c.NetworkSettings.Ports = nil
}

const fixtureImage = "svcdns-test-watcher-fixture"

func TestConvertFixtures(t *testing.T) {
	tests := []struct {
		name     string
		fixture  string
		mutate   []func(*container.InspectResponse)
		noAdv    bool
		want     string
		problems string // reasons, in order
	}{
		{name: "default bridge, exposed not published", fixture: "bridge",
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "published on 0.0.0.0 and :: answers the advertise address", fixture: "published",
			want: `container "svcdns-test-published" passing=true host=192.0.2.10 addrs=bridge/172.17.0.3/16
8080/tcp ` + fixtureImage + ` tags= portname= host=192.0.2.10:32768`},
		{name: "published on 0.0.0.0 without an advertise address is unpublished", fixture: "published", noAdv: true,
			want: `container "svcdns-test-published" passing=true host=- addrs=bridge/172.17.0.3/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "multi-port: per-port name, 127.0.0.1 binding, udp ignored, sctp skipped, port name, tags lower-cased", fixture: "multiport",
			want: `container "svcdns-test-multiport" passing=true host=192.0.2.10 addrs=bridge/172.17.0.4/16
8080/tcp books-ms tags=primary,v1 portname=http host=192.0.2.10:8080
9090/tcp books-admin tags=primary,v1 portname= host=127.0.0.1:9090`},
		{name: "user network, env name, label tags beat env tags", fixture: "usernet",
			want: `container "svcdns-test-usernet" passing=true host=- addrs=svcdns-test-wnet1/172.18.0.2/16
8080/tcp env-name tags=fromlabel portname= host=-:0`},
		{name: "two networks sorted by name, compose service name", fixture: "twonets",
			want: `container "svcdns-test-twonets" passing=true host=- addrs=bridge/172.17.0.5/16,svcdns-test-wnet1/172.18.0.3/16
8080/tcp web tags= portname= host=-:0`},
		{name: "dual stack network", fixture: "ipv6",
			want: `container "svcdns-test-ipv6" passing=true host=- addrs=svcdns-test-wnet6/172.31.250.2/24,svcdns-test-wnet6/fd12:3456:789a:1::2/64
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "host network answers the advertise address and the container port", fixture: "host",
			want: `container "svcdns-test-host" passing=true host=192.0.2.10 addrs=
8080/tcp hostsvc tags= portname= host=192.0.2.10:8080`},
		{name: "host network without an advertise address", fixture: "host", noAdv: true,
			want: "skip: host network and no advertise address"},
		{name: "network none", fixture: "none", want: "skip: no address on any network"},
		{name: "exited", fixture: "exited", want: "skip: not running"},
		{name: "healthy", fixture: "healthy",
			want: `container "svcdns-test-healthy" passing=true host=- addrs=bridge/172.17.0.6/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "unhealthy is kept, not passing", fixture: "unhealthy",
			want: `container "svcdns-test-unhealthy" passing=false host=- addrs=bridge/172.17.0.7/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "health starting is not passing", fixture: "starting",
			want: `container "svcdns-test-starting" passing=false host=- addrs=bridge/172.17.0.8/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "paused is kept, not passing", fixture: "paused",
			want: `container "svcdns-test-paused" passing=false host=- addrs=bridge/172.17.0.9/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "restarting is not passing", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) { c.State.Restarting = true }},
			want: `container "svcdns-test-bridge" passing=false host=- addrs=bridge/172.17.0.2/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "SERVICE_IGNORE in env", fixture: "ignored", want: "skip: env SERVICE_IGNORE is set"},
		{name: "SERVICE_IGNORE=false does not ignore", fixture: "bridge", mutate: []func(*container.InspectResponse){withLabels("SERVICE_IGNORE", "false")},
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "SERVICE_<port>_IGNORE leaves the port out, the container row stays", fixture: "bridge",
			mutate: []func(*container.InspectResponse){withLabels("SERVICE_8080_IGNORE", "yes")},
			want:   `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16`},
		{name: "dotted container name and dotted service name", fixture: "bad_name", problems: "dotted,dotted",
			want: `container "" passing=true host=- addrs=bridge/172.17.0.11/16`},
		{name: "underscores in a container name become hyphens", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) { c.Name = "/Quirky_Einstein" }},
			want: `container "quirky-einstein" passing=true host=- addrs=bridge/172.17.0.2/16
8080/tcp svcdns-test-watcher-fixture tags= portname= host=-:0`},
		{name: "SERVICE_<port>_NAME beats SERVICE_NAME beats compose beats image", fixture: "twonets",
			mutate: []func(*container.InspectResponse){withLabels("SERVICE_8080_NAME", "Port-Name", "SERVICE_NAME", "general")},
			want: `container "svcdns-test-twonets" passing=true host=- addrs=bridge/172.17.0.5/16,svcdns-test-wnet1/172.18.0.3/16
8080/tcp port-name tags= portname= host=-:0`},
		{name: "SERVICE_NAME beats compose", fixture: "twonets",
			mutate: []func(*container.InspectResponse){withEnv("SERVICE_NAME=from-env")},
			want: `container "svcdns-test-twonets" passing=true host=- addrs=bridge/172.17.0.5/16,svcdns-test-wnet1/172.18.0.3/16
8080/tcp from-env tags= portname= host=-:0`},
		{name: "a label beats the env of the same key", fixture: "usernet",
			mutate: []func(*container.InspectResponse){withLabels("SERVICE_NAME", "from-label")},
			want: `container "svcdns-test-usernet" passing=true host=- addrs=svcdns-test-wnet1/172.18.0.2/16
8080/tcp from-label tags=fromlabel portname= host=-:0`},
		{name: "SERVICE_<port>_TAGS replaces SERVICE_TAGS; bad tags dropped", fixture: "bridge",
			mutate:   []func(*container.InspectResponse){withLabels("SERVICE_TAGS", "a", "SERVICE_8080_TAGS", " Blue ,,blue,green_x,v1.2,service,")},
			problems: "invalid,dotted,reserved",
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16
8080/tcp ` + fixtureImage + ` tags=blue portname= host=-:0`},
		{name: "a numeric port name is refused", fixture: "bridge",
			mutate: []func(*container.InspectResponse){withLabels("SERVICE_8080_PORT_NAME", "443")}, problems: "invalid",
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "no exposed port gives one portless instance", fixture: "bridge",
			mutate: []func(*container.InspectResponse){withoutPorts, withLabels("SERVICE_NAME", "worker")},
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16
0/tcp worker tags= portname= host=-:0`},
		{name: "image given as an ID has no name", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) { c.Config.Image = c.Image }}, problems: "no_name",
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16`},
		{name: "image given as a short ID has no name", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) {
				c.Config.Image = strings.TrimPrefix(c.Image, "sha256:")[:12]
			}}, problems: "no_name",
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/16`},
		{name: "a zero prefix length becomes a host route", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) { c.NetworkSettings.Networks["bridge"].IPPrefixLen = 0 }},
			want: `container "svcdns-test-bridge" passing=true host=- addrs=bridge/172.17.0.2/32
8080/tcp ` + fixtureImage + ` tags= portname= host=-:0`},
		{name: "the legacy top-level address is never read", fixture: "bridge",
			mutate: []func(*container.InspectResponse){func(c *container.InspectResponse) {
				c.NetworkSettings.Networks = nil
			}},
			want: "skip: no address on any network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixture(t, tt.fixture)
			for _, m := range tt.mutate {
				m(&c)
			}
			opt := convertOptions{Node: testNode, AdvertiseIP: testAdvertise}
			if tt.noAdv {
				opt.AdvertiseIP = netip.Addr{}
			}
			got := convert(c, opt)
			if r := render(got); r != tt.want {
				t.Errorf("got\n%s\nwant\n%s", r, tt.want)
			}
			if r := reasons(got.Problems); r != tt.problems {
				t.Errorf("problems %q, want %q: %+v", r, tt.problems, got.Problems)
			}
			checkRecord(t, got)
		})
	}
}

// The SRV target is the container's name, else the short id docker ps
// shows: the watcher decides it, dnsserver only reads it.
func TestConvertTarget(t *testing.T) {
	for _, tt := range []struct {
		fixture, name string
		short         bool
	}{
		{fixture: "bridge", name: "/svcdns-test-bridge"},
		{fixture: "bridge", name: "/Quirky_Einstein"},
		{fixture: "bad_name", short: true},
		{fixture: "bridge", name: "/" + strings.Repeat("a", 64), short: true},
	} {
		c := fixture(t, tt.fixture)
		if tt.name != "" {
			c.Name = tt.name
		}
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		want := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(c.Name, "/"), "_", "-"))
		if tt.short {
			want = c.ID[:12]
		}
		if got.Record.Container.Target != want {
			t.Errorf("%s named %q: target %q, want %q", tt.fixture, c.Name, got.Record.Container.Target, want)
		}
	}
}

// checkRecord asserts what every record must satisfy: the catalog accepts
// it, and its instances carry the container's identity and addresses.
func checkRecord(t testing.TB, c conversion) {
	t.Helper()
	if c.Skip != "" {
		if c.Record.Container != nil || len(c.Record.Instances) > 0 {
			t.Fatalf("skipped (%s) but has a record", c.Skip)
		}
		return
	}
	ctr := c.Record.Container
	if ctr.Source != catalog.SourceDocker || ctr.Node != testNode {
		t.Fatalf("container owner %s/%s", ctr.Source, ctr.Node)
	}
	if len(c.Record.Instances) > maxPorts {
		t.Fatalf("%d instances, at most %d", len(c.Record.Instances), maxPorts)
	}
	names := map[string]bool{}
	for _, i := range c.Record.Instances {
		if want := ctr.ID + ":" + strconv.Itoa(int(i.Port)) + "/" + i.Protocol; i.ID != want {
			t.Fatalf("instance id %q, want %q", i.ID, want)
		}
		if i.ContainerID != ctr.ID || i.ContainerName != ctr.Name || i.Target != ctr.Target || i.Passing != ctr.Passing || addrsStr(i.Addrs) != addrsStr(ctr.Addrs) {
			t.Fatalf("instance %s does not match its container", i.ID)
		}
		if !catalog.ValidLabel(i.Service) {
			t.Fatalf("service %q is not a label", i.Service)
		}
		names[i.Service] = true
	}
	if len(names) > maxNames {
		t.Fatalf("%d service names, at most %d", len(names), maxNames)
	}
	if len(c.Problems) > maxProblems+1 {
		t.Fatalf("%d problems reported, at most %d", len(c.Problems), maxProblems+1)
	}
	cat := catalog.New()
	if _, err := cat.PutContainer(ctr, c.Record.Instances); err != nil {
		t.Fatalf("catalog refuses the record: %v", err)
	}
}

// TestConvertHostileNames puts the names of issue 4 in SERVICE_NAME: each is
// refused with a reason, and the container's own name still works.
func TestConvertHostileNames(t *testing.T) {
	tests := []struct {
		value  string
		reason string // "" = accepted
		want   string // the accepted name
	}{
		{value: "Books-MS", want: "books-ms"},
		{value: "a1", want: "a1"},
		{value: "service", reason: reasonReserved},
		{value: "container", reason: reasonReserved},
		{value: "*", reason: reasonInvalid},
		{value: "", reason: reasonEmpty},
		{value: "..", reason: reasonDotted},
		{value: "local.", reason: reasonDotted},
		{value: "service.local", reason: reasonDotted},
		{value: "v1.books-ms", reason: reasonDotted},
		{value: "-books", reason: reasonInvalid},
		{value: "books-", reason: reasonInvalid},
		{value: "books_ms", reason: reasonInvalid},
		{value: "_tcp", reason: reasonInvalid},
		{value: "books ms", reason: reasonInvalid},
		{value: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		{value: strings.Repeat("a", 64), reason: reasonTooLong},
		{value: strings.Repeat("a.", 127), reason: reasonTooLong}, // 254 bytes
		{value: "bad\x00name", reason: reasonInvalid},
		{value: "b\u00fccher", reason: reasonInvalid},
		{value: "\u212Aube", reason: reasonInvalid}, // Kelvin sign: strings.ToLower makes it "k"
		{value: "books\u200bms", reason: reasonInvalid},
		{value: strings.Repeat("x", 1<<20), reason: reasonTooLong},
	}
	for _, tt := range tests {
		name := tt.value
		if len(name) > 20 {
			name = fmt.Sprintf("%s…(%d bytes)", name[:10], len(tt.value))
		}
		t.Run(strconv.Quote(name), func(t *testing.T) {
			c := fixture(t, "bridge")
			withLabels("SERVICE_NAME", tt.value)(&c)
			got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
			checkRecord(t, got)
			if got.Record.Container == nil || got.Record.Container.Name != "svcdns-test-bridge" {
				t.Fatalf("container row lost: %s", render(got))
			}
			if tt.reason == "" {
				if len(got.Record.Instances) != 1 || got.Record.Instances[0].Service != tt.want || len(got.Problems) != 0 {
					t.Fatalf("got %s, problems %v; want service %q", render(got), got.Problems, tt.want)
				}
				return
			}
			if len(got.Record.Instances) != 0 {
				t.Fatalf("instance kept: %s", render(got))
			}
			if len(got.Problems) != 1 || got.Problems[0].Reason != tt.reason {
				t.Fatalf("problems %+v, want one %q", got.Problems, tt.reason)
			}
			if d := got.Problems[0].Detail; len(d) > 400 || !strings.Contains(d, "SERVICE_NAME") {
				t.Fatalf("detail does not name the key or is too long (%d bytes): %.200s", len(d), d)
			}
		})
	}
}

// TestConvertBounds: a container cannot make svcdns store or log without
// limit.
func TestConvertBounds(t *testing.T) {
	t.Run("1000 ports each with its own name", func(t *testing.T) {
		c := fixture(t, "bridge")
		c.Config.ExposedPorts = nat.PortSet{}
		for i := 1; i <= 1000; i++ {
			c.Config.ExposedPorts[nat.Port(fmt.Sprintf("%d/tcp", i))] = struct{}{}
			c.Config.Env = append(c.Config.Env, fmt.Sprintf("SERVICE_%d_NAME=svc-%d", i, i))
		}
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		checkRecord(t, got)
		if n := len(got.Record.Instances); n != maxNames {
			t.Fatalf("%d instances, want %d (one per distinct name up to the bound)", n, maxNames)
		}
		if !strings.Contains(reasons(got.Problems), reasonTooMany) {
			t.Fatalf("bound not reported: %v", got.Problems)
		}
	})
	t.Run("1000 ports of one service", func(t *testing.T) {
		c := fixture(t, "bridge")
		c.Config.ExposedPorts = nat.PortSet{}
		for i := 1; i <= 1000; i++ {
			c.Config.ExposedPorts[nat.Port(fmt.Sprintf("%d/udp", i))] = struct{}{}
		}
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		checkRecord(t, got)
		if n := len(got.Record.Instances); n != maxPorts {
			t.Fatalf("%d instances, want %d", n, maxPorts)
		}
		if got.Record.Instances[0].Port != 1 || got.Record.Instances[maxPorts-1].Port != maxPorts {
			t.Fatalf("not the lowest ports kept")
		}
		if reasons(got.Problems) != reasonTooMany {
			t.Fatalf("problems %v", got.Problems)
		}
	})
	t.Run("1000 env names and a 1 MiB label value", func(t *testing.T) {
		c := fixture(t, "bridge")
		for i := range 1000 {
			c.Config.Env = append(c.Config.Env, fmt.Sprintf("SERVICE_%d_NAME=Bad_%d", 8080+i%3, i), fmt.Sprintf("OTHER_%d=%s", i, strings.Repeat("v", 100)))
		}
		withLabels("SERVICE_TAGS", strings.Repeat("t,", 1<<19), "SERVICE_8080_PORT_NAME", strings.Repeat("p", 1<<20))(&c)
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		checkRecord(t, got)
		// The last SERVICE_8080_NAME wins as in a shell, and it is invalid.
		if len(got.Record.Instances) != 0 || reasons(got.Problems) != reasonInvalid {
			t.Fatalf("got %s, problems %v", render(got), got.Problems)
		}
	})
	t.Run("33 tags", func(t *testing.T) {
		c := fixture(t, "bridge")
		var tags []string
		for i := range 40 {
			tags = append(tags, fmt.Sprintf("t%d", i))
		}
		withLabels("SERVICE_TAGS", strings.Join(tags, ","))(&c)
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		checkRecord(t, got)
		if n := len(got.Record.Instances[0].Tags); n != maxTags {
			t.Fatalf("%d tags, want %d", n, maxTags)
		}
	})
	t.Run("a 1 MiB tag list is read no further than 253 bytes", func(t *testing.T) {
		c := fixture(t, "bridge")
		withLabels("SERVICE_TAGS", "ok,"+strings.Repeat("t", 1<<20))(&c)
		got := convert(c, convertOptions{Node: testNode, AdvertiseIP: testAdvertise})
		checkRecord(t, got)
		if len(got.Record.Instances[0].Tags) != 0 || reasons(got.Problems) != reasonTooLong {
			t.Fatalf("got %s, problems %v", render(got), got.Problems)
		}
	})
}

func TestImageBaseName(t *testing.T) {
	const id = "sha256:0b2ea2a50bdad3ab583035a7f40859f29155fad2c4a8e0d5283b1520bef3c982"
	tests := []struct {
		ref  string
		want string // "" = no name
	}{
		{"vfarcic/books-ms:1.2", "books-ms"},
		{"books-ms", "books-ms"},
		{"registry:5000/a/b@sha256:" + strings.Repeat("a", 64), "b"},
		{"registry:5000/a/b:tag@sha256:" + strings.Repeat("a", 64), "b"},
		{"localhost:5000/app", "app"},
		{"nginx:latest", "nginx"},
		{id, ""},
		{strings.TrimPrefix(id, "sha256:"), ""},
		{"0b2ea2a50bda", ""},
		{"abcdef", "abcdef"}, // hex, but not this image's ID
		{"", ""},
		{"repo/", ""},
	}
	for _, tt := range tests {
		got, ok := imageBaseName(tt.ref, id)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("imageBaseName(%q) = %q, %t; want %q", tt.ref, got, ok, tt.want)
		}
	}
}

func TestParseFilters(t *testing.T) {
	good, err := parseFilters([]string{"label=env=prod", " label=com.example.svc ", "", "label=k=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(good); got != "[env=prod com.example.svc k=a=b]" {
		t.Fatalf("parsed %s", got)
	}
	labels := map[string]string{"env": "prod", "com.example.svc": "", "k": "a=b"}
	if !matchLabels(good, labels) {
		t.Fatal("matching labels refused")
	}
	delete(labels, "com.example.svc")
	if matchLabels(good, labels) {
		t.Fatal("missing key accepted")
	}
	for _, bad := range []string{"name=web", "label=", "label", "label==x", "status=running"} {
		if _, err := parseFilters([]string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}

// BenchmarkConvert: the cost of mapping one inspected container (the
// multi-port fixture) to its record, per event.
func BenchmarkConvert(b *testing.B) {
	c := fixture(b, "multiport")
	opt := convertOptions{Node: testNode, AdvertiseIP: testAdvertise}
	b.ReportAllocs()
	for b.Loop() {
		if conv := convert(c, opt); conv.Skip != "" {
			b.Fatal(conv.Skip)
		}
	}
}
