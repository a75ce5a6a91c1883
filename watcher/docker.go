package watcher

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// dockerAPI is the part of the Docker Engine API the watcher uses. Each
// call is one GET: /containers/json, /containers/{id}/json and /events
// (the real client adds /_ping once to negotiate the API version). Nothing
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
		keepIdleConns(syncConcurrency+1), // the inspect workers and the list
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
	// Network events: a container joined or left a network.
	events.ActionConnect, events.ActionDisconnect,
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

// eventContainer returns the container an event is about, or "" when it is
// about none the watcher tracks.
func eventContainer(m events.Message) string {
	var id string
	switch m.Type {
	case events.ContainerEventType:
		id = m.Actor.ID
		if id == "" {
			id = m.ID //nolint:staticcheck // older daemons fill only the deprecated field
		}
	case events.NetworkEventType:
		if m.Action == events.ActionConnect || m.Action == events.ActionDisconnect {
			id = m.Actor.Attributes["container"]
		}
	}
	if !isContainerID(id) {
		return ""
	}
	return id
}
