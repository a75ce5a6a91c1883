package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/svcdns/svcdns/catalog"
)

// dockerAPI is the part of the Docker Engine API the watcher uses. Each
// call is one GET: /containers/json, /containers/{id}/json, /networks and
// /events (the real client adds /_ping once to negotiate the API version). Nothing
// here ever writes to the daemon, so svcdns runs behind a read-only socket
// proxy.
//
// Implementations are safe for concurrent use. Events delivers messages in
// the daemon's order until the stream ends, then one error (io.EOF when the
// daemon closed it, ctx.Err() when ctx was cancelled) on the error channel;
// cancelling ctx releases everything it holds.
type dockerAPI interface {
	ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	Events(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error)
	NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error)
}

var _ dockerAPI = (*client.Client)(nil)

// newDockerClient returns a client for host, or for DOCKER_HOST (and the
// other DOCKER_* variables), or for the local socket. It does not connect:
// a daemon that is not there yet is found by Run's retries.
func newDockerClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	// Last, so that they apply to whichever transport FromEnv (a TLS one
	// for DOCKER_CERT_PATH) and WithHost left in place.
	opts = append(opts,
		keepIdleConns(maxInspects+1), // every inspect slot of the limiter, and the list
		client.WithTraceOptions(otelhttp.WithFilter(noTracing)),
	)
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	return cli, nil
}

// noTracing turns off the OpenTelemetry instrumentation the client wraps
// around every request: svcdns installs no OpenTelemetry provider, so the
// spans and metric attributes it builds are thrown away, and building them
// took a quarter of the client's CPU per inspect.
func noTracing(*http.Request) bool { return false }

// keepIdleConns lets the client keep n idle connections to the daemon. Its
// default keeps 2 (http.DefaultMaxIdleConnsPerHost), so with more inspects
// in flight every other request closed its connection and the next one
// dialled a new one, on both ends. The client's 30 s idle timeout still
// closes them after a sync (moby/moby#45539).
func keepIdleConns(n int) client.Opt {
	return func(c *client.Client) error {
		// HTTPClient returns a copy of the http.Client, but the Transport
		// in it is the client's own, not yet wrapped for tracing.
		if tr, ok := c.HTTPClient().Transport.(*http.Transport); ok {
			tr.MaxIdleConns = n
			tr.MaxIdleConnsPerHost = n
		}
		return nil
	}
}

// Container events that may change what a container answers. create is not
// one (a created container is not running); exec_* events, which every
// health probe emits three of, are left out on purpose.
var watchedActions = []events.Action{
	events.ActionStart, events.ActionDie, events.ActionStop, events.ActionKill,
	events.ActionPause, events.ActionUnPause, events.ActionDestroy, events.ActionRename,
	// The daemon matches health_status as a prefix: the actions read
	// "health_status: healthy" (moby/moby#25798).
	events.ActionHealthStatus,
	// Network events: a container joined or left a network; a network
	// was created or removed (its scope decides how a peer's containers
	// on it are answered). The daemon matches actions across types, so
	// containers' create events come too: decodeEvent drops them.
	events.ActionConnect, events.ActionDisconnect, events.ActionCreate, events.ActionRemove,
}

// eventsSince is how far back a new subscription asks the daemon to replay.
// The daemon writes the response headers before it subscribes, so without a
// replay an event published in between would be lost; replaying a few
// seconds is harmless because every event only says "look at X again".
const eventsSince = 2 * time.Second

// eventOptions subscribes to the container and network events the watcher
// acts on. The label filters are deliberately not sent: the daemon matches
// them against the event's attributes, and network connect events carry
// the network's, not the container's, so a label filter would hide them.
// The container inspected afterwards is matched against the filters here.
func eventOptions(now time.Time) events.ListOptions {
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
	)
	for _, a := range watchedActions {
		args.Add("event", string(a))
	}
	return events.ListOptions{
		Since:   strconv.FormatInt(now.Add(-eventsSince).Unix(), 10),
		Filters: args,
	}
}

// listOptions lists the running (and paused) containers that match the
// label filters. All stays false: stopped containers are never answered.
func listOptions(lf []labelFilter) container.ListOptions {
	args := filters.NewArgs()
	for _, f := range lf {
		args.Add("label", f.String())
	}
	return container.ListOptions{Filters: args}
}

// Causes of a failed list or inspect, the cause label of
// inspect_errors_total and the keys of Status.InspectFailures.
const (
	causeRefused = "refused"      // no connection, or it was dropped before an answer
	causeTimeout = "timeout"      // no answer within callTimeout
	causeServer  = "server_error" // an HTTP 5xx answer
	causeOther   = "other"        // anything else (a 4xx, an answer that does not decode)
)

// failure is a failed Docker call and its cause.
type failure struct {
	cause string
	err   error
}

// classify sorts a failed call by cause. The client reports a refused,
// dropped or timed-out dial as "Cannot connect to the Docker daemon"; a
// unix socket whose listen backlog is full refuses with EAGAIN.
func classify(err error) failure {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return failure{causeTimeout, err}
	// Before net.Error's Timeout, which EAGAIN also answers true.
	case client.IsErrConnectionFailed(err), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EAGAIN),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failure{causeRefused, err}
	case errors.As(err, &ne) && ne.Timeout():
		return failure{causeTimeout, err}
	case cerrdefs.IsInternal(err), cerrdefs.IsUnavailable(err):
		return failure{causeServer, err}
	}
	return failure{causeOther, err}
}

