//go:build integration

package integration

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A svcdns cluster on the real engine: each node is a container of the
// FROM scratch svcdns image on a user-defined network of the test, with a
// fixed address there (a restarted or reconnected node keeps it, as a host
// keeps its address), watching only the containers labelled
// clusterLabel=<node>: three labels stand in for three Docker hosts.

const (
	clusterLabel = "svcdns-test-cluster" // clusterLabel=<node> marks a container of that node's "host"
	clusterToken = "svcdns-test-token"
	clusterPort  = "7946"
)

// clusterNet is a user-defined bridge network with a subnet of its own, so
// nodes can be given (and given back) fixed addresses.
type clusterNet struct {
	Name   string
	Subnet netip.Prefix
}

// newClusterNet creates the network. Docker picks a free subnet for a
// throw-away network first, which the test network then takes explicitly:
// only a network created with --subnet accepts --ip.
func newClusterNet(t testing.TB, name string) clusterNet {
	t.Helper()
	probe := createNetwork(t, name+"-probe")
	out := mustDocker(t, "network", "inspect", probe, "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}")
	mustDocker(t, "network", "rm", probe)
	var subnet netip.Prefix
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is4() && p.Bits() <= 24 {
			subnet = p.Masked()
			break
		}
	}
	if !subnet.IsValid() {
		t.Fatalf("network %s: no IPv4 subnet of /24 or more: %q", probe, out)
	}
	return clusterNet{Name: createNetwork(t, name, "--subnet", subnet.String()), Subnet: subnet}
}

// IP is the subnet's address number n (n ≥ 2: .1 is the gateway).
func (n clusterNet) IP(num int) string {
	a := n.Subnet.Addr().As4()
	a[3] = byte(num)
	return netip.AddrFrom4(a).String()
}

// clusterNode is one svcdns node of the test.
type clusterNode struct {
	Name string // --node, and the label value of its containers
	IP   string // on the cluster network
	Ctr  string // container name
	API  *svcdns
	args []string // the docker run arguments, for a restart after rm
}

// clusterKey is a fresh AES-256 key, base64, as --cluster-key takes it.
func clusterKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// nodeSpec says how to start one node.
type nodeSpec struct {
	Name  string   // --node
	Host  string   // the label value it watches; "" = Name
	IPNum int      // its address on the network: subnet .IPNum
	Key   string   // --cluster-key
	Join  []string // --join addresses
	Extra []string // more svcdns flags
	// AdvertiseIP is its --advertise-ip, the address its published ports
	// are answered at; "" = hostAddr(host), which nothing reaches.
	AdvertiseIP string
	// NoWait: return once the container runs, for a node that is to be
	// refused and exit.
	NoWait bool
}

// startNode runs one svcdns node container and waits until its DNS and API
// answer (it does not wait for the cluster to form).
func startNode(t testing.TB, cn clusterNet, spec nodeSpec) *clusterNode {
	t.Helper()
	host := spec.Host
	if host == "" {
		host = spec.Name
	}
	n := &clusterNode{Name: spec.Name, IP: cn.IP(spec.IPNum), Ctr: "cluster-" + host}
	flags := []string{
		"--node", spec.Name,
		"--docker-filter", "label=" + clusterLabel + "=" + host,
		"--dns-addr", ":53", "--http-addr", "0.0.0.0:8053", "--http-token", clusterToken,
		"--advertise-ip", cmp.Or(spec.AdvertiseIP, hostAddr(host)),
		"--upstream", "none", "--log-level", "debug",
		"--cluster-addr", "0.0.0.0:" + clusterPort, "--cluster-advertise", n.IP,
		"--cluster-key", spec.Key,
	}
	if len(spec.Join) > 0 {
		flags = append(flags, "--join", strings.Join(spec.Join, ","))
	}
	flags = append(flags, spec.Extra...)
	n.args = slices.Concat([]string{"--network", cn.Name, "--ip", n.IP,
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro", imgSvcdns}, flags)
	runContainer(t, n.Ctr, n.args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node %s log:\n%s", n.Name, n.Log())
		}
	})
	n.API = &svcdns{DNS: net.JoinHostPort(n.IP, "53"), HTTP: net.JoinHostPort(n.IP, "8053"), Token: clusterToken}
	if !spec.NoWait {
		n.waitUp(t)
	}
	return n
}

