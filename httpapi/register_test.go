package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

func TestRegisterRejects(t *testing.T) {
	const ok = `"service":"books","address":"10.0.0.1","port":8080`
	tags33 := make([]string, 33)
	for i := range tags33 {
		tags33[i] = fmt.Sprintf("%q", fmt.Sprintf("t%d", i))
	}
	tests := []struct {
		name string
		id   string
		body string
		code int
		err  string // part of the error message
	}{
		{name: "empty body", body: "", code: 400, err: "empty body"},
		{name: "bad JSON", body: `{"service":`, code: 400, err: "not valid JSON"},
		{name: "not JSON", body: `service=books`, code: 400, err: "not valid JSON"},
		{name: "array", body: `[]`, code: 400, err: "JSON object"},
		{name: "unknown field", body: `{` + ok + `,"weight":5}`, code: 400, err: `unknown field "weight"`},
		{name: "two JSON values", body: `{` + ok + `}{` + ok + `}`, code: 400, err: "more than one JSON value"},
		{name: "trailing garbage", body: `{` + ok + `} x`, code: 400, err: "more than one JSON value"},
		{name: "port as string", body: `{"service":"books","address":"10.0.0.1","port":"8080"}`, code: 400, err: `"port"`},
		{name: "ttl as number", body: `{` + ok + `,"ttl":30}`, code: 400, err: `"ttl"`},
		{name: "id with dot", id: "b.1", body: `{` + ok + `}`, code: 400, err: "dot"},
		{name: "id 64 bytes", id: strings.Repeat("b", 64), body: `{` + ok + `}`, code: 400, err: "at most 63"},
		{name: "id non-ASCII", id: "b%C3%BC", body: `{` + ok + `}`, code: 400, err: "non-ASCII"},
		{name: "id leading hyphen", id: "-b1", body: `{` + ok + `}`, code: 400, err: "instance id"},
		{name: "service missing", body: `{"address":"10.0.0.1","port":80}`, code: 400, err: "service is required"},
		{name: "service with dot", body: `{"service":"v1.books-ms","address":"10.0.0.1","port":80}`, code: 400, err: "dot"},
		{name: "service 64 bytes", body: `{"service":"` + strings.Repeat("s", 64) + `","address":"10.0.0.1","port":80}`, code: 400, err: "at most 63"},
		{name: "service non-ASCII", body: `{"service":"bücher","address":"10.0.0.1","port":80}`, code: 400, err: "non-ASCII"},
		{name: "service underscore", body: `{"service":"books_ms","address":"10.0.0.1","port":80}`, code: 400, err: "service"},
		{name: "address missing", body: `{"service":"books","port":80}`, code: 400, err: "address is required"},
		{name: "address invalid", body: `{"service":"books","address":"10.0.0.256","port":80}`, code: 400, err: "not an IPv4 or IPv6"},
		{name: "address hostname", body: `{"service":"books","address":"db.example.com","port":80}`, code: 400, err: "not an IPv4 or IPv6"},
		{name: "address unspecified", body: `{"service":"books","address":"0.0.0.0","port":80}`, code: 400, err: "unspecified"},
		{name: "address unspecified v6", body: `{"service":"books","address":"::","port":80}`, code: 400, err: "unspecified"},
		{name: "address multicast", body: `{"service":"books","address":"224.0.0.1","port":80}`, code: 400, err: "multicast"},
		{name: "address zone", body: `{"service":"books","address":"fe80::1%eth0","port":80}`, code: 400, err: "zone"},
		{name: "port missing", body: `{"service":"books","address":"10.0.0.1"}`, code: 400, err: "port is required"},
		{name: "port 0", body: `{"service":"books","address":"10.0.0.1","port":0}`, code: 400, err: "port is required"},
		{name: "port 70000", body: `{"service":"books","address":"10.0.0.1","port":70000}`, code: 400, err: "port 70000"},
		{name: "port negative", body: `{"service":"books","address":"10.0.0.1","port":-1}`, code: 400, err: "port -1"},
		{name: "protocol sctp", body: `{` + ok + `,"protocol":"sctp"}`, code: 400, err: `protocol "sctp"`},
		{name: "tag with dot", body: `{` + ok + `,"tags":["v1","a.b"]}`, code: 400, err: "tags[1]"},
		{name: "tag empty", body: `{` + ok + `,"tags":[""]}`, code: 400, err: "tags[0]"},
		{name: "33 tags", body: `{` + ok + `,"tags":[` + strings.Join(tags33, ",") + `]}`, code: 400, err: "at most 32"},
		{name: "ttl abc", body: `{` + ok + `,"ttl":"abc"}`, code: 400, err: `ttl "abc"`},
		{name: "ttl 0s", body: `{` + ok + `,"ttl":"0s"}`, code: 400, err: "1s to 24h"},
		{name: "ttl 500ms", body: `{` + ok + `,"ttl":"500ms"}`, code: 400, err: "1s to 24h"},
		{name: "ttl 25h", body: `{` + ok + `,"ttl":"25h"}`, code: 400, err: "1s to 24h"},
		{name: "ttl without unit", body: `{` + ok + `,"ttl":"30"}`, code: 400, err: `ttl "30"`},
		{name: "proxy empty", body: `{` + ok + `,"proxy":{}}`, code: 400, err: "proxy: give paths"},
		{name: "proxy relative path", body: `{` + ok + `,"proxy":{"paths":["api/v1/books"]}}`, code: 400, err: "not an absolute path"},
		{name: "proxy path with comma", body: `{` + ok + `,"proxy":{"paths":["/a,/b"]}}`, code: 400, err: "proxy.paths[0]"},
		{name: "proxy host with port", body: `{` + ok + `,"proxy":{"host":"books:80"}}`, code: 400, err: "proxy.host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			id := tc.id
			if id == "" {
				id = "b1"
			}
			w := f.do(http.MethodPut, "/v1/instances/"+id, tc.body)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d; body %s", w.Code, tc.code, w.Body)
			}
			if msg := errorOf(t, w); !strings.Contains(msg, tc.err) {
				t.Errorf("error %q, want it to mention %q", msg, tc.err)
			}
			if st, _ := f.cat.Stats(); st.Instances != 0 || st.Index != 0 {
				t.Errorf("a refused PUT changed the catalog: %+v", st)
			}
		})
	}
}

