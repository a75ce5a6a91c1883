//go:build integration

package integration

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Issue 10, "How it is checked": three svcdns nodes share one catalog over
// memberlist. Each node is a container of the svcdns image on a network of
// the test (helpers in cluster_helpers_test.go); the test process asks each
// node's DNS and API at its address there.

// The times the README's "Many hosts" section states, with svcdns's default
// timings (memberlist's LAN settings, SuspicionMult 3): a killed node is
// declared dead, and its instances leave the others' answers, after a
// failed probe (1-1.5 s) and 3 s of suspicion with three nodes, plus a
// gossip round (4.2-4.8 s measured; 4.2-8.0 s at 10 nodes); the test
// allows 12 s, for a loaded machine. After a network cut heals, the nodes
// rejoin each other every 10 s and then exchange full states: the
// listings are equal again within convergence.
const (
	failureDetection = 12 * time.Second
	convergence      = 15 * time.Second
)

// svcName is the service name of the containers of a test, on every node.
func svcName(name string) string { return name + ".service." + testZone }

// srvTargets asks name's SRV on server and returns target → port.
func srvTargets(server, name string) (map[string]uint16, error) {
	m, err := ask(server, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	if m.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s SRV: %s", name, dns.RcodeToString[m.Rcode])
	}
	out := map[string]uint16{}
	for _, rr := range m.Answer {
		if r, ok := rr.(*dns.SRV); ok {
			out[strings.ToLower(r.Target)] = r.Port
		}
	}
	return out, nil
}

// publishedIs returns nil when server answers name's A with exactly addr
// and its SRV with one record on port whose target resolves to addr.
func publishedIs(server, name, addr string, port uint16) error {
	a, err := answerA(server, name)
	if err != nil {
		return err
	}
	if err := sameSet(name+" A @"+server, a, []string{addr}); err != nil {
		return err
	}
	srv, err := srvTargets(server, name)
	if err != nil {
		return err
	}
	if len(srv) != 1 {
		return fmt.Errorf("%s SRV @%s: %v, want one record", name, server, srv)
	}
	for target, p := range srv {
		if p != port {
			return fmt.Errorf("%s SRV @%s: port %d, want %d", name, server, p, port)
		}
		ta, err := answerA(server, target)
		if err != nil {
			return err
		}
		if err := sameSet("SRV target "+target+" A @"+server, ta, []string{addr}); err != nil {
			return err
		}
	}
	return nil
}

// answerA asks name's A on server: NXDOMAIN gives an empty list, any
// other failure an error.
func answerA(server, name string) ([]string, error) {
	m, err := ask(server, name, dns.TypeA)
	if err != nil {
		return nil, err
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
		return aRecords(m), nil
	case dns.RcodeNameError:
		return nil, nil
	}
	return nil, fmt.Errorf("%s A: rcode %s", name, dns.RcodeToString[m.Rcode])
}

// gone returns nil when name is NXDOMAIN on server.
func gone(server, name string) error { return rcodeIs(server, name, dns.TypeA, dns.RcodeNameError) }

