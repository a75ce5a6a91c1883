//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// nginx with `resolver` and a variable proxy_pass resolves the name at
// request time, so it follows an instance that moves to another address.
func TestNginxFollowsAddressChange(t *testing.T) {
	bin := requireTool(t, "nginx")
	s := startSvcdns(t, "", "--docker-host", "none", "--ttl", "1")

	// Two backends on the same port of two loopback addresses, each
	// answering its own name.
	port, backends := twoBackends(t, "127.0.7.1", "127.0.7.2")
	put := func(addr string) {
		s.register(t, "web-1", apiInstance{Service: "web", Address: addr, Port: port})
	}
	put("127.0.7.1")

	dir := t.TempDir()
	listen := fmt.Sprint(freePort(t))
	conf := writeConfig(t, dir, "nginx.conf", fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    resolver %[2]s valid=1s ipv6=off;
    resolver_timeout 2s;
    server {
        listen 127.0.0.1:%[3]s;
        location / {
            set $backend "web.service.local:%[4]d";
            proxy_pass http://$backend;
        }
    }
}
`, dir, s.DNS, listen, port))
	n := startConsumer(t, "nginx", bin, "-p", dir, "-c", conf, "-e", "stderr")
	url := "http://127.0.0.1:" + listen + "/"
	served := func(want string) func() error {
		return func() error {
			n.running(t)
			b, err := httpGet(url)
			if err != nil {
				return err
			}
			if got := string(b); got != want {
				return fmt.Errorf("served by %q, want %q", got, want)
			}
			return nil
		}
	}
	eventually(t, 10*time.Second, "nginx proxies to the first address", served(backends[0]))
	put("127.0.7.2")
	took := eventually(t, 10*time.Second, "nginx follows the address change", served(backends[1]))
	t.Logf("nginx followed the address change after %v (resolver valid=1s, svcdns --ttl 1)", took.Round(10*time.Millisecond))
}

// twoBackends starts an HTTP server on the same port of each address,
// answering with its address, and returns the port and the answers.
func twoBackends(t *testing.T, a, b string) (int, []string) {
	t.Helper()
	for range 20 {
		l1, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort(b, fmt.Sprint(port)))
		if err != nil {
			l1.Close()
			continue
		}
		for _, l := range []net.Listener{l1, l2} {
			name := l.Addr().String()
			srv := &http.Server{
				Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }),
				ReadHeaderTimeout: 5 * time.Second,
			}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
		}
		return port, []string{l1.Addr().String(), l2.Addr().String()}
	}
	t.Fatalf("no port free on both %s and %s", a, b)
	return 0, nil
}
