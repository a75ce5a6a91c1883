package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// The wire types below are the JSON the API speaks; Go clients may decode
// into them.

// Service is one element of GET /v1/services.
type Service struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"` // all registered instances
	Passing   int    `json:"passing"`   // instances answered in DNS
}

// Network is one address of a container (or API instance) on one network.
type Network struct {
	Network   string `json:"network"` // "" for an API instance
	Address   string `json:"address"`
	PrefixLen int    `json:"prefix_len"`
	// SpansHosts: a network that spans Docker hosts (an overlay), on
	// which other hosts' clients reach the address too.
	SpansHosts bool `json:"spans_hosts,omitempty"`
}

// Instance is one element of GET /v1/services/{name}, and the answer to
// PUT /v1/instances/{id}.
type Instance struct {
	ID       string   `json:"id"`
	Service  string   `json:"service"`
	Tags     []string `json:"tags"` // [] when none
	Protocol string   `json:"protocol"`
	Port     uint16   `json:"port"`
	PortName string   `json:"port_name"`
	// Address is the first container address, or the API address; "" for
	// a container with no network of its own (host network mode).
	Address  string    `json:"address"`
	Networks []Network `json:"networks"` // [] when none
	// HostAddress and HostPort are the published address; omitted when
	// the port is not published.
	HostAddress   string `json:"host_address,omitempty"`
	HostPort      uint16 `json:"host_port,omitempty"`
	ContainerID   string `json:"container_id"` // 64 hex digits, or "api/<id>"
	ContainerName string `json:"container_name"`
	// Node is the svcdns node the instance is on: the node whose Docker
	// host runs its container, or whose API received its registration.
	Node string `json:"node"`
	// Owner is the node whose records hold the instance, the only node
	// that may change or delete it; in a cluster, this node for its own
	// instances and the peer for a peer's. Records never change owner, so
	// it is always Node.
	Owner   string    `json:"owner"`
	Source  string    `json:"source"` // "docker" or "api"
	Passing bool      `json:"passing"`
	Expires time.Time `json:"expires,omitzero"`  // UTC, RFC 3339; omitted when it never expires
	TTL     string    `json:"ttl,omitempty"`     // a Go duration such as "30s"; omitted when none
	Proxy   *Proxy    `json:"proxy,omitempty"`   // the HTTP proxy's route to it; omitted when none
	Metrics *Metrics  `json:"metrics,omitempty"` // its Prometheus endpoint; omitted when not opted in
}

// Metrics is where an instance serves Prometheus metrics: the labels
// SERVICE_METRICS_PORT and SERVICE_METRICS_PATH. GET /v1/prometheus lists it.
type Metrics struct {
	Port uint16 `json:"port"`
	Path string `json:"path,omitempty"` // default /metrics
}

// Proxy is an instance's route through svcdns's HTTP proxy: the labels
// SERVICE_PROXY_PATH, SERVICE_PROXY_HOST and SERVICE_PROXY_STRIP.
type Proxy struct {
	Paths []string `json:"paths,omitempty"` // absolute path prefixes; the longest match wins
	Host  string   `json:"host,omitempty"`  // the Host header to match; "" = any
	Strip bool     `json:"strip,omitempty"` // remove the matched prefix before forwarding
}

// Container is one element of GET /v1/containers.
type Container struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Node        string    `json:"node"`
	Owner       string    `json:"owner"` // as Instance.Owner
	Source      string    `json:"source"`
	Networks    []Network `json:"networks"`
	HostAddress string    `json:"host_address,omitempty"`
	Passing     bool      `json:"passing"`
}

// Registration is the body of PUT /v1/instances/{id}.
type Registration struct {
	Service  string   `json:"service"`            // one DNS label; upper case is lowered
	Address  string   `json:"address"`            // IPv4 or IPv6
	Port     int      `json:"port"`               // 1-65535
	Protocol string   `json:"protocol,omitempty"` // "tcp" (default) or "udp"
	Tags     []string `json:"tags,omitempty"`     // DNS labels, at most MaxTags
	TTL      string   `json:"ttl,omitempty"`      // "" = never expires; else MinTTL to MaxTTL, e.g. "30s"
	Proxy    *Proxy   `json:"proxy,omitempty"`    // a route through the HTTP proxy; needs paths or host
	Metrics  *Metrics `json:"metrics,omitempty"`  // a Prometheus endpoint at the address, for GET /v1/prometheus
}

