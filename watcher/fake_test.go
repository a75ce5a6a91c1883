package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// fakeDocker is a dockerAPI made of functions.
type fakeDocker struct {
	ContainerListFn    func(context.Context, container.ListOptions) ([]container.Summary, error)
	ContainerInspectFn func(context.Context, string) (container.InspectResponse, error)
	EventsFn           func(context.Context, events.ListOptions) (<-chan events.Message, <-chan error)
	NetworkListFn      func(context.Context, network.ListOptions) ([]network.Summary, error)
}

var _ dockerAPI = (*fakeDocker)(nil)

func (f *fakeDocker) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	return f.ContainerListFn(ctx, o)
}

func (f *fakeDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	return f.ContainerInspectFn(ctx, id)
}

func (f *fakeDocker) Events(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error) {
	return f.EventsFn(ctx, o)
}

func (f *fakeDocker) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	return f.NetworkListFn(ctx, o)
}

// errDaemonDown is what every call returns while the fake daemon is down.
//
//lint:ignore ST1005 the daemon's own message, word for word
var errDaemonDown = errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")

// engine is a scripted Docker daemon: containers the test starts, stops and
// removes, and one event stream per subscription, into which the test emits
// events. Like the real daemon, it never emits an event by itself.
type engine struct {
	mu       sync.Mutex
	ctrs     map[string]*container.InspectResponse
	nets     map[string]network.Summary // by id
	netsErr  error                      // what the network list returns, when set
	down     bool
	upNext   bool // down ends at the next subscription (comeUp)
	stream   *fakeStream
	streams  int
	lists    int
	netLists int
	inspects map[string]int
	// Hooks, run inside the calls with mu released.
	onList         func(n int) error                          // before the n-th list reads the containers; an error fails it
	beforeInspect  func(ctx context.Context, id string) error // may block, or fail the inspect
	beforeNetworks func(ctx context.Context) error            // before a network list reads the networks; may block, or fail it
	afterInspect   func(id string)
	// beforeNetList runs after a network list read the networks, before it
	// answers: a daemon that holds its answer. It may block, or fail the
	// list.
	beforeNetList func(ctx context.Context) error
}

type fakeStream struct {
	ctx  context.Context
	opts events.ListOptions
	msgs chan events.Message
	errs chan error
}

func newEngine() *engine {
	return &engine{ctrs: map[string]*container.InspectResponse{}, nets: map[string]network.Summary{}, inspects: map[string]int{}}
}

func (e *engine) api() *fakeDocker {
	return &fakeDocker{
		ContainerListFn: func(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
			e.mu.Lock()
			e.lists++
			n, hook, down := e.lists, e.onList, e.down
			e.mu.Unlock()
			if down {
				return nil, errDaemonDown
			}
			if hook != nil {
				if err := hook(n); err != nil {
					return nil, err
				}
			}
			lf, err := parseFilters(prefixAll("label=", o.Filters.Get("label")))
			if err != nil {
				return nil, err
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			var out []container.Summary
			for _, c := range e.ctrs {
				if c.State.Running && matchLabels(lf, c.Config.Labels) {
					out = append(out, container.Summary{ID: c.ID, Names: []string{c.Name}, Labels: c.Config.Labels, State: c.State.Status})
				}
			}
			return out, nil
		},
		ContainerInspectFn: func(ctx context.Context, id string) (container.InspectResponse, error) {
			e.mu.Lock()
			e.inspects[id]++
			before, after, down := e.beforeInspect, e.afterInspect, e.down
			e.mu.Unlock()
			if down {
				return container.InspectResponse{}, errDaemonDown
			}
			if before != nil {
				if err := before(ctx, id); err != nil {
					return container.InspectResponse{}, err
				}
			}
			e.mu.Lock()
			c, ok := e.ctrs[id]
			var resp container.InspectResponse
			if ok {
				resp = clone(c)
			}
			e.mu.Unlock()
			if after != nil {
				after(id)
			}
			if !ok {
				return resp, fmt.Errorf("Error response from daemon: No such container: %s: %w", id, cerrdefs.ErrNotFound)
			}
			return resp, nil
		},
		NetworkListFn: func(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
			e.mu.Lock()
			hook := e.beforeNetworks
			e.mu.Unlock()
			if hook != nil {
				if err := hook(ctx); err != nil {
					return nil, err
				}
			}
			e.mu.Lock()
			e.netLists++
			hook = e.beforeNetList
			if e.down {
				e.mu.Unlock()
				return nil, errDaemonDown
			}
			if e.netsErr != nil {
				defer e.mu.Unlock()
				return nil, e.netsErr
			}
			out := make([]network.Summary, 0, len(e.nets))
			for _, n := range e.nets {
				out = append(out, n)
			}
			e.mu.Unlock()
			if hook != nil {
				if err := hook(ctx); err != nil {
					return nil, err
				}
			}
			return out, nil
		},
		EventsFn: func(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error) {
			s := &fakeStream{ctx: ctx, opts: o, msgs: make(chan events.Message), errs: make(chan error, 1)}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.streams++
			if e.upNext {
				e.down, e.upNext = false, false
			}
			if e.down {
				s.errs <- errDaemonDown
				return s.msgs, s.errs
			}
			e.stream = s
			return s.msgs, s.errs
		},
	}
}

func prefixAll(p string, list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = p + s
	}
	return out
}

