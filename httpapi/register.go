package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// PUT /v1/instances/{id}
func (a *API) handleRegister(w http.ResponseWriter, r *http.Request) {
	id, err := catalog.NormalizeLabel(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "instance id: "+err.Error())
		return
	}
	var reg Registration
	if err := decodeBody(w, r, &reg); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	inst, err := newInstance(id, reg, a.node, a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	old, err := a.cat.Instance(id)
	switch {
	case err == nil && old.Source != catalog.SourceAPI:
		writeError(w, http.StatusConflict, fmt.Sprintf("instance id %q is taken by a %s instance; choose another id", id, old.Source))
		return
	case err != nil && !errors.Is(err, catalog.ErrNotFound):
		a.internalError(w, r, err)
		return
	case err != nil:
		old = nil
	}
	idx, err := a.cat.RegisterInstance(inst)
	if err != nil {
		switch {
		case errors.Is(err, catalog.ErrConflict):
			// A Docker instance took the id since the check above.
			writeError(w, http.StatusConflict, fmt.Sprintf("instance id %q is taken by a docker instance; choose another id", id))
		case errors.Is(err, catalog.ErrInvalid):
			writeError(w, http.StatusBadRequest, err.Error())
		default:
			a.internalError(w, r, err)
		}
		return
	}

	attrs := []any{"id", id, "service", inst.Service, "address", inst.HostIP, "port", inst.Port, "protocol", inst.Protocol, "index", idx}
	if inst.TTL > 0 {
		attrs = append(attrs, "ttl", inst.TTL)
	}
	switch {
	case old == nil:
		a.log.Info("instance registered", attrs...)
	case sameButExpiry(old, inst):
		// A TTL heartbeat: no state change worth a line at INFO.
		a.log.Debug("instance refreshed", attrs...)
	default:
		a.log.Info("instance updated", attrs...)
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, instanceJSON(inst))
}

// DELETE /v1/instances/{id}
func (a *API) handleDeregister(w http.ResponseWriter, r *http.Request) {
	id, err := catalog.NormalizeLabel(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "instance id: "+err.Error())
		return
	}
	old, _ := a.cat.Instance(id) // only for the log line
	idx, err := a.cat.DeregisterInstance(id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no instance %q registered through the API", id))
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	attrs := []any{"id", id, "index", idx}
	if old != nil {
		attrs = append(attrs, "service", old.Service, "address", old.HostIP)
	}
	a.log.Info("instance deregistered", attrs...)
	setIndex(w, idx)
	w.WriteHeader(http.StatusNoContent)
}