// Health is the answer of GET /healthz.
type Health struct {
	Status  string        `json:"status"` // "ok", "degraded" (Docker lost, serving what it last saw) or "syncing"
	Docker  DockerStatus  `json:"docker"` // null when svcdns runs without Docker
	Catalog CatalogHealth `json:"catalog"`
	// Cluster counts the cluster's nodes by state ("alive", "suspect",
	// "dead", "left"), this node included; omitted when clustering is off.
	Cluster map[string]int `json:"cluster,omitempty"`
}

// CatalogHealth counts what the catalog holds.
type CatalogHealth struct {
	Index      uint64 `json:"index"`
	Services   int    `json:"services"`
	Instances  int    `json:"instances"`
	Passing    int    `json:"passing"`
	Containers int    `json:"containers"`
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}

// Health states.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
	StatusSyncing  = "syncing"
)

func networksJSON(addrs []catalog.NetAddr) []Network {
	out := make([]Network, 0, len(addrs))
	for _, a := range addrs {
		if !a.Prefix.IsValid() {
			continue
		}
		out = append(out, Network{Network: a.Network, Address: a.Addr().String(), PrefixLen: a.Prefix.Bits(), SpansHosts: a.SpansHosts})
	}
	return out
}

func instanceJSON(in *catalog.Instance) Instance {
	out := Instance{
		ID:            in.ID,
		Service:       in.Service,
		Tags:          in.Tags,
		Protocol:      in.Protocol,
		Port:          in.Port,
		PortName:      in.PortName,
		Networks:      networksJSON(in.Addrs),
		ContainerID:   in.ContainerID,
		ContainerName: in.ContainerName,
		Node:          in.Node,
		Owner:         in.Node, // the catalog keeps records by their owner node
		Source:        string(in.Source),
		Passing:       in.Passing,
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if len(out.Networks) > 0 {
		out.Address = out.Networks[0].Address
	}
	if in.Published() {
		out.HostAddress, out.HostPort = in.HostIP.String(), in.HostPort
	}
	if !in.Expires.IsZero() {
		out.Expires = in.Expires.UTC()
	}
	if in.TTL > 0 {
		out.TTL = in.TTL.String()
	}
	if r := in.Proxy; r != nil {
		out.Proxy = &Proxy{Paths: r.Paths, Host: r.Host, Strip: r.Strip}
	}
	if m := in.Metrics; m != nil {
		out.Metrics = &Metrics{Port: m.Port, Path: m.Path}
	}
	return out
}

func containerJSON(c *catalog.Container) Container {
	out := Container{
		ID:       c.ID,
		Name:     c.Name,
		Node:     c.Node,
		Owner:    c.Node,
		Source:   string(c.Source),
		Networks: networksJSON(c.Addrs),
		Passing:  c.Passing,
	}
	if c.HostIP.IsValid() {
		out.HostAddress = c.HostIP.String()
	}
	return out
}

// writeJSON answers code with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own wire types come here; they always marshal.
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// A write error means the client went away; there is no one to tell.
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers code with {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}

// clip shortens a client's value before it is echoed in a message.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// errBodyTooLarge is returned by decodeBody for a body over MaxBodyBytes.
var errBodyTooLarge = fmt.Errorf("body larger than %d bytes", MaxBodyBytes)

// decodeBody decodes exactly one JSON value from r's body (at most
// MaxBodyBytes) into v, refusing fields v lacks. Its errors say what is
// wrong with the body, for a 400; errBodyTooLarge is a 413.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > MaxBodyBytes {
		return errBodyTooLarge
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("body holds more than one JSON value; send exactly one object")
	default:
		if e := bodyError(err); errors.Is(e, errBodyTooLarge) {
			return e
		}
		return errors.New("body holds more than one JSON value; send exactly one object")
	}
}

func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.Is(err, io.EOF):
		return errors.New(`empty body; send a JSON object such as {"service":"books-ms","address":"10.0.0.1","port":8080}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body is not valid JSON: it ends before the value does")
	case errors.As(err, &syntax):
		return fmt.Errorf("body is not valid JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("body is a JSON %s; send a JSON object", typ.Value)
		}
		return fmt.Errorf("field %q: got a JSON %s, want %s", typ.Field, typ.Value, kindName(typ.Type))
	default:
		// DisallowUnknownFields: `json: unknown field "x"`.
		return fmt.Errorf("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Slice:
		return "array of " + kindName(t.Elem()) + "s"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}
