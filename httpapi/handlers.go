package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// GET /v1/services
func (a *API) handleServices(w http.ResponseWriter, r *http.Request) {
	idx, svcs := a.cat.Services(nil)
	writeList(w, idx, svcs, func(s catalog.ServiceSummary) Service {
		return Service{Name: s.Name, Instances: s.Instances, Passing: s.Passing}
	})
}

// GET /v1/services/{name}[?passing=true][&tag=t][&index=N[&wait=D]]
func (a *API) handleService(w http.ResponseWriter, r *http.Request) {
	name, err := catalog.NormalizeLabel(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "service name: "+err.Error())
		return
	}
	qs := r.URL.Query()
	q := catalog.ServiceQuery{Service: name}
	if q.PassingOnly, err = boolParam(qs, "passing"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if qs.Has("tag") {
		if q.Tag, err = catalog.NormalizeLabel(qs.Get("tag")); err != nil {
			writeError(w, http.StatusBadRequest, "tag: "+err.Error())
			return
		}
	}
	minIndex, wait, err := pollParams(qs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// A service's index never exceeds the catalog's: a larger one comes
	// from an earlier svcdns process, and waiting on it could take ages.
	// Answer at once with the current index instead.
	if minIndex > a.cat.Index() {
		minIndex = 0
	}

	var (
		idx   uint64
		insts []*catalog.Instance
	)
	if minIndex == 0 {
		idx, insts, err = a.cat.Service(nil, q)
	} else {
		var ok bool
		if idx, insts, ok, err = a.longPoll(r.Context(), q, minIndex, wait); !ok {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many long polls in progress (at most %d); retry later", cap(a.polls)))
			return
		}
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	writeList(w, idx, insts, instanceJSON)
}

// longPoll waits up to wait for q's service to change past minIndex, and
// returns what it then holds. ok is false, at once, when MaxLongPolls are
// already waiting.
func (a *API) longPoll(ctx context.Context, q catalog.ServiceQuery, minIndex uint64, wait time.Duration) (idx uint64, insts []*catalog.Instance, ok bool, err error) {
	select {
	case a.polls <- struct{}{}:
	default:
		return 0, nil, false, nil
	}
	defer func() { <-a.polls }()
	a.met.longPolls.Inc()
	defer a.met.longPolls.Dec()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	idx, insts, err = a.cat.WaitService(ctx, q, minIndex)
	return idx, insts, true, err
}

// boolParam reads an optional boolean query parameter; "?passing" alone
// means true.
func boolParam(qs url.Values, key string) (bool, error) {
	if !qs.Has(key) {
		return false, nil
	}
	v := qs.Get(key)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", key, clip(v))
	}
	return b, nil
}

// pollParams reads ?index and ?wait. Index 0 (or none) means no blocking;
// wait defaults to MaxWait and is capped there.
func pollParams(qs url.Values) (minIndex uint64, wait time.Duration, err error) {
	if qs.Has("index") {
		v := qs.Get("index")
		if minIndex, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("index %q: want a non-negative integer, the %s header of an earlier answer", clip(v), indexHeader)
		}
	}
	wait = MaxWait
	if qs.Has("wait") {
		v := qs.Get("wait")
		if wait, err = time.ParseDuration(v); err != nil {
			return 0, 0, fmt.Errorf("wait %q: want a duration such as 30s or 5m", clip(v))
		}
		if wait <= 0 {
			return 0, 0, fmt.Errorf("wait %q: must be more than 0 (at most %s)", clip(v), fmtDuration(MaxWait))
		}
		wait = min(wait, MaxWait)
	}
	return minIndex, wait, nil
}

// GET /v1/containers
func (a *API) handleContainers(w http.ResponseWriter, r *http.Request) {
	idx, ctrs, err := a.cat.AllContainers()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	writeList(w, idx, ctrs, containerJSON)
}

// writeList answers a read with the catalog index and items as a JSON
// array ([] when there are none, never null).
func writeList[T, J any](w http.ResponseWriter, idx uint64, items []T, toJSON func(T) J) {
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, toJSON(it))
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, out)
}

// GET /healthz: 200 "ok"; 200 "degraded" while Docker is away after a
// sync (the catalog serves what it last saw); 503 "syncing" until the
// first full sync with Docker.
func (a *API) handleHealth(w http.ResponseWriter, r *http.Request) {
	ch, err := a.catalogHealth()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	h := Health{Status: StatusOK, Catalog: ch}
	if a.cluster != nil {
		h.Cluster = map[string]int{"alive": 0}
		for _, n := range a.cluster() {
			h.Cluster[n.State]++
		}
	}
	code := http.StatusOK
	if a.docker != nil {
		h.Docker = a.docker()
		synced, connected := h.Docker.Health()
		switch {
		case !synced:
			h.Status, code = StatusSyncing, http.StatusServiceUnavailable
		case !connected:
			h.Status = StatusDegraded
		}
	}
	setIndex(w, ch.Index)
	writeJSON(w, code, h)
}

// catalogHealth counts what the catalog holds.
func (a *API) catalogHealth() (CatalogHealth, error) {
	st, err := a.cat.Stats()
	if err != nil {
		return CatalogHealth{}, err
	}
	return CatalogHealth{
		Index: st.Index, Services: st.Services, Instances: st.Instances,
		Passing: st.Passing, Containers: st.Containers,
	}, nil
}

// internalError answers 500 and logs why: the one place 5xx errors are
// logged. (/healthz's 503 while syncing is a state, not an error.)
func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Warn("http request failed", "method", r.Method, "route", routeOf(r.Pattern), "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: "+err.Error())
}

// fmtDuration prints d without trailing zero units ("5m", not "5m0s").
func fmtDuration(d time.Duration) string {
	s := d.String()
	for _, suffix := range []string{"m0s", "h0m"} {
		if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
			s = s[:len(s)-len(suffix)+1]
		}
	}
	return s
}
