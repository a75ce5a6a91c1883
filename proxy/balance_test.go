package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"testing"
)

// TestSetXForwarded: the proxy's own setXForwarded sets the headers that
// httputil's SetXForwarded does, for the requests Rewrite sees.
func TestSetXForwarded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote string
		tls    bool
	}{
		{"ipv4", "192.0.2.7:5000", false},
		{"ipv6", "[2001:db8::1]:443", true},
		{"no port", "192.0.2.7", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "http://books.example.test/x"
			if tc.tls {
				target = "https://books.example.test/x" // httptest sets TLS
			}
			in := httptest.NewRequest(http.MethodGet, target, nil)
			in.RemoteAddr = tc.remote
			want := &httputil.ProxyRequest{In: in, Out: in.Clone(context.Background())}
			want.Out.Header = http.Header{"Accept": {"*/*"}}
			got := &httputil.ProxyRequest{In: in, Out: in.Clone(context.Background())}
			got.Out.Header = http.Header{"Accept": {"*/*"}}
			want.SetXForwarded()
			setXForwarded(got)
			if !reflect.DeepEqual(got.Out.Header, want.Out.Header) {
				t.Errorf("headers %v, want %v", got.Out.Header, want.Out.Header)
			}
		})
	}
}