// hostAddr is the --advertise-ip of the "host" named host: a TEST-NET-1
// address of its own, so an answer shows whose published address it is.
func hostAddr(host string) string {
	sum := 0
	for _, c := range host {
		sum = sum*31 + int(c)
	}
	return fmt.Sprintf("192.0.2.%d", 10+sum%200)
}

// waitUp waits until the node answers DNS and its /healthz is 200 (it
// has listed its Docker host).
func (n *clusterNode) waitUp(t testing.TB) time.Duration {
	t.Helper()
	return eventually(t, 30*time.Second, "node "+n.Name+" answers DNS and /healthz 200", func() error {
		if !n.Running(t) {
			t.Fatalf("node %s exited:\n%s", n.Name, n.Log())
		}
		if _, err := ask(n.API.DNS, testZone, dns.TypeSOA); err != nil {
			return err
		}
		code, body, err := n.API.get("/healthz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("node %s /healthz: %d %.200s", n.Name, code, body)
		}
		return nil
	})
}

// Running reports whether the node's container runs.
func (n *clusterNode) Running(t testing.TB) bool {
	t.Helper()
	out, err := dockerCmd("inspect", "--format", "{{.State.Running}}", namePrefix+n.Ctr)
	return err == nil && out == "true"
}

// Log is the node container's whole log.
func (n *clusterNode) Log() string {
	return containerLog(namePrefix + n.Ctr)
}

// Addr is the node's gossip address, as --join takes it.
func (n *clusterNode) Addr() string { return net.JoinHostPort(n.IP, clusterPort) }

// startCluster starts nodes n1..n<count>, each joining the others, and
// waits until every node lists every other as alive.
func startCluster(t testing.TB, cn clusterNet, key string, count int) []*clusterNode {
	t.Helper()
	requireDocker(t)
	var nodes []*clusterNode
	for i := 1; i <= count; i++ {
		var join []string
		for j := 1; j <= count; j++ {
			if j != i {
				join = append(join, net.JoinHostPort(cn.IP(10+j), clusterPort))
			}
		}
		nodes = append(nodes, startNode(t, cn, nodeSpec{Name: fmt.Sprintf("n%d", i), IPNum: 10 + i, Key: key, Join: join}))
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	took := eventually(t, 30*time.Second, "every node lists every node alive", func() error {
		for _, n := range nodes {
			if err := n.aliveAre(names...); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("%d nodes formed a cluster %v after the last started", count, took.Round(time.Millisecond))
	return nodes
}

// apiNode is one entry of GET /v1/nodes.
type apiNode struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	State     string `json:"state"`
	Instances int    `json:"instances"`
}

// Nodes is the node's GET /v1/nodes.
func (n *clusterNode) Nodes() ([]apiNode, error) {
	code, body, err := n.API.get("/v1/nodes")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("node %s GET /v1/nodes: %d %.300s", n.Name, code, body)
	}
	var out []apiNode
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("node %s GET /v1/nodes: %v: %.300s", n.Name, err, body)
	}
	return out, nil
}

// aliveAre returns nil when the node lists exactly names as alive.
func (n *clusterNode) aliveAre(names ...string) error {
	nodes, err := n.Nodes()
	if err != nil {
		return err
	}
	var alive []string
	for _, m := range nodes {
		if m.State == "alive" {
			alive = append(alive, m.Name)
		}
	}
	return sameSet("node "+n.Name+" alive members", alive, names)
}

// Containers is the node's full GET /v1/containers listing, as decoded
// JSON objects, every field kept.
func (n *clusterNode) Containers() ([]map[string]any, error) {
	code, body, err := n.API.get("/v1/containers")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("node %s GET /v1/containers: %d %.300s", n.Name, code, body)
	}
	var out []map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("node %s GET /v1/containers: %v: %.300s", n.Name, err, body)
	}
	return out, nil
}

