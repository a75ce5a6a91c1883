package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// GET /v1/routes is the proxy's table when there is a proxy, and a 404
// saying how to turn it on when there is none.
func TestRoutesEndpoint(t *testing.T) {
	off := newFixture(t, nil)
	w := off.do("GET", "/v1/routes", "")
	if w.Code != http.StatusNotFound || !strings.Contains(errorOf(t, w), "--proxy-addr") {
		t.Errorf("proxy off: %d %s", w.Code, w.Body)
	}
	on := newFixture(t, func(c *Config) {
		c.Routes = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[]`)) })
	})
	if w := on.do("GET", "/v1/routes", ""); w.Code != http.StatusOK || w.Body.String() != "[]" {
		t.Errorf("proxy on: %d %s", w.Code, w.Body)
	}
	if w := on.do("PUT", "/v1/routes", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT /v1/routes: %d, want 405", w.Code)
	}
}