// A container started on node 1's host is answered by nodes 2 and 3 with
// its published address (node 1's host) and port, and is a Prometheus
// target there (its SERVICE_METRICS_PORT travels); node names answer; the
// same API instance id on two nodes gives two SRV targets, each resolving
// to its own instance on every node.
func TestClusterAnswersPeers(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-peers")
	nodes := startCluster(t, cn, clusterKey(t), 3)
	n1 := nodes[0]

	id := runOn(t, n1.Name, "peers-web", "--label", "SERVICE_NAME=peers-web", "--label", "SERVICE_METRICS_PORT=8080")
	began := time.Now()
	p := publishedPort(t, id)
	for _, n := range nodes {
		eventually(t, 10*time.Second, "node "+n.Name+" answers node 1's container", func() error {
			return publishedIs(n.API.DNS, svcName("peers-web"), hostAddr(n1.Name), p)
		})
		t.Logf("node %s answers node 1's container %v after docker run returned", n.Name, time.Since(began).Round(time.Millisecond))
	}
	for _, n := range nodes[1:] {
		res := runDig(t, "dig", n.API.DNS, svcName("peers-web"), "SRV", "+norec")
		if res.Status != "NOERROR" || !res.Has("aa") || len(res.Answer) != 1 || len(res.Additional) == 0 {
			t.Errorf("dig @%s %s SRV: want one authoritative SRV with its address:\n%s", n.Name, svcName("peers-web"), res.Out)
		}
		// The default --prometheus-sd labels: the opted-in container of
		// node 1 is scraped at its published metrics port.
		want := []string{fmt.Sprintf("%s %s published %s", net.JoinHostPort(hostAddr(n1.Name), strconv.Itoa(int(p))), namePrefix+"peers-web", n1.Name)}
		eventually(t, 10*time.Second, "node "+n.Name+" lists node 1's container in /v1/prometheus", func() error {
			groups, err := n.API.prometheusSD()
			if err != nil {
				return err
			}
			var got []string
			for _, g := range groups {
				l := g.Labels
				got = append(got, fmt.Sprintf("%s %s %s %s", strings.Join(g.Targets, ","), l["__meta_svcdns_container"], l["__meta_svcdns_address_kind"], l["__meta_svcdns_node"]))
			}
			return sameSet("node "+n.Name+" scrape targets", got, want)
		})
	}

	// <node>.node.<zone> gives each node's address, on every node.
	for _, n := range nodes {
		for _, m := range nodes {
			a, err := answerA(n.API.DNS, m.Name+".node."+testZone)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) == 0 {
				t.Errorf("node %s: %s.node.%s has no A", n.Name, m.Name, testZone)
			}
		}
	}

	// Container names are unique per host only: the same id registered on
	// two nodes is two instances with two SRV targets, each resolving to
	// its own address everywhere.
	n1.API.register(t, "dup-1", apiInstance{Service: "dup", Address: "10.99.0.1", Port: 1001})
	nodes[1].API.register(t, "dup-1", apiInstance{Service: "dup", Address: "10.99.0.2", Port: 1002})
	for _, n := range nodes {
		eventually(t, 10*time.Second, "node "+n.Name+" answers both dup-1 instances", func() error {
			srv, err := srvTargets(n.API.DNS, svcName("dup"))
			if err != nil {
				return err
			}
			if len(srv) != 2 {
				return fmt.Errorf("node %s: dup SRV %v, want two targets", n.Name, srv)
			}
			var got []string
			for target, port := range srv {
				a, err := answerA(n.API.DNS, target)
				if err != nil {
					return err
				}
				got = append(got, fmt.Sprintf("%d=%s", port, strings.Join(a, ",")))
			}
			return sameSet("node "+n.Name+" dup targets", got, []string{"1001=10.99.0.1", "1002=10.99.0.2"})
		})
	}
	// A client may ask one node for the SRV and another for the target's
	// address (several nodes in its resolv.conf): every target one node
	// gives resolves, to the same instance, on every node, its owner's
	// included.
	for _, n := range nodes {
		srv, err := srvTargets(n.API.DNS, svcName("dup"))
		if err != nil {
			t.Fatal(err)
		}
		for target, port := range srv {
			for _, m := range nodes {
				a, err := answerA(m.API.DNS, target)
				if err != nil {
					t.Fatal(err)
				}
				want := map[uint16]string{1001: "10.99.0.1", 1002: "10.99.0.2"}[port]
				if len(a) != 1 || a[0] != want {
					t.Errorf("SRV target %s from node %s, asked of node %s: A %v, want %s", target, n.Name, m.Name, a, want)
				}
			}
		}
	}
}

