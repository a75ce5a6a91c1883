package httpapi

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The dashboard is plain HTML, CSS and JavaScript, embedded: GET / renders
// the whole state as a table server-side (it reads fine with JavaScript
// off), and app.js keeps it live from GET /v1/events.
//
//go:embed ui
var uiFS embed.FS

var pageTmpl = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"hostport": hostPort,
	"clock":    func(t time.Time) string { return t.UTC().Format("15:04:05") },
	"stamp":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"rate":     func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"join":     strings.Join,
}).ParseFS(uiFS, "ui/index.html"))

// Dashboard is the answer of GET /v1/dashboard: everything the page shows.
type Dashboard struct {
	Node     string          `json:"node"`
	Status   Status          `json:"status"`
	Services []ServiceDetail `json:"services"` // by name
	Queries  QueryRates      `json:"queries"`
	Changes  []Change        `json:"changes"` // newest first, at most dashboardChanges
	Explain  bool            `json:"explain"` // GET /v1/explain is served
}

// ServiceDetail is one service with its instances.
type ServiceDetail struct {
	Name      string     `json:"name"`
	Passing   int        `json:"passing"`
	Instances []Instance `json:"instances"`
}

const dashboardChanges = 50

// dashboard reads the state the page shows; q, when not "", keeps only
// the services matching it (see matchService).
func (a *API) dashboard(q string) (Dashboard, error) {
	st, err := a.status()
	if err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{
		Node: a.node, Status: st, Queries: a.rates.get(),
		Changes: a.feed.recent(dashboardChanges), Explain: a.explainer != nil,
		Services: []ServiceDetail{},
	}
	_, svcs := a.cat.Services(nil)
	for _, s := range svcs {
		_, insts, err := a.cat.Service(nil, catalog.ServiceQuery{Service: s.Name})
		if err != nil {
			return Dashboard{}, err
		}
		sd := ServiceDetail{Name: s.Name, Passing: s.Passing, Instances: make([]Instance, 0, len(insts))}
		for _, in := range insts {
			sd.Instances = append(sd.Instances, instanceJSON(in))
		}
		if matchService(sd, q) {
			d.Services = append(d.Services, sd)
		}
	}
	return d, nil
}

// matchService reports whether the search q matches the service: its
// name, or one of its instances' tags, container names, node, addresses,
// or address:port. Case does not matter; "" matches everything.
func matchService(s ServiceDetail, q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" || strings.Contains(s.Name, q) {
		return true
	}
	for _, in := range s.Instances {
		fields := append([]string{in.ContainerName, in.Node, hostPort(in.HostAddress, in.HostPort)}, in.Tags...)
		for _, n := range in.Networks {
			fields = append(fields, n.Network, hostPort(n.Address, in.Port))
		}
		if slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), q) }) {
			return true
		}
	}
	return false
}

// hostPort joins an address and a port ("" when the address is "").
func hostPort(addr string, port uint16) string {
	if addr == "" {
		return ""
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

// GET /v1/dashboard[?q=search]
func (a *API) handleDashboardJSON(w http.ResponseWriter, r *http.Request) {
	d, err := a.dashboard(r.URL.Query().Get("q"))
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	setIndex(w, d.Status.Index)
	writeJSON(w, http.StatusOK, d)
}

// pageData is what index.html renders.
type pageData struct {
	Dashboard
	Query   string
	Explain *explainForm
}

// GET /[?q=search][&name=..&type=..&client=..]
func (a *API) handlePage(w http.ResponseWriter, r *http.Request) {
	qs := r.URL.Query()
	d, err := a.dashboard(qs.Get("q"))
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	data := pageData{Dashboard: d, Query: qs.Get("q"), Explain: a.explainFromPage(r)}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, data); err != nil {
		a.internalError(w, r, fmt.Errorf("render dashboard: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	setIndex(w, d.Status.Index)
	_, _ = w.Write(buf.Bytes())
}

// uiHandler serves the page's static files under /ui/.
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFS, "ui")
	if err != nil {
		panic(err) // the embedded tree is a constant
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
