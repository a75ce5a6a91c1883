package watcher

import (
	"fmt"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/svcdns/svcdns/catalog"
)

// TestConvertProxyRoute: the SERVICE_PROXY_* labels become each instance's
// catalog.ProxyRoute, and a malformed one is a problem and no route.
func TestConvertProxyRoute(t *testing.T) {
	tests := []struct {
		name     string
		fixture  string
		mutate   func(*container.InspectResponse)
		want     string // per instance: "<port>/<proto> paths=… host=… strip=…", or "-" for no route
		problems string
	}{
		{name: "path, host and strip", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_PATH", "/api/v1/books/, /books", "SERVICE_PROXY_HOST", "Books.Example.Test", "SERVICE_PROXY_STRIP", "true"),
			want:   "8080/tcp paths=/api/v1/books,/books host=books.example.test strip=true"},
		{name: "env works as a label does", fixture: "bridge",
			mutate: withEnv("SERVICE_PROXY_PATH=/api/v1/books"),
			want:   "8080/tcp paths=/api/v1/books host= strip=false"},
		{name: "no label, no route", fixture: "bridge", want: "8080/tcp -"},
		{name: "a relative path is refused", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_PATH", "api/v1/books"), problems: reasonProxy,
			want: "8080/tcp -"},
		{name: "one bad path refuses the whole route", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_PATH", "/ok,/../admin"), problems: reasonProxy,
			want: "8080/tcp -"},
		{name: "a bad host refuses the route", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_PATH", "/api", "SERVICE_PROXY_HOST", "books:8080"), problems: reasonProxy,
			want: "8080/tcp -"},
		{name: "a bad strip refuses the route", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_PATH", "/api", "SERVICE_PROXY_STRIP", "maybe"), problems: reasonProxy,
			want: "8080/tcp -"},
		{name: "strip alone is a problem", fixture: "bridge",
			mutate: withLabels("SERVICE_PROXY_STRIP", "true"), problems: reasonProxy,
			want: "8080/tcp -"},
		{name: "container labels go to the first tcp port only", fixture: "multiport",
			mutate: withLabels("SERVICE_PROXY_PATH", "/books"),
			want:   "8080/tcp paths=/books host= strip=false\n9090/tcp -"},
		{name: "a port's own labels replace the container's", fixture: "multiport",
			mutate: withLabels("SERVICE_PROXY_PATH", "/books", "SERVICE_8080_PROXY_PATH", "/v2/books", "SERVICE_9090_PROXY_HOST", "admin.test"),
			want:   "8080/tcp paths=/v2/books host= strip=false\n9090/tcp paths= host=admin.test strip=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lines := convertTCP(t, tt.fixture, tt.mutate, func(i *catalog.Instance) string {
				if i.Proxy == nil {
					return "-"
				}
				return fmt.Sprintf("paths=%s host=%s strip=%t", strings.Join(i.Proxy.Paths, ","), i.Proxy.Host, i.Proxy.Strip)
			})
			if r := strings.Join(lines, "\n"); r != tt.want {
				t.Errorf("got\n%s\nwant\n%s", r, tt.want)
			}
			if r := reasons(got.Problems); r != tt.problems {
				t.Errorf("problems %q, want %q: %+v", r, tt.problems, got.Problems)
			}
			checkRecord(t, got)
		})
	}
}
