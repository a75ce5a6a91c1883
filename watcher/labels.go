package watcher

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/svcdns/svcdns/catalog"
)

// The keys a container configures itself with, as labels or environment
// variables. SERVICE_NAME, SERVICE_TAGS and SERVICE_IGNORE, and their
// SERVICE_<port>_… forms, are Registrator's, so a user moving from
// Registrator keeps them; SERVICE_<port>_PORT_NAME is ours.
const (
	keyPrefix     = "SERVICE_"
	fieldName     = "NAME"
	fieldTags     = "TAGS"
	fieldIgnore   = "IGNORE"
	fieldPortName = "PORT_NAME"
	// The HTTP proxy's route to an instance (see catalog.ProxyRoute).
	fieldProxyPath  = "PROXY_PATH"
	fieldProxyHost  = "PROXY_HOST"
	fieldProxyStrip = "PROXY_STRIP"
	labelComposeSv  = "com.docker.compose.service"
)

// Bounds on what one container can make svcdns store or log.
const (
	maxValueLen  = 253 // bytes read from any label or env value; longer values are rejected
	maxPorts     = 64  // instances per container
	maxNames     = 16  // distinct service names per container
	maxTags      = 32  // tags per instance
	maxProblems  = 16  // rejected names reported per container; the rest are counted in one line
	maxShownName = 64  // bytes of a rejected value quoted in a log line
)

// Reasons a name is rejected: the values of the reason label of
// svcdns_watcher_rejected_names_total.
const (
	reasonEmpty    = "empty"
	reasonTooLong  = "too_long"
	reasonDotted   = "dotted"
	reasonInvalid  = "invalid"
	reasonReserved = "reserved"
	reasonNoName   = "no_name"
	reasonTooMany  = "too_many"
	reasonProxy    = "proxy_label"
)

// reservedNames are the zone's own keywords. A service or tag called so
// would not be ambiguous to svcdns's parser, but reads as one to people and
// to tools that match names by suffix, so they are refused.
var reservedNames = map[string]bool{"service": true, "container": true}

// meta is the SERVICE_* configuration of one container: its labels and the
// SERVICE_* variables of its environment. A label wins over an environment
// variable of the same key.
type meta struct {
	labels map[string]string
	env    map[string]string
}

func newMeta(labels map[string]string, env []string) meta {
	m := meta{labels: labels}
	for _, kv := range env {
		if !strings.HasPrefix(kv, keyPrefix) {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if m.env == nil {
			m.env = make(map[string]string)
		}
		m.env[k] = v // as in a shell, the last definition wins
	}
	return m
}

// setting is one configuration value and where it came from.
type setting struct {
	Value  string
	Source string // "label SERVICE_NAME", "env SERVICE_8080_TAGS", "image", …
}

// lookup returns key's value, from a label if there is one, else from the
// environment.
func (m meta) lookup(key string) (setting, bool) {
	if v, ok := m.labels[key]; ok {
		return setting{Value: v, Source: "label " + key}, true
	}
	if v, ok := m.env[key]; ok {
		return setting{Value: v, Source: "env " + key}, true
	}
	return setting{}, false
}

// portKey is SERVICE_<port>_<field>; port 0 (a container without ports) has
// no port keys.
func portKey(port uint16, field string) string {
	return keyPrefix + strconv.Itoa(int(port)) + "_" + field
}

// forPort returns the port's own SERVICE_<port>_<field> if it is set, else
// SERVICE_<field>. As in Registrator, a port's value replaces the
// container's, it is not merged with it.
func (m meta) forPort(port uint16, field string) (setting, bool) {
	if port != 0 {
		if s, ok := m.lookup(portKey(port, field)); ok {
			return s, true
		}
	}
	return m.lookup(keyPrefix + field)
}

// ignored reports whether an IGNORE value asks to leave something out: any
// non-empty value but false, 0, no and off (in any case).
func ignored(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0", "no", "off":
		return false
	}
	return true
}

// labelError is a rejected name: why (a metric reason) and what is wrong.
type labelError struct {
	Reason string
	Err    error
}

func (e *labelError) Error() string { return e.Err.Error() }
func (e *labelError) Unwrap() error { return e.Err }

// errNotLabel wraps catalog.ErrInvalid for names svcdns cannot answer.
var errNotLabel = fmt.Errorf("%w name", catalog.ErrInvalid)

// parseLabel turns a configured value into a lower-case DNS label, or says
// why it cannot be one. Bytes outside ASCII are refused before lower-casing:
// strings.ToLower maps some of them to ASCII (the Kelvin sign U+212A becomes
// "k"), which would let a look-alike name through.
func parseLabel(v string) (string, *labelError) {
	switch {
	case len(v) > maxValueLen:
		return "", &labelError{reasonTooLong, fmt.Errorf("%w: value of %d bytes, at most %d are read", errNotLabel, len(v), maxValueLen)}
	case v == "":
		return "", &labelError{reasonEmpty, fmt.Errorf("%w: empty", errNotLabel)}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x80 || c < 0x20 || c == 0x7f {
			return "", &labelError{reasonInvalid, fmt.Errorf("%w %s: control or non-ASCII byte 0x%02x", errNotLabel, quote(v), c)}
		}
	}
	l, err := catalog.NormalizeLabel(v)
	if err != nil {
		reason := reasonInvalid
		switch {
		case strings.Contains(v, "."):
			reason = reasonDotted
		case len(v) > catalog.MaxLabelLen:
			reason = reasonTooLong
		}
		return "", &labelError{reason, err}
	}
	if reservedNames[l] {
		return "", &labelError{reasonReserved, fmt.Errorf("%w %s: reserved for the zone's own names", errNotLabel, quote(v))}
	}
	return l, nil
}