// docker kill of node 1: its instances leave nodes 2 and 3 within the
// failure detection time; node 1 started again rejoins and its instances
// come back everywhere.
func TestClusterNodeDeath(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-death")
	nodes := startCluster(t, cn, clusterKey(t), 3)
	n1, rest := nodes[0], nodes[1:]
	id := runOn(t, n1.Name, "death-web", "--label", "SERVICE_NAME=death-web")
	p := publishedPort(t, id)
	for _, n := range nodes {
		eventually(t, 10*time.Second, "node "+n.Name+" answers death-web", func() error {
			return publishedIs(n.API.DNS, svcName("death-web"), hostAddr(n1.Name), p)
		})
	}
	runOn(t, rest[0].Name, "death-other", "--label", "SERVICE_NAME=death-other")

	mustDocker(t, "kill", namePrefix+n1.Ctr)
	killed := time.Now()
	for _, n := range rest {
		eventually(t, failureDetection+5*time.Second, "node "+n.Name+" drops the dead node's instances", func() error {
			return gone(n.API.DNS, svcName("death-web"))
		})
		t.Logf("node %s: killed node's instance gone %v after docker kill", n.Name, time.Since(killed).Round(time.Millisecond))
		if d := time.Since(killed); d > failureDetection {
			t.Errorf("node %s dropped the dead node's instances after %v, the README says within %v", n.Name, d.Round(time.Millisecond), failureDetection)
		}
		// The survivors still answer for each other.
		if _, err := answerA(n.API.DNS, svcName("death-other")); err != nil {
			t.Error(err)
		}
	}

	mustDocker(t, "start", namePrefix+n1.Ctr)
	started := time.Now()
	n1.waitUp(t)
	for _, n := range nodes {
		eventually(t, 20*time.Second, "node "+n.Name+" answers the restarted node's instance", func() error {
			return publishedIs(n.API.DNS, svcName("death-web"), hostAddr(n1.Name), p)
		})
		t.Logf("node %s: restarted node's instance back %v after docker start", n.Name, time.Since(started).Round(time.Millisecond))
	}
	eventually(t, 20*time.Second, "all three lists agree", func() error {
		return sameListings(nodes, hostContainers(t))
	})
}

// A node whose container is recreated on another address (a restart that
// got a new IP, a move to another host) before the others declared it
// dead comes back under its name: it waits for its old self to be
// declared dead and its name reclaimable (README: failure detection plus
// 5 s), then every node answers its containers again and lists it at the
// new address.
func TestClusterRestartNewAddress(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-moved")
	key := clusterKey(t)
	nodes := startCluster(t, cn, key, 3)
	n1, rest := nodes[0], nodes[1:]
	id := runOn(t, n1.Name, "moved-web", "--label", "SERVICE_NAME=moved-web")
	p := publishedPort(t, id)
	for _, n := range nodes {
		eventually(t, 10*time.Second, "node "+n.Name+" answers moved-web", func() error {
			return publishedIs(n.API.DNS, svcName("moved-web"), hostAddr(n1.Name), p)
		})
	}

	mustDocker(t, "rm", "-f", namePrefix+n1.Ctr)
	stopped := time.Now()
	moved := startNode(t, cn, nodeSpec{Name: n1.Name, IPNum: 31, Key: key, Join: []string{rest[0].Addr(), rest[1].Addr()}})
	for _, n := range rest {
		eventually(t, failureDetection+20*time.Second, "node "+n.Name+" lists n1 alive at its new address", func() error {
			if !moved.Running(t) {
				t.Fatalf("the moved n1 exited:\n%s", moved.Log())
			}
			got, err := n.Nodes()
			if err != nil {
				return err
			}
			for _, m := range got {
				if m.Name == n1.Name && strings.HasPrefix(m.Address, moved.IP+":") && m.State == "alive" {
					return nil
				}
			}
			return fmt.Errorf("node %s lists %+v", n.Name, got)
		})
		t.Logf("node %s: n1 alive at its new address %v after the old one was removed", n.Name, time.Since(stopped).Round(time.Millisecond))
	}
	for _, n := range append([]*clusterNode{moved}, rest...) {
		eventually(t, 10*time.Second, "node "+n.Name+" answers the moved node's instance", func() error {
			return publishedIs(n.API.DNS, svcName("moved-web"), hostAddr(n1.Name), p)
		})
		t.Logf("node %s: the moved node's instance answered %v after the old one was removed", n.Name, time.Since(stopped).Round(time.Millisecond))
	}
	eventually(t, 20*time.Second, "all three lists agree", func() error {
		return sameListings(append([]*clusterNode{moved}, rest...), hostContainers(t))
	})
	if l := logWith(moved.Log(), "name held by"); l != "" {
		t.Logf("the moved node waited: %s", l)
	}
}