// clone deep-copies an inspect response, as a new GET would return.
func clone(c *container.InspectResponse) container.InspectResponse {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	var out container.InspectResponse
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// ctrID is the 64-hex container ID of test container n.
func ctrID(n int) string { return fmt.Sprintf("%064x", n) }

// newCtr is a running container on the default bridge exposing 8080/tcp.
func newCtr(n int, name string, labels ...string) *container.InspectResponse {
	c := &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID:         ctrID(n),
			Name:       "/" + name,
			Image:      "sha256:" + fmt.Sprintf("%064x", 1000+n),
			State:      &container.State{Status: container.StateRunning, Running: true},
			HostConfig: &container.HostConfig{NetworkMode: "default"},
		},
		Config: &container.Config{
			Image:        "example/" + name + ":1",
			Labels:       map[string]string{},
			ExposedPorts: nat.PortSet{"8080/tcp": {}},
		},
		NetworkSettings: &container.NetworkSettings{
			Networks: map[string]*network.EndpointSettings{
				"bridge": {IPAddress: fmt.Sprintf("172.17.%d.%d", n/250, n%250+2), IPPrefixLen: 16},
			},
		},
	}
	for i := 0; i+1 < len(labels); i += 2 {
		c.Config.Labels[labels[i]] = labels[i+1]
	}
	return c
}

// addNetwork creates a network on the engine (no event: the test emits
// it). scope "swarm" with driver "overlay" is an attachable overlay, as a
// swarm node lists it.
func (e *engine) addNetwork(id, name, driver, scope string, subnets ...string) {
	n := network.Summary{ID: id, Name: name, Driver: driver, Scope: scope}
	for _, s := range subnets {
		n.IPAM.Config = append(n.IPAM.Config, network.IPAMConfig{Subnet: s})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nets[id] = n
}

// attach puts container id on network name (id netID) at ip/bits.
func (e *engine) attach(id, name, netID, ip string, bits int) {
	e.mutate(id, func(c *container.InspectResponse) {
		c.NetworkSettings.Networks[name] = &network.EndpointSettings{NetworkID: netID, IPAddress: ip, IPPrefixLen: bits}
	})
}

// set changes the engine's containers under its lock.
func (e *engine) set(f func(ctrs map[string]*container.InspectResponse)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.ctrs)
}

func (e *engine) run(c *container.InspectResponse) {
	e.set(func(m map[string]*container.InspectResponse) {
		c.State.Running, c.State.Paused, c.State.Status = true, false, container.StateRunning
		m[c.ID] = c
	})
}

func (e *engine) mutate(id string, f func(c *container.InspectResponse)) {
	e.set(func(m map[string]*container.InspectResponse) { f(m[id]) })
}

func (e *engine) setDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// comeUp ends down at the next event subscription: the attempt that
// subscribes finds the daemon up in every call, as when the daemon is back
// between two attempts. (setDown(false) during an attempt whose stream
// has already failed lets its list succeed, then the stream's error ends
// it: one more reconnect and resync, which a test counting them must not
// race with.)
func (e *engine) comeUp() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.upNext = true
}

func (e *engine) counts() (streams, lists int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.streams, e.lists
}

func (e *engine) inspected(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inspects[id]
}

func (e *engine) current() *fakeStream {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stream
}

// emit sends one event on the current stream, as the daemon would; it
// returns once the watcher has read it.
func (e *engine) emit(typ events.Type, action, actorID string, attrs ...string) error {
	s := e.current()
	if s == nil {
		return errors.New("no event stream")
	}
	m := events.Message{Type: typ, Action: events.Action(action), Actor: events.Actor{ID: actorID, Attributes: map[string]string{}}, Time: time.Now().Unix()}
	for i := 0; i+1 < len(attrs); i += 2 {
		m.Actor.Attributes[attrs[i]] = attrs[i+1]
	}
	select {
	case s.msgs <- m:
		return nil
	case <-s.ctx.Done():
		return fmt.Errorf("stream closed: %w", s.ctx.Err())
	case <-time.After(10 * time.Second):
		return errors.New("nobody reads the event stream")
	}
}

// breakStream ends the current stream with err, as a daemon restart does.
func (e *engine) breakStream(err error) {
	if s := e.current(); s != nil {
		s.errs <- err
	}
}