func TestRegisterBodyLimit(t *testing.T) {
	// pad makes a valid registration exactly n bytes long.
	pad := func(n int) string {
		b := `{"service":"books","address":"10.0.0.1","port":80}`
		return b + strings.Repeat(" ", n-len(b))
	}
	tests := []struct {
		name    string
		body    string
		chunked bool // no Content-Length: the limit is found while reading
		code    int
	}{
		{name: "1 MiB", body: pad(MaxBodyBytes), code: 200},
		{name: "1 MiB + 1", body: pad(MaxBodyBytes + 1), code: 413},
		{name: "1 MiB + 1 chunked", body: pad(MaxBodyBytes + 1), chunked: true, code: 413},
		{name: "one big value chunked", body: `{"service":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, chunked: true, code: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length from NewRequest
			}
			r := httptest.NewRequest(http.MethodPut, "/v1/instances/b1", body)
			if tc.chunked {
				r.ContentLength = -1 // unknown, as with Transfer-Encoding: chunked
			}
			w := httptest.NewRecorder()
			f.api.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d; body %.200s", w.Code, tc.code, w.Body)
			}
			if tc.code == 413 {
				if msg := errorOf(t, w); !strings.Contains(msg, "larger than 1048576 bytes") {
					t.Errorf("error %q does not say the body is too large", msg)
				}
			}
		})
	}
}

func TestRegisterAndDeregister(t *testing.T) {
	f := newFixture(t, nil)

	w := f.register("B1", `{"service":"Books","address":"::ffff:10.0.0.1","port":8080,"protocol":"UDP","tags":["V2","v1","v2"]}`)
	idx1 := indexOf(t, w)
	if idx1 != f.cat.Index() || idx1 == 0 {
		t.Errorf("PUT X-Svcdns-Index %d, catalog index %d", idx1, f.cat.Index())
	}
	got := decode[Instance](t, w)
	if got.ID != "b1" || got.Service != "books" || got.Address != "10.0.0.1" || got.Protocol != "udp" ||
		strings.Join(got.Tags, ",") != "v1,v2" || got.TTL != "" || !got.Expires.IsZero() {
		t.Errorf("PUT answered %+v, want id b1, service books, address 10.0.0.1, udp, tags v1,v2, no ttl", got)
	}
	inst, err := f.cat.Instance("b1")
	if err != nil {
		t.Fatalf("instance not in the catalog: %v", err)
	}
	if inst.Source != catalog.SourceAPI || inst.Node != "n1" || !inst.Passing || inst.HostPort != 8080 ||
		inst.HostIP.String() != "10.0.0.1" || inst.ContainerID != "api/b1" || inst.ContainerName != "b1" {
		t.Errorf("catalog instance %+v", inst)
	}

	// The same body again changes nothing.
	if w := f.register("b1", `{"service":"books","address":"10.0.0.1","port":8080,"protocol":"udp","tags":["v1","v2"]}`); indexOf(t, w) != idx1 {
		t.Errorf("identical PUT moved the index from %d to %d", idx1, indexOf(t, w))
	}
	// A proxy route is stored and shown, normalized.
	w = f.register("b1", `{"service":"books","address":"10.0.0.1","port":8080,"protocol":"udp","tags":["v1","v2"],"proxy":{"paths":["/api/v1/books/"],"host":"Books.Test","strip":true}}`)
	if got := decode[Instance](t, w); got.Proxy == nil || strings.Join(got.Proxy.Paths, ",") != "/api/v1/books" || got.Proxy.Host != "books.test" || !got.Proxy.Strip {
		t.Errorf("PUT with a proxy route answered %+v", got.Proxy)
	}
	if inst, _ := f.cat.Instance("b1"); inst == nil || inst.Proxy == nil || inst.Proxy.Host != "books.test" {
		t.Errorf("catalog instance's proxy route: %+v", inst)
	}
	// A new address replaces the old one.
	w = f.register("b1", `{"service":"books","address":"10.0.0.2","port":8080}`)
	if indexOf(t, w) <= idx1 {
		t.Errorf("changed PUT kept the index at %d", indexOf(t, w))
	}
	list := decode[[]Instance](t, f.do("GET", "/v1/services/books", ""))
	if len(list) != 1 || list[0].Address != "10.0.0.2" || list[0].Protocol != "tcp" {
		t.Errorf("after update GET answered %+v, want one tcp instance at 10.0.0.2", list)
	}
	// Moving to another service leaves the first one empty.
	f.register("b1", `{"service":"papers","address":"10.0.0.2","port":8080}`)
	if list := decode[[]Instance](t, f.do("GET", "/v1/services/books", "")); len(list) != 0 {
		t.Errorf("books still answers %+v after b1 moved to papers", list)
	}

	w = f.do(http.MethodDelete, "/v1/instances/B1", "")
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("DELETE: %d %s, want 204 and no body", w.Code, w.Body)
	}
	if indexOf(t, w) != f.cat.Index() {
		t.Errorf("DELETE X-Svcdns-Index %d, want %d", indexOf(t, w), f.cat.Index())
	}
	if list := decode[[]Instance](t, f.do("GET", "/v1/services/papers", "")); len(list) != 0 {
		t.Errorf("GET after DELETE answered %+v", list)
	}
	if ctrs := decode[[]Container](t, f.do("GET", "/v1/containers", "")); len(ctrs) != 0 {
		t.Errorf("GET /v1/containers after DELETE answered %+v", ctrs)
	}

	w = f.do(http.MethodDelete, "/v1/instances/b1", "")
	if w.Code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", w.Code)
	}
	if msg := errorOf(t, w); !strings.Contains(msg, `"b1"`) {
		t.Errorf("404 message %q does not name the id", msg)
	}
	if w := f.do(http.MethodDelete, "/v1/instances/a.b", ""); w.Code != http.StatusBadRequest {
		t.Errorf("DELETE of an invalid id: %d, want 400", w.Code)
	}
}

// An id held by a Docker instance can be neither taken nor deleted: API ids
// are DNS labels, Docker instances' are "<container id>:<port>/<proto>".
func TestRegisterDockerID(t *testing.T) {
	f := newFixture(t, nil)
	ctr := &catalog.Container{ID: hexA, Name: "web-1", Target: "web-1", Node: "n1", Source: catalog.SourceDocker, Passing: true}
	dockerID := hexA + ":80/tcp"
	inst := &catalog.Instance{ID: dockerID, Service: "web", Protocol: "tcp", Port: 80, ContainerID: hexA,
		ContainerName: "web-1", Target: "web-1", Node: "n1", Source: catalog.SourceDocker, Passing: true}
	if _, err := f.cat.PutContainer(ctr, []*catalog.Instance{inst}); err != nil {
		t.Fatal(err)
	}
	path := "/v1/instances/" + url.PathEscape(dockerID)
	if w := f.do(http.MethodPut, path, `{"service":"other","address":"10.0.0.1","port":80}`); w.Code != http.StatusBadRequest {
		t.Errorf("PUT over a docker instance: %d %s, want 400", w.Code, w.Body)
	}
	if w := f.do(http.MethodDelete, path, ""); w.Code != http.StatusBadRequest {
		t.Errorf("DELETE of a docker instance: %d, want 400", w.Code)
	}
	// The container's name is free for an API id: the two never meet.
	if w := f.do(http.MethodPut, "/v1/instances/web-1", `{"service":"other","address":"10.0.0.1","port":80}`); w.Code != http.StatusOK {
		t.Errorf("PUT /v1/instances/web-1: %d %s, want 200", w.Code, w.Body)
	}
	if got, err := f.cat.Instance(dockerID); err != nil || got != inst {
		t.Errorf("docker instance after the attempts: %+v, %v; want it untouched", got, err)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token = "s3cret" })
	const body = `{"service":"books","address":"10.0.0.1","port":80}`
	tests := []struct {
		name         string
		method, path string
		auth         string
		code         int
	}{
		{"PUT without token", "PUT", "/v1/instances/b1", "", 401},
		{"PUT wrong token", "PUT", "/v1/instances/b1", "Bearer nope", 401},
		{"PUT token prefix", "PUT", "/v1/instances/b1", "Bearer s3cre", 401},
		{"PUT basic auth", "PUT", "/v1/instances/b1", "Basic czNjcmV0", 401},
		{"PUT bare token", "PUT", "/v1/instances/b1", "s3cret", 401},
		{"PUT right token", "PUT", "/v1/instances/b1", "Bearer s3cret", 200},
		{"PUT scheme in lower case", "PUT", "/v1/instances/b2", "bearer s3cret", 200},
		{"DELETE without token", "DELETE", "/v1/instances/b1", "", 401},
		{"DELETE wrong token", "DELETE", "/v1/instances/b1", "Bearer nope", 401},
		{"DELETE right token", "DELETE", "/v1/instances/b1", "Bearer s3cret", 204},
		{"GET services open", "GET", "/v1/services", "", 200},
		{"GET service open", "GET", "/v1/services/books", "", 200},
		{"GET containers open", "GET", "/v1/containers", "", 200},
		{"GET healthz open", "GET", "/healthz", "", 200},
		{"GET metrics open", "GET", "/metrics", "", 200},
		// The dashboard only reads: the token guards none of it.
		{"GET dashboard page open", "GET", "/", "", 200},
		{"GET dashboard search open", "GET", "/?q=books", "", 200},
		{"GET dashboard script open", "GET", "/ui/app.js", "", 200},
		{"GET dashboard JSON open", "GET", "/v1/dashboard", "", 200},
		{"GET prometheus SD open", "GET", "/v1/prometheus", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b string
			if tc.method == "PUT" {
				b = body
			}
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			before := f.cat.Index()
			w := f.do(tc.method, tc.path, b, hdr...)
			if w.Code != tc.code {
				t.Fatalf("code %d, want %d; body %s", w.Code, tc.code, w.Body)
			}
			if tc.code != 401 {
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want Bearer", got)
			}
			errorOf(t, w)
			if f.cat.Index() != before {
				t.Error("an unauthorised write changed the catalog")
			}
		})
	}
}

// An instance with a ttl is gone once the catalog's reaper passes its
// expiry, and a heartbeat PUT moves the expiry.
func TestTTLExpiry(t *testing.T) {
	f := newFixture(t, nil)
	const body = `{"service":"books","address":"10.0.0.1","port":80,"ttl":"30s"}`
	w := f.register("b1", body)
	if got := decode[Instance](t, w); got.TTL != "30s" || !got.Expires.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("ttl %q expires %v, want 30s and %v", got.TTL, got.Expires, t0.Add(30*time.Second))
	}
	count := func() int { return len(decode[[]Instance](t, f.do("GET", "/v1/services/books", ""))) }

	if _, _, err := f.cat.ExpireInstances(t0.Add(29 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d instances 29s in, want 1", n)
	}
	// Heartbeat at +20s: now expires at +50s.
	f.now = t0.Add(20 * time.Second)
	f.register("b1", body)
	if _, _, err := f.cat.ExpireInstances(t0.Add(45 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d instances at +45s after a heartbeat at +20s, want 1", n)
	}
	if _, _, err := f.cat.ExpireInstances(t0.Add(50 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d instances at expiry, want 0", n)
	}
	if ctrs := decode[[]Container](t, f.do("GET", "/v1/containers", "")); len(ctrs) != 0 {
		t.Errorf("the expired instance's container row is still listed: %+v", ctrs)
	}
}

// Operators see one INFO line per change of registration, never one per
// read or per TTL heartbeat.
func TestLogs(t *testing.T) {
	f := newFixture(t, nil)
	const body = `{"service":"books","address":"10.0.0.1","port":80,"ttl":"30s"}`
	f.register("b1", body)
	f.now = f.now.Add(10 * time.Second)
	f.register("b1", body) // heartbeat
	f.register("b1", `{"service":"books","address":"10.0.0.2","port":80,"ttl":"30s"}`)
	f.do("GET", "/v1/services/books", "")
	f.do("GET", "/v1/services", "")
	f.do("DELETE", "/v1/instances/b1", "")

	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		_, msg, _ := strings.Cut(l, "msg=")
		lines = append(lines, msg)
	}
	want := []string{
		`"instance registered" id=b1 service=books address=10.0.0.1 port=80 protocol=tcp index=1 ttl=30s`,
		`"instance updated" id=b1 service=books address=10.0.0.2 port=80 protocol=tcp index=3 ttl=30s`,
		`"instance deregistered" id=b1 index=4 service=books address=10.0.0.2`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