// Node 3 is cut off the network while containers change on nodes 1 and 3;
// once it is back, the three full listings are equal within the
// convergence time, and hold exactly what the hosts run.
func TestClusterPartitionHeals(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-part")
	nodes := startCluster(t, cn, clusterKey(t), 3)
	n1, n3 := nodes[0], nodes[2]
	gone1 := runOn(t, n1.Name, "part-a1")
	gone3 := runOn(t, n3.Name, "part-c1")
	runOn(t, nodes[1].Name, "part-b1")
	eventually(t, 10*time.Second, "all three lists agree before the cut", func() error {
		return sameListings(nodes, hostContainers(t))
	})

	mustDocker(t, "network", "disconnect", cn.Name, namePrefix+n3.Ctr)
	cut := time.Now()
	mustDocker(t, "rm", "-f", gone1)
	mustDocker(t, "rm", "-f", gone3)
	runOn(t, n1.Name, "part-a2")
	runOn(t, n3.Name, "part-c2")
	// Both sides see the cut: node 1 no longer lists node 3 alive.
	eventually(t, failureDetection+5*time.Second, "node 1 sees node 3 gone", func() error {
		return n1.aliveAre(n1.Name, nodes[1].Name)
	})
	t.Logf("node 1 saw node 3 gone %v after the cut", time.Since(cut).Round(time.Millisecond))

	mustDocker(t, "network", "connect", "--ip", n3.IP, cn.Name, namePrefix+n3.Ctr)
	healed := time.Now()
	took := eventually(t, convergence+10*time.Second, "the three listings equal what the hosts run", func() error {
		return sameListings(nodes, hostContainers(t))
	})
	t.Logf("listings equal %v after the network came back (cut lasted %v)", took.Round(time.Millisecond), healed.Sub(cut).Round(time.Millisecond))
	if took > convergence {
		t.Errorf("listings equal after %v, the README says within %v", took.Round(time.Millisecond), convergence)
	}
	for _, n := range nodes {
		if err := n.aliveAre(n1.Name, nodes[1].Name, n3.Name); err != nil {
			t.Error(err)
		}
	}
}

// A node with another key is refused: it never becomes a member, its
// containers reach nobody, nobody's listing changes, and both sides say
// why in their logs.
func TestClusterWrongKeyRefused(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-key")
	nodes := startCluster(t, cn, clusterKey(t), 3)
	runOn(t, nodes[0].Name, "key-a1")
	want := hostContainers(t)
	eventually(t, 10*time.Second, "all three lists agree", func() error { return sameListings(nodes, want) })

	runOn(t, "n4", "key-d1")
	bad := startNode(t, cn, nodeSpec{Name: "n4", IPNum: 20, Key: clusterKey(t), Join: []string{nodes[0].Addr()}})
	eventually(t, 20*time.Second, "both sides log the undecryptable gossip", func() error {
		if l := logWith(bad.Log(), "not decryptable"); l == "" {
			return fmt.Errorf("node n4 logged nothing about the key yet")
		}
		if l := logWith(nodes[0].Log(), "not decryptable"); l == "" {
			return fmt.Errorf("node n1 logged nothing about the key yet")
		}
		return nil
	})
	never(t, 5*time.Second, "the cluster is unchanged", func() error {
		for _, n := range nodes {
			if err := n.aliveAre("n1", "n2", "n3"); err != nil {
				return err
			}
		}
		return sameListings(nodes, want)
	})
	if err := bad.aliveAre("n4"); err != nil {
		t.Errorf("the node with the wrong key: %v", err)
	}
	if !bad.Running(t) {
		t.Errorf("the node with the wrong key exited; it should stay up alone and retry")
	}
}