// newInstance checks a registration and builds the catalog instance for id
// (already a DNS label). Its errors say what is wrong, for a 400.
func newInstance(id string, reg Registration, node string, now time.Time) (*catalog.Instance, error) {
	if reg.Service == "" {
		return nil, errors.New(`service is required: one DNS label such as "books-ms"`)
	}
	service, err := catalog.NormalizeLabel(reg.Service)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	addr, err := parseAddress(reg.Address)
	if err != nil {
		return nil, err
	}
	if reg.Port == 0 {
		return nil, errors.New("port is required: 1-65535")
	}
	if reg.Port < 1 || reg.Port > 65535 {
		return nil, fmt.Errorf("port %d: want 1-65535", reg.Port)
	}
	proto := strings.ToLower(reg.Protocol)
	switch proto {
	case "":
		proto = catalog.ProtoTCP
	case catalog.ProtoTCP, catalog.ProtoUDP:
	default:
		return nil, fmt.Errorf("protocol %q: want tcp or udp", clip(reg.Protocol))
	}
	tags, err := normalizeTags(reg.Tags)
	if err != nil {
		return nil, err
	}
	var ttl time.Duration
	if reg.TTL != "" {
		if ttl, err = time.ParseDuration(reg.TTL); err != nil {
			return nil, fmt.Errorf("ttl %q: want a duration such as \"30s\", or none", clip(reg.TTL))
		}
		if ttl < MinTTL || ttl > MaxTTL {
			return nil, fmt.Errorf("ttl %q: want %s to %s", clip(reg.TTL), fmtDuration(MinTTL), fmtDuration(MaxTTL))
		}
	}
	route, err := proxyRoute(reg.Proxy)
	if err != nil {
		return nil, err
	}
	var metrics *catalog.MetricsEndpoint
	if m := reg.Metrics; m != nil {
		if metrics, err = catalog.ParseMetricsEndpoint(strconv.Itoa(int(m.Port)), m.Path); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	port := uint16(reg.Port)
	inst := &catalog.Instance{
		ID:       id,
		Service:  service,
		Tags:     tags,
		Protocol: proto,
		Port:     port,
		Addrs:    []catalog.NetAddr{{Prefix: netip.PrefixFrom(addr, addr.BitLen())}},
		// The address is also the "published" one, so that every view of
		// --address-mode (container, host, auto) answers it.
		HostIP:        addr,
		HostPort:      port,
		ContainerID:   catalog.APIContainerID(id),
		ContainerName: id,
		Target:        id,
		Node:          node,
		Source:        catalog.SourceAPI,
		Passing:       true,
		TTL:           ttl,
		Proxy:         route,
		Metrics:       metrics,
	}
	if ttl > 0 {
		inst.Expires = now.Add(ttl)
	}
	return inst, nil
}

// proxyRoute checks a registration's proxy route, as the watcher checks
// the SERVICE_PROXY_* labels.
func proxyRoute(p *Proxy) (*catalog.ProxyRoute, error) {
	if p == nil {
		return nil, nil
	}
	if len(p.Paths) == 0 && p.Host == "" {
		return nil, errors.New(`proxy: give paths (["/api/v1/books"]), a host, or both`)
	}
	r := &catalog.ProxyRoute{Strip: p.Strip}
	if len(p.Paths) > 0 {
		for i, path := range p.Paths {
			if strings.Contains(path, ",") {
				return nil, fmt.Errorf("proxy.paths[%d] %q: one path per item, no commas", i, clip(path))
			}
		}
		paths, err := catalog.ParseProxyPaths(strings.Join(p.Paths, ","))
		if err != nil {
			return nil, fmt.Errorf("proxy.paths: %w", err)
		}
		r.Paths = paths
	}
	if p.Host != "" {
		host, err := catalog.NormalizeProxyHost(p.Host)
		if err != nil {
			return nil, fmt.Errorf("proxy.host: %w", err)
		}
		r.Host = host
	}
	return r, nil
}

func parseAddress(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errors.New("address is required: an IPv4 or IPv6 address")
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: not an IPv4 or IPv6 address", clip(s))
	}
	switch {
	case addr.Zone() != "":
		return netip.Addr{}, fmt.Errorf("address %q: a zone (%%%s) cannot be given in DNS", clip(s), addr.Zone())
	case addr.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("address %q: the unspecified address cannot be connected to", clip(s))
	case addr.IsMulticast():
		return netip.Addr{}, fmt.Errorf("address %q: a multicast address is not allowed", clip(s))
	}
	return addr.Unmap(), nil
}

// normalizeTags lower-cases, checks, sorts and deduplicates tags.
func normalizeTags(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(in))
	for i, t := range in {
		l, err := catalog.NormalizeLabel(t)
		if err != nil {
			return nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxTags {
		return nil, fmt.Errorf("tags: %d distinct tags, at most %d are allowed", len(out), MaxTags)
	}
	return out, nil
}

// sameButExpiry reports whether b differs from a at most in its expiry
// time: a TTL heartbeat.
func sameButExpiry(a, b *catalog.Instance) bool {
	c := *a
	c.Expires = b.Expires
	return reflect.DeepEqual(&c, b)
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// (the scheme is case-insensitive, RFC 9110).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func constantTimeEqual(a, b [sha256.Size]byte) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