// parseTags splits a comma-separated tag list into lower-case labels, in
// order and without duplicates. Empty items (a trailing comma) are skipped
// quietly; invalid ones are returned as errors and left out.
func parseTags(v string) ([]string, []*labelError) {
	if len(v) > maxValueLen {
		_, err := parseLabel(v) // the too-long error
		return nil, []*labelError{err}
	}
	var tags []string
	var errs []*labelError
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		t, err := parseLabel(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(tags) == maxTags {
			errs = append(errs, &labelError{reasonTooMany, fmt.Errorf("%w: more than %d tags, %s and later ones dropped", errNotLabel, maxTags, quote(item))})
			break
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags, errs
}

// parsePortName checks a SERVICE_<port>_PORT_NAME. A name made only of
// digits is refused: _<name>._tcp queries would take it for a port number.
func parsePortName(v string) (string, *labelError) {
	l, err := parseLabel(v)
	if err != nil {
		return "", err
	}
	if strings.Trim(l, "0123456789") == "" {
		return "", &labelError{reasonInvalid, fmt.Errorf("%w %s: a port name must not be a number", errNotLabel, quote(v))}
	}
	return l, nil
}

// proxyRoute reads an instance's proxy route: SERVICE_<port>_PROXY_PATH,
// _HOST and _STRIP, or the container's SERVICE_PROXY_* when the port has
// none of its own and is the container's first tcp port (a route on every
// port would send requests to the wrong one). A malformed value drops the
// whole route, with a problem saying why: half a route would send
// requests where the user did not ask.
func proxyRoute(m meta, pt port, firstTCP bool, p *problems) *catalog.ProxyRoute {
	if pt.Proto != catalog.ProtoTCP {
		return nil
	}
	get := func(field string) (setting, bool) {
		if pt.Num != 0 {
			if s, ok := m.lookup(portKey(pt.Num, field)); ok {
				return s, true
			}
		}
		if !firstTCP {
			return setting{}, false
		}
		return m.lookup(keyPrefix + field)
	}
	pathSet, hasPath := get(fieldProxyPath)
	hostSet, hasHost := get(fieldProxyHost)
	stripSet, hasStrip := get(fieldProxyStrip)
	if !hasPath && !hasHost {
		if hasStrip {
			p.add(reasonProxy, fmt.Sprintf("%s without a proxy path or host for port %s: no proxy route", stripSet.Source, pt))
		}
		return nil
	}
	r := &catalog.ProxyRoute{}
	var err error
	if hasPath {
		if len(pathSet.Value) > maxValueLen*4 {
			p.add(reasonProxy, fmt.Sprintf("%s for port %s: value of %d bytes, no proxy route", pathSet.Source, pt, len(pathSet.Value)))
			return nil
		}
		if r.Paths, err = catalog.ParseProxyPaths(pathSet.Value); err != nil {
			p.add(reasonProxy, fmt.Sprintf("%s for port %s: no proxy route: %v", pathSet.Source, pt, err))
			return nil
		}
	}
	if hasHost {
		if r.Host, err = catalog.NormalizeProxyHost(hostSet.Value); err != nil {
			p.add(reasonProxy, fmt.Sprintf("%s for port %s: no proxy route: %v", hostSet.Source, pt, err))
			return nil
		}
	}
	if hasStrip {
		b, err := strconv.ParseBool(strings.TrimSpace(stripSet.Value))
		if err != nil {
			p.add(reasonProxy, fmt.Sprintf("%s for port %s: %s is not true or false, no proxy route", stripSet.Source, pt, quote(stripSet.Value)))
			return nil
		}
		r.Strip = b
	}
	return r
}

// imageBaseName is the last path component of an image reference, without
// tag or digest: vfarcic/books-ms:1.2 gives books-ms and
// registry:5000/a/b@sha256:… gives b. imageID is the container's image ID
// ("sha256:<hex>"); a reference that is only (a prefix of) that ID names
// nothing, and ok is false.
func imageBaseName(ref, imageID string) (name string, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "sha256:") {
		return "", false
	}
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		ref = ref[i+1:]
	}
	// After the last slash a colon can only start the tag: a registry's
	// port is in an earlier component.
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	if ref == "" {
		return "", false
	}
	if isHex(ref) && (len(ref) == 64 || strings.HasPrefix(strings.TrimPrefix(imageID, "sha256:"), ref)) {
		return "", false
	}
	return ref, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// isContainerID reports whether s is a full Docker container ID (64 lower
// hex digits). IDs from events are checked before they go into a URL.
func isContainerID(s string) bool { return len(s) == 64 && isHex(s) }

// quote quotes a value for a log line, cut to a readable length.
func quote(v string) string {
	if len(v) > maxShownName {
		return strconv.Quote(v[:maxShownName]) + "…"
	}
	return strconv.Quote(v)
}