// ownersOf maps each container of a listing to its node, under the id its
// owner knows it by: a node stores a peer's container "<id>" as
// "<owner>/<id>" and a peer's API instance row "api/<id>" as
// "api/<owner>/<id>".
func ownersOf(list []map[string]any) map[string]string {
	out := map[string]string{}
	for _, c := range list {
		id, _ := c["id"].(string)
		node, _ := c["node"].(string)
		out[ownerID(id, node)] = node
	}
	return out
}

// ownerID is id as its owner node knows it.
func ownerID(id, node string) string {
	if rest, ok := strings.CutPrefix(id, "api/"+node+"/"); ok {
		return "api/" + rest
	}
	if rest, ok := strings.CutPrefix(id, node+"/"); ok {
		return rest
	}
	return id
}

// canonical is a listing with every id as its owner knows it and without
// the containers' Docker network addresses, so that the listings of two
// nodes compare equal when they hold the same. Network addresses stay on
// their own host by design (nothing elsewhere reaches a host's bridge), so
// only the owner lists them; every other field must be equal everywhere.
func canonical(list []map[string]any) ([]byte, error) {
	out := make([]map[string]any, len(list))
	for i, c := range list {
		cp := maps.Clone(c)
		id, _ := c["id"].(string)
		node, _ := c["node"].(string)
		cp["id"] = ownerID(id, node)
		delete(cp, "networks")
		out[i] = cp
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		return strings.Compare(fmt.Sprint(a["node"], a["id"]), fmt.Sprint(b["node"], b["id"]))
	})
	return json.Marshal(out)
}

// hostContainers is what each "host" runs: the running containers
// labelled clusterLabel=<host>, id → host.
func hostContainers(t testing.TB) map[string]string {
	t.Helper()
	out := mustDocker(t, "ps", "--no-trunc", "--filter", "label="+testLabel, "--filter", "label="+clusterLabel,
		"--format", `{{.ID}} {{.Label "`+clusterLabel+`"}}`)
	want := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			want[f[0]] = f[1]
		}
	}
	return want
}

// sameListings returns nil when every node's full container listing is
// the same, byte for byte once sorted, and holds exactly want (id → owner):
// nothing stale, nothing missing, nothing under the wrong owner.
func sameListings(nodes []*clusterNode, want map[string]string) error {
	var first []byte
	for i, n := range nodes {
		list, err := n.Containers()
		if err != nil {
			return err
		}
		got := ownersOf(list)
		var missing, stale []string
		for id, host := range want {
			if got[id] != host {
				missing = append(missing, fmt.Sprintf("%.12s@%s (has %q)", id, host, got[id]))
			}
		}
		for id, host := range got {
			if _, ok := want[id]; !ok {
				stale = append(stale, fmt.Sprintf("%.12s@%s", id, host))
			}
		}
		if len(missing)+len(stale) > 0 {
			return fmt.Errorf("node %s: missing %v, stale %v", n.Name, missing, stale)
		}
		b, err := canonical(list)
		if err != nil {
			return err
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			return fmt.Errorf("node %s's listing differs from node %s's:\n%s\n%s", n.Name, nodes[0].Name, b, first)
		}
	}
	return nil
}

// runOn starts a fakesvc container on host's "host" (labelled for it),
// publishing port 8080 on an ephemeral host port, and returns its id.
func runOn(t testing.TB, host, name string, args ...string) string {
	t.Helper()
	return runContainer(t, name, slices.Concat([]string{"--label", clusterLabel + "=" + host, "-p", "8080"}, args, []string{imgFakesvc})...)
}

// publishedPort is the host port Docker gave the container's 8080/tcp.
func publishedPort(t testing.TB, id string) uint16 {
	t.Helper()
	out := mustDocker(t, "port", id, "8080/tcp")
	for _, line := range strings.Split(out, "\n") {
		if _, port, err := net.SplitHostPort(strings.TrimSpace(line)); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil {
				return uint16(p)
			}
		}
	}
	t.Fatalf("container %s publishes no 8080/tcp: %q", id, out)
	return 0
}
