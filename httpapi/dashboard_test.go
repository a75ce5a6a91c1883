package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// actions lists the changes as "action service/container".
func actions(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action+" "+c.Instance.Service+"/"+c.Instance.ContainerName)
	}
	return out
}

func TestFeedChanges(t *testing.T) {
	f := newFixture(t, nil)
	fd := f.api.feed
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"a container and an API instance come", func() {
			f.dockerContainer(hexA, "books-1", "books", "172.18.0.5", true, nil, 8080)
			f.register("b2", `{"service":"books","address":"10.0.0.2","port":80}`)
		}, []string{"added books/books-1", "added books/b2"}},
		{"a TTL-less re-put changes nothing", func() {
			f.register("b2", `{"service":"books","address":"10.0.0.2","port":80}`)
		}, nil},
		{"health turns", func() {
			f.dockerContainer(hexA, "books-1", "books", "172.18.0.5", false, nil, 8080)
		}, []string{"updated books/books-1"}},
		{"a tag changes the API instance", func() {
			f.register("b2", `{"service":"books","address":"10.0.0.2","port":80,"tags":["v2"]}`)
		}, []string{"updated books/b2"}},
		{"the container goes, another service comes", func() {
			if _, err := f.cat.DeleteContainer(hexA); err != nil {
				t.Fatal(err)
			}
			f.dockerContainer(hexB, "web-1", "web", "172.18.0.6", true, nil, 80)
		}, []string{"removed books/books-1", "added web/web-1"}},
		{"the last instance of a service goes", func() {
			f.do(http.MethodDelete, "/v1/instances/b2", "")
		}, []string{"removed books/b2"}},
	}
	var after uint64
	for _, st := range steps {
		st.do()
		fd.diff(f.cat.Index())
		got, idx, _, complete := fd.since(after)
		if !complete {
			t.Errorf("%s: since(%d) incomplete", st.name, after)
		}
		if strings.Join(actions(got), ",") != strings.Join(st.want, ",") {
			t.Errorf("%s: changes %q, want %q", st.name, actions(got), st.want)
		}
		for _, c := range got {
			if c.Index != idx || !c.Time.Equal(t0) {
				t.Errorf("%s: change at index %d time %v, want %d and %v", st.name, c.Index, c.Time, idx, t0)
			}
		}
		after = idx
	}
	recent := fd.recent(2)
	if got := actions(recent); strings.Join(got, ",") != "removed books/b2,added web/web-1" {
		t.Errorf("recent(2) = %q, want the newest first", got)
	}
	if r := recent[0].Instance; r.Address != "10.0.0.2" || len(r.Tags) != 1 {
		t.Errorf("removed instance %+v, want it as it was last seen", r)
	}
}

func TestFeedOverflow(t *testing.T) {
	f := newFixture(t, nil)
	fd := f.api.feed
	for i := range maxChanges + 10 {
		f.register("b"+itoa(i), `{"service":"books","address":"10.0.0.2","port":80}`)
		fd.diff(f.cat.Index())
	}
	if _, _, _, complete := fd.since(0); complete {
		t.Error("since(0) complete after the log dropped changes, want a reset")
	}
	got, idx, _, complete := fd.since(f.cat.Index() - 1)
	if !complete || len(got) != 1 || idx != f.cat.Index() {
		t.Errorf("since(last-1): %d changes, index %d, complete %v; want 1, %d, true", len(got), idx, complete, f.cat.Index())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// sseEvent is one server-sent event.
type sseEvent struct{ name, id, data string }

// readEvents parses an event stream into ch until it ends.
func readEvents(body *bufio.Reader, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

// nextEvent returns the next event named name, skipping others.
func nextEvent(t *testing.T, ch <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within 5s", name)
		}
	}
}

// serve runs the API on a loopback port until the test ends.
func (f *fixture) serve() string {
	f.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.api.Serve(ctx, ln) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func openStream(t *testing.T, url string, header ...string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ch := make(chan sseEvent, 16)
	go readEvents(bufio.NewReader(resp.Body), ch)
	return ch, resp
}

func TestEventStream(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Docker = func() DockerStatus { return dockerState{Connected: true, Synced: true, Events: 7} }
	})
	base := f.serve()
	ch, resp := openStream(t, base+"/v1/events")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var st struct {
		Docker *dockerState
	}
	if err := json.Unmarshal([]byte(nextEvent(t, ch, "status").data), &st); err != nil {
		t.Fatal(err)
	}
	if st.Docker == nil || st.Docker.Events != 7 {
		t.Errorf("status event %+v, want the Docker status", st)
	}

	f.register("b1", `{"service":"books","address":"10.0.0.1","port":80}`)
	ev := nextEvent(t, ch, "change")
	var c Change
	if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
		t.Fatal(err)
	}
	if c.Action != ActionAdded || c.Instance.ID != "b1" || ev.id != itoa(int(c.Index)) {
		t.Errorf("change event id %s %+v, want b1 added with its index as id", ev.id, c)
	}

	// A client resuming from before the change gets it again.
	again, _ := openStream(t, base+"/v1/events", "Last-Event-ID", itoa(int(c.Index-1)))
	if ev2 := nextEvent(t, again, "change"); ev2.data != ev.data {
		t.Errorf("resumed stream replayed %s, want %s", ev2.data, ev.data)
	}
	if _, resp := openStream(t, base+"/v1/events?since=x"); resp.StatusCode != 400 {
		t.Errorf("?since=x: %d, want 400", resp.StatusCode)
	}
}