// overloaded reports whether f is how an overloaded endpoint fails, which
// the limiter backs off from.
func (f failure) overloaded() bool { return f.cause != causeOther }

// errGone is what inspect returns for a container the daemon does not
// know (any more): removed between the event or list and the inspect.
var errGone = errors.New("no such container")

// daemon is the Docker host in the watcher's own terms: container ids,
// mapped containers and decoded events. Its methods are safe for
// concurrent use; each list and inspect is bounded by callTimeout.
type daemon struct {
	api     dockerAPI
	filters []labelFilter
	conv    convertOptions
	// nets are the host's networks by id, as the last network list
	// applied gave them; inspects map containers with them.
	nets atomic.Pointer[map[string]*catalog.Network]
}

// list returns the ids of the running containers that match the filters.
func (d *daemon) list(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := d.api.ContainerList(ctx, listOptions(d.filters))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return ids, nil
}

// inspect reads one container and maps it (mapContainer), so that no
// inspect response outlives the call. A container the daemon does not
// know is errGone, whatever the daemon said.
func (d *daemon) inspect(ctx context.Context, id string) (mapped, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := d.api.ContainerInspect(ctx, id)
	switch {
	case err == nil:
		opt := d.conv
		if nets := d.nets.Load(); nets != nil {
			opt.Networks = *nets
		}
		return mapContainer(resp, d.filters, opt), nil
	case cerrdefs.IsNotFound(err):
		return mapped{}, fmt.Errorf("inspect container %s: %w", id, errGone)
	}
	return mapped{}, fmt.Errorf("inspect container %s: %w", id, err)
}

// networks lists the host's networks. It changes nothing: the session
// loop applies the list (useNetworks), in order with the events.
func (d *daemon) networks(ctx context.Context) ([]catalog.Network, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := d.api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return convertNetworks(list), nil
}

// useNetworks keeps nets for the inspects that follow.
func (d *daemon) useNetworks(nets []catalog.Network) {
	byID := make(map[string]*catalog.Network, len(nets))
	for i := range nets {
		byID[nets[i].ID] = &nets[i]
	}
	d.nets.Store(&byID)
}

// listsAny reports whether the networks kept have any of ids.
func (d *daemon) listsAny(ids []string) bool {
	nets := d.nets.Load()
	if nets == nil {
		return false
	}
	for _, id := range ids {
		if _, ok := (*nets)[id]; ok {
			return true
		}
	}
	return false
}

// subscribe opens the event stream, replaying from a moment before now
// (eventsSince). It does not wait for the daemon: a failure to connect is
// the stream's first error.
func (d *daemon) subscribe(ctx context.Context, now time.Time) eventStream {
	msgs, errs := d.api.Events(ctx, eventOptions(now))
	return eventStream{msgs: msgs, errs: errs}
}

// close releases the client's idle connections.
func (d *daemon) close() {
	if c, ok := d.api.(io.Closer); ok {
		_ = c.Close()
	}
}

// eventStream is one subscription to the daemon's events.
type eventStream struct {
	msgs <-chan events.Message
	errs <-chan error
}

// event is what the watcher reads from one Docker event.
type event struct {
	id       string // the container to inspect again; "" when it is about none the watcher tracks
	action   string // the metric label (actionLabel)
	gone     bool   // the event says the container stopped running
	networks bool   // a network was created or removed: list them again
	// signal is the signal a kill event says the container was sent
	// (Linux numbering; 0 for any other event, or one without it): docker
	// stop's comes before the process exits, and may drain it (drain.go).
	signal int
}

// next returns the next event, or why the stream ended: io.EOF when the
// daemon closed it, ctx.Err() when ctx is done.
func (s *eventStream) next(ctx context.Context) (event, error) {
	for {
		select {
		case <-ctx.Done():
			return event{}, ctx.Err()
		case err, ok := <-s.errs:
			if !ok || err == nil {
				return event{}, io.EOF
			}
			return event{}, err
		case m, ok := <-s.msgs:
			if !ok {
				s.msgs = nil // wait for the error
				continue
			}
			return decodeEvent(m), nil
		}
	}
}

// decodeEvent reads the container an event is about and whether it says
// the container stopped running, so its answers can go before an inspect
// confirms it.
func decodeEvent(m events.Message) event {
	ev := event{action: actionLabel(string(m.Action))}
	var id string
	switch m.Type {
	case events.ContainerEventType:
		id = m.Actor.ID
		if id == "" {
			//lint:ignore SA1019 older daemons fill only the deprecated field
			id = m.ID
		}
		switch m.Action {
		case events.ActionDie, events.ActionStop, events.ActionDestroy, events.ActionPause, events.ActionOOM:
			ev.gone = true
		case events.ActionCreate:
			id = "" // a created container is not running; its start event follows
		case events.ActionKill:
			// The daemon writes the number ("15"); a name is read too.
			ev.signal = parseSignal(m.Actor.Attributes["signal"])
		}
	case events.NetworkEventType:
		switch m.Action {
		case events.ActionConnect, events.ActionDisconnect:
			id = m.Actor.Attributes["container"]
		case events.ActionCreate, events.ActionDestroy, events.ActionRemove:
			ev.networks = true
		}
	}
	if isContainerID(id) {
		ev.id = id
	}
	return ev
}
