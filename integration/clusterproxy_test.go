//go:build integration

package integration

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The proxy of one node reaches another node's instance (issue 12: "instances
// on other hosts at their published address"). Two svcdns nodes stand in for
// two hosts of one engine, each watching its own label. Node 2 gets node 1's
// records over gossip without their network addresses (another host's
// bridge is out of reach), so its proxy dials the published address: node
// 1's --advertise-ip and the published port. On a single engine a port
// published on 0.0.0.0 is reached, from a node container, at the host's
// address on that container's network: the test network's gateway, which
// node 1 therefore advertises (the other cluster tests advertise TEST-NET
// addresses nothing reaches).
func TestClusterProxyReachesPeerInstance(t *testing.T) {
	requireDocker(t)
	const path = "/api/v1/peer-books"
	cn := newClusterNet(t, "cluster-proxy")
	key := clusterKey(t)
	gateway := cn.IP(1)
	n1 := startNode(t, cn, nodeSpec{Name: "n1", IPNum: 11, Key: key, AdvertiseIP: gateway,
		Join: []string{net.JoinHostPort(cn.IP(12), clusterPort)}})
	n2 := startNode(t, cn, nodeSpec{Name: "n2", IPNum: 12, Key: key, Extra: []string{"--proxy-addr", "0.0.0.0:8080"},
		Join: []string{n1.Addr()}})
	eventually(t, 30*time.Second, "both nodes alive on both", func() error {
		for _, n := range []*clusterNode{n1, n2} {
			if err := n.aliveAre("n1", "n2"); err != nil {
				return err
			}
		}
		return nil
	})
	n2.API.Proxy = net.JoinHostPort(n2.IP, "8080")
	p2 := &proxied{svcdns: n2.API}

	// fakesvc's arguments go after the image: runOn puts args before it.
	id := runContainer(t, "peer-books", "--label", clusterLabel+"=n1", "-p", "8080", "--label", "SERVICE_NAME=peer-books",
		"--label", "SERVICE_PROXY_PATH="+path, imgFakesvc, "-stop-grace", "5s")
	began := time.Now()
	want := net.JoinHostPort(gateway, strconv.Itoa(int(publishedPort(t, id))))
	p2.waitRoute(t, path, 1)
	for _, r := range p2.routes(t) {
		if r.Path == path && (len(r.Instances) != 1 || r.Instances[0].Address != want) {
			t.Fatalf("node 2's route %s: %+v, want the published address %s", path, r, want)
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	var a answer
	eventually(t, 10*time.Second, "node 2's proxy answers from node 1's instance", func() error {
		if a = p2.get(c, "", path+"/1"); !a.ok() {
			return a.err
		}
		return nil
	})
	if a.host != id[:12] {
		t.Errorf("answered by %q, want node 1's container %.12s", a.host, id)
	}
	t.Logf("node 2's proxy routes %s to node 1's instance at %s, answered %v after docker run returned", path, want, time.Since(began).Round(time.Millisecond))

	// Node 1's instance is stopped, and serves on for a few seconds after
	// SIGTERM: node 1 drains it at the kill event and gossips that, so node
	// 2's proxy stops routing to it while it still runs, with a 503 naming
	// the service; once it has exited, the service and its route are gone
	// (404: no route).
	stopping := time.Now()
	stopped := make(chan error, 1)
	go func() { _, err := dockerCmd("stop", id); stopped <- err }()
	eventually(t, 10*time.Second, "node 2's proxy: 503 naming peer-books", func() error {
		a = p2.get(c, "", path+"/1")
		switch {
		case a.code == http.StatusServiceUnavailable && strings.Contains(a.err.Error(), "peer-books"):
			return nil
		case a.code == http.StatusNotFound:
			t.Fatalf("node 2's route went with the container, not at its stop signal: %v", a.err)
		}
		return fmt.Errorf("%d %v", a.code, a.err)
	})
	drained := time.Since(stopping)
	running := containerRunning(t, id)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	exited := time.Since(stopping)
	eventually(t, 10*time.Second, "node 1's container gone from node 2's listing and route", func() error {
		list, err := n2.Containers()
		if err != nil {
			return err
		}
		for _, ctr := range list {
			if ownerID(fmt.Sprint(ctr["id"]), fmt.Sprint(ctr["node"])) == id {
				return fmt.Errorf("node 2 still lists %.12s", id)
			}
		}
		if a = p2.get(c, "", path+"/1"); a.code != http.StatusNotFound {
			return fmt.Errorf("%d %v, want 404", a.code, a.err)
		}
		return nil
	})
	t.Logf("docker stop on node 1's host: node 2's proxy answered 503 naming the service %v later (the container still running: %t), "+
		"the container exited at %v, then node 2 had no route: %v", drained.Round(time.Millisecond), running, exited.Round(time.Millisecond), a.err)
	if !running {
		t.Errorf("node 2 stopped routing only after the container exited, not at its stop signal")
	}
}