func TestEventStreamCap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxStreams = 1 })
	base := f.serve()
	ch, _ := openStream(t, base+"/v1/events")
	nextEvent(t, ch, "status")
	if _, resp := openStream(t, base+"/v1/events"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second stream past MaxStreams 1: %d, want 429", resp.StatusCode)
	}
}

// The dashboard's stream only reads: --http-token does not guard it.
func TestEventStreamWithToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Token = "s3cret" })
	ch, resp := openStream(t, f.serve()+"/v1/events")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events without the token: %d, want 200", resp.StatusCode)
	}
	nextEvent(t, ch, "status")
}

func TestDashboardPage(t *testing.T) {
	f := newFixture(t, nil)
	f.dockerContainer(hexA, "books-1", "books", "172.18.0.5", true, []string{"v1"}, 8080)
	f.register("web-1", `{"service":"web","address":"10.0.0.9","port":80}`)
	f.register("evil", `{"service":"evil","address":"10.0.0.10","port":80,"tags":["x"]}`)
	f.api.feed.diff(f.cat.Index())

	tests := []struct {
		path      string
		want, not []string
	}{
		{"/", []string{"books-1", "172.18.0.5", "bridge", "8080/tcp", `<span class="tag">v1</span>`, "web-1", "10.0.0.9", "passing", "added"}, nil},
		{"/?q=v1", []string{`data-service="books"`}, []string{`data-service="web"`, `data-service="evil"`}},
		{"/?q=10.0.0.9:80", []string{`data-service="web"`}, []string{`data-service="books"`}},
		{"/?q=%3Cscript%3E", []string{"no service matches “&lt;script&gt;”"}, []string{"<script>"}},
	}
	for _, tc := range tests {
		w := f.do("GET", tc.path, "")
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", tc.path, w.Code, w.Header().Get("Content-Type"))
		}
		body := w.Body.String()
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %q", tc.path, s)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(body, s) {
				t.Errorf("GET %s has %q", tc.path, s)
			}
		}
	}
	for _, p := range []string{"/ui/app.js", "/ui/style.css"} {
		if w := f.do("GET", p, ""); w.Code != 200 || w.Body.Len() < 100 {
			t.Errorf("GET %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}

	d := decode[Dashboard](t, f.do("GET", "/v1/dashboard", ""))
	if len(d.Services) != 3 || d.Services[0].Name != "books" || len(d.Services[0].Instances) != 1 || len(d.Changes) != 3 {
		t.Errorf("/v1/dashboard: %+v", d)
	}
}

// pageDocker has the fields of watcher.Status that the page shows
// (httpapi does not import the watcher).
type pageDocker struct {
	Connected, Synced        bool
	LastSync                 time.Time
	Events, Resyncs, Repairs uint64
	LastError                string
	LastRepair               *pageRepair `json:"last_repair,omitempty"`
}

type pageRepair struct {
	Time        time.Time
	Reason      string
	Count, More int
	Containers  []struct{ Name, Action string }
}

func (d pageDocker) Health() (synced, connected bool) { return d.Synced, d.Connected }

// The Docker card says what the last repairing resync changed, by name.
func TestDashboardDockerCard(t *testing.T) {
	named := func(names ...string) []struct{ Name, Action string } {
		var out []struct{ Name, Action string }
		for i := 0; i+1 < len(names); i += 2 {
			out = append(out, struct{ Name, Action string }{names[i], names[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		repair *pageRepair
		want   string
	}{
		{"no repair yet", nil, `<dd id="docker-repair">none</dd>`},
		{"named", &pageRepair{Time: t0, Reason: "connect", Count: 2, Containers: named("books-1", "added", "web-1", "removed")},
			`<dd id="docker-repair">12:00:00 UTC, connect: <span class="act act-added">added</span> books-1, <span class="act act-removed">removed</span> web-1</dd>`},
		{"counted only", &pageRepair{Time: t0, Reason: "periodic", Count: 2}, `<dd id="docker-repair">12:00:00 UTC, periodic: 2 changed</dd>`},
		{"more than named", &pageRepair{Time: t0, Reason: "connect", Count: 30, More: 9, Containers: named("a", "updated")},
			`connect: <span class="act act-updated">updated</span> a and 9 more</dd>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := pageDocker{Connected: true, Synced: true, LastSync: t0, Events: 4, Resyncs: 3, Repairs: 2, LastRepair: tc.repair}
			f := newFixture(t, func(c *Config) { c.Docker = func() DockerStatus { return st } })
			w := f.do("GET", "/", "")
			if w.Code != 200 || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Body.String(), `<dd id="docker-repairs">2</dd>`) {
				t.Errorf("GET /: %d, want the Docker card to have %s:\n%s", w.Code, tc.want, w.Body)
			}
		})
	}
}

func TestQueryRates(t *testing.T) {
	totals := map[string]float64{}
	now := t0
	r := newRates(func() map[string]float64 { return maps.Clone(totals) }, func() time.Time { return now })
	r.sample()
	totals["NOERROR"] += 15 // A and SRV
	totals["NXDOMAIN"] += 5
	now = now.Add(5 * time.Second)
	r.sample()
	got := r.get()
	if len(got.Samples) != 1 {
		t.Fatalf("samples %+v, want 1", got.Samples)
	}
	if ps := got.Samples[0].PerSecond; ps["NOERROR"] != 3 || ps["NXDOMAIN"] != 1 || len(ps) != 2 {
		t.Errorf("rates %v, want NOERROR 3/s, NXDOMAIN 1/s", ps)
	}
	for range rateSamples + 5 {
		now = now.Add(rateStep)
		r.sample()
	}
	if n := len(r.get().Samples); n != rateSamples {
		t.Errorf("%d samples kept, want %d", n, rateSamples)
	}
}

func TestExplainEndpoint(t *testing.T) {
	var asked ExplainQuery
	f := newFixture(t, func(c *Config) {
		c.Explain = func(_ context.Context, q ExplainQuery) (Explanation, error) {
			asked = q
			return Explanation{
				Question: q.Name + " " + q.Type, Client: q.Client.String(), Rcode: "NOERROR", Outcome: "answered from the catalog",
				Answer: []string{"books.service.local.\t5\tIN\tA\t172.18.0.5"},
				Instances: []ExplainedInstance{{ID: "a:8080", Container: "books-1", Passing: true,
					Addresses: []string{"172.18.0.5"}, Port: 8080, Rule: "shared-network", Reason: "client shares network front"}},
			}, nil
		}
	})
	w := f.do("GET", "/v1/explain?name=books.service.local&type=srv&client=172.18.0.9", "")
	if w.Code != 200 || asked.Type != "SRV" || asked.Client != netip.MustParseAddr("172.18.0.9") {
		t.Errorf("explain: %d %s, asked %+v", w.Code, w.Body, asked)
	}
	if w := f.do("GET", "/v1/explain?name=books.service.local", ""); w.Code != 200 || asked.Type != "A" || !asked.Client.IsValid() {
		t.Errorf("explain without type and client: %d, asked %+v; want A for the caller's address", w.Code, asked)
	}
	for _, bad := range []string{"/v1/explain", "/v1/explain?name=x&client=nope"} {
		if w := f.do("GET", bad, ""); w.Code != 400 {
			t.Errorf("GET %s: %d, want 400", bad, w.Code)
		}
	}
	page := f.do("GET", "/?name=books.service.local&type=A&client=172.18.0.9", "").Body.String()
	for _, s := range []string{"shared-network", "client shares network front", "172.18.0.5"} {
		if !strings.Contains(page, s) {
			t.Errorf("page with an explain question lacks %q", s)
		}
	}
	g := newFixture(t, nil)
	if w := g.do("GET", "/v1/explain?name=x", ""); w.Code != 404 {
		t.Errorf("explain without an ExplainFunc: %d, want 404", w.Code)
	}
	if strings.Contains(g.do("GET", "/", "").Body.String(), "explain-form") {
		t.Error("page shows the explain box without an ExplainFunc")
	}
}
