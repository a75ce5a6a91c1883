package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Status is the "status" event of GET /v1/events, sent when the stream
// opens and every statusEvery after: the numbers the dashboard's cards
// show.
type Status struct {
	Time    time.Time     `json:"time"`
	Index   uint64        `json:"index"`
	Docker  DockerStatus  `json:"docker"` // null without Docker
	Catalog CatalogHealth `json:"catalog"`
	Queries *RateSample   `json:"queries"` // the last rate sample; null before the first
}

const (
	// statusEvery paces the status events, which also keep proxies from
	// closing an idle stream (WHATWG HTML §9.2 suggests ~15 s).
	statusEvery = 2 * time.Second
	// retryMillis is how long a browser waits before reconnecting.
	retryMillis = 2000
	// defaultMaxStreams bounds the event streams open at once.
	defaultMaxStreams = 256
)

// GET /v1/events: a server-sent events stream (text/event-stream).
//
//	event: change   id: <catalog index>   data: Change
//	event: status                         data: Status
//	event: reset    id: <catalog index>   data: {"index":N}
//
// A client resuming with Last-Event-ID (or ?since=N) first gets the
// changes it missed; "reset" means the log no longer holds them all, and
// the client should read the whole state again (GET /v1/dashboard).
func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) {
	after, resume, err := resumeIndex(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many event streams open (at most %d); retry later", cap(a.streams)))
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout would cut the stream: lift it for this
	// response only.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", retryMillis)
	if !resume {
		after = a.feed.current()
	}
	if a.writeStatus(w) != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	for {
		changes, index, next, complete := a.feed.since(after)
		if !complete {
			err = writeEvent(w, "reset", index, map[string]uint64{"index": index})
		}
		for _, c := range changes {
			if err == nil {
				err = writeEvent(w, "change", c.Index, c)
			}
		}
		after = index
		if err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-next:
		case <-tick.C:
			if a.writeStatus(w) != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// resumeIndex reads where a stream resumes: Last-Event-ID, else ?since.
func resumeIndex(r *http.Request) (after uint64, ok bool, err error) {
	v, name := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, name = r.URL.Query().Get("since"), "since"
	}
	if v == "" {
		return 0, false, nil
	}
	if after, err = strconv.ParseUint(v, 10, 64); err != nil {
		return 0, false, fmt.Errorf("%s %q: want a catalog index, the id of an earlier event", name, clip(v))
	}
	return after, true, nil
}

// status is what the status event and the dashboard's cards show.
func (a *API) status() (Status, error) {
	ch, err := a.catalogHealth()
	if err != nil {
		return Status{}, err
	}
	s := Status{Time: a.now().UTC(), Index: ch.Index, Catalog: ch}
	if a.docker != nil {
		s.Docker = a.docker()
	}
	if q := a.rates.get(); len(q.Samples) > 0 {
		s.Queries = &q.Samples[len(q.Samples)-1]
	}
	return s, nil
}

func (a *API) writeStatus(w io.Writer) error {
	s, err := a.status()
	if err != nil {
		a.log.Warn("event stream status", "err", err)
		return nil // the stream goes on; the next tick tries again
	}
	return writeEvent(w, "status", 0, s)
}

// writeEvent writes one event; id 0 writes none (the browser keeps the
// last id it got).
func writeEvent(w io.Writer, event string, id uint64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	if id != 0 {
		_, err = fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", event, id, b)
	} else {
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	}
	return err
}