// A second node with a taken name is refused: it exits 1 saying so, the
// node holding the name logs the refusal, and every node keeps the same
// members, addresses and listings.
func TestClusterTakenNameRefused(t *testing.T) {
	requireDocker(t)
	cn := newClusterNet(t, "cluster-name")
	key := clusterKey(t)
	nodes := startCluster(t, cn, key, 3)
	runOn(t, nodes[1].Name, "name-b1")
	want := hostContainers(t)
	eventually(t, 10*time.Second, "all three lists agree", func() error { return sameListings(nodes, want) })
	before, err := nodes[0].Nodes()
	if err != nil {
		t.Fatal(err)
	}

	runOn(t, "n2bis", "name-x1")
	dup := startNode(t, cn, nodeSpec{Name: "n2", Host: "n2bis", IPNum: 21, Key: key, Join: []string{nodes[0].Addr()}, NoWait: true})
	// The second n2 waits, as a restarted n2 on a new address would,
	// for the holder to be declared dead: with three members, 5 probe
	// intervals and the longest suspicion (6 x 3 s) = 23 s (README).
	took := eventually(t, 60*time.Second, "the second n2 exits", func() error {
		if dup.Running(t) {
			return fmt.Errorf("still running")
		}
		return nil
	})
	t.Logf("the second n2 exited %v after it started", took.Round(time.Millisecond))
	if code := mustDocker(t, "inspect", "--format", "{{.State.ExitCode}}", namePrefix+dup.Ctr); code != "1" {
		t.Errorf("the second n2 exited with %s, want 1", code)
	}
	if l := logWith(dup.Log(), "name held by another address"); !strings.Contains(l, nodes[1].IP) {
		t.Errorf("the second n2 did not log that it waits for the holder %s:\n%s", nodes[1].IP, dup.Log())
	}
	if l := logWith(dup.Log(), "name taken"); l == "" {
		t.Errorf("the second n2 did not log that its name is taken:\n%s", dup.Log())
	}
	var refused string
	for _, n := range nodes {
		if refused == "" {
			refused = logWith(n.Log(), "taken name")
		}
	}
	if refused == "" {
		t.Errorf("no node logged that it refused a node with a taken name")
	} else if !strings.Contains(refused, cn.IP(21)) {
		t.Errorf("the refusal does not name the refused node's address %s: %s", cn.IP(21), refused)
	}
	never(t, 5*time.Second, "the cluster is unchanged", func() error {
		for _, n := range nodes {
			got, err := n.Nodes()
			if err != nil {
				return err
			}
			if err := sameMembers(got, before); err != nil {
				return fmt.Errorf("node %s: %v", n.Name, err)
			}
		}
		return sameListings(nodes, want)
	})
}

// sameMembers compares two /v1/nodes lists on name, address and state.
func sameMembers(got, want []apiNode) error {
	key := func(l []apiNode) []string {
		var out []string
		for _, n := range l {
			out = append(out, n.Name+"@"+n.Address+"="+n.State)
		}
		return out
	}
	return sameSet("members", key(got), key(want))
}

// logWith returns the first line of log that holds phrase
// (case-insensitive), or "".
func logWith(log, phrase string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(strings.ToLower(line), strings.ToLower(phrase)) {
			return line
		}
	}
	return ""
}
