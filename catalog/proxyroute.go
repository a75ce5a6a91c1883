package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// ProxyRoute says where svcdns's HTTP proxy sends requests to an instance:
// requests whose path starts with one of Paths (at a segment boundary) and,
// when Host is set, whose Host header is Host. Strip asks for the matched
// prefix to be removed from the path before the request goes on.
//
// Sources build it with ParseProxyPaths and NormalizeProxyHost, so that a
// label and an API registration mean the same. Shared like the Instance it
// hangs from: never modified.
type ProxyRoute struct {
	Paths []string // absolute, cleaned, sorted, without duplicates; may be empty when Host is set
	Host  string   // lower-case host name without port; "" = any host
	Strip bool
}

// Bounds on one instance's proxy route.
const (
	MaxProxyPaths   = 16
	MaxProxyPathLen = 256
	maxHostLen      = 253
)

// ParseProxyPaths splits a comma-separated list of path prefixes
// (SERVICE_PROXY_PATH) into the sorted, deduplicated paths of a ProxyRoute.
// Each must be an absolute path ("/api/v1/books"); a trailing slash is
// dropped ("/api/" is "/api"), and "/" alone matches every path. Its errors
// say which item is wrong and why.
func ParseProxyPaths(v string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := NormalizeProxyPath(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w proxy path %s: no path given, want one or more absolute paths such as /api/v1/books", ErrInvalid, quoteValue(v))
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxProxyPaths {
		return nil, fmt.Errorf("%w proxy path: %d paths, at most %d", ErrInvalid, len(out), MaxProxyPaths)
	}
	return out, nil
}

// NormalizeProxyPath checks one path prefix and drops its trailing slash.
// It must start with '/', hold only printable ASCII other than '?', '#',
// '%' and '\', and have no empty, "." or ".." segment: such a prefix could
// never match the path a client sends, or would match a different one than
// it reads.
func NormalizeProxyPath(p string) (string, error) {
	q := quoteValue(p)
	switch {
	case len(p) > MaxProxyPathLen:
		return "", fmt.Errorf("%w proxy path %s: %d bytes, at most %d", ErrInvalid, q, len(p), MaxProxyPathLen)
	case !strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w proxy path %s: not an absolute path, want one that starts with / such as /api/v1/books", ErrInvalid, q)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("?#%\\", c) >= 0 {
			return "", fmt.Errorf("%w proxy path %s: byte %q is not allowed in a path prefix", ErrInvalid, q, c)
		}
	}
	if p == "/" {
		return p, nil
	}
	trimmed := strings.TrimSuffix(p, "/")
	for seg := range strings.SplitSeq(trimmed[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w proxy path %s: empty, . or .. segment", ErrInvalid, q)
		}
	}
	return trimmed, nil
}

// NormalizeProxyHost lower-cases a host name (SERVICE_PROXY_HOST) and checks
// that it is a DNS name of labels of letters, digits, hyphens and
// underscores, without a port.
func NormalizeProxyHost(h string) (string, error) {
	q := quoteValue(h)
	for i := 0; i < len(h); i++ {
		// Before lower-casing, which maps some non-ASCII runes to ASCII.
		if h[i] >= 0x80 {
			return "", fmt.Errorf("%w proxy host %s: non-ASCII byte, give an IDN in its xn-- form", ErrInvalid, q)
		}
	}
	l := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if l == "" || len(l) > maxHostLen {
		return "", fmt.Errorf("%w proxy host %s: want a host name such as books.example.test", ErrInvalid, q)
	}
	for lbl := range strings.SplitSeq(l, ".") {
		if lbl == "" || len(lbl) > MaxLabelLen || lbl[0] == '-' || lbl[len(lbl)-1] == '-' {
			return "", fmt.Errorf("%w proxy host %s: not a host name (empty, long or hyphen-edged label)", ErrInvalid, q)
		}
		for i := 0; i < len(lbl); i++ {
			if c := lbl[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%w proxy host %s: byte %q is not allowed in a host name (no port, no scheme)", ErrInvalid, q, c)
			}
		}
	}
	return l, nil
}

func (r *ProxyRoute) validate(id string) error {
	if r == nil {
		return nil
	}
	if len(r.Paths) == 0 && r.Host == "" {
		return fmt.Errorf("%w instance %s: a proxy route needs a path or a host", ErrInvalid, id)
	}
	if len(r.Paths) > MaxProxyPaths {
		return fmt.Errorf("%w instance %s: %d proxy paths, at most %d", ErrInvalid, id, len(r.Paths), MaxProxyPaths)
	}
	for _, p := range r.Paths {
		if n, err := NormalizeProxyPath(p); err != nil || n != p {
			return fmt.Errorf("%w instance %s: proxy path %s is not normalized (use ParseProxyPaths)", ErrInvalid, id, quoteValue(p))
		}
	}
	if r.Host != "" {
		if n, err := NormalizeProxyHost(r.Host); err != nil || n != r.Host {
			return fmt.Errorf("%w instance %s: proxy host %s is not normalized (use NormalizeProxyHost)", ErrInvalid, id, quoteValue(r.Host))
		}
	}
	return nil
}

func sameProxy(a, b *ProxyRoute) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Host == b.Host && a.Strip == b.Strip && slices.Equal(a.Paths, b.Paths)
}

// quoteValue quotes a value for an error, cut to a readable length.
func quoteValue(v string) string {
	const show = 64
	if len(v) > show {
		return fmt.Sprintf("%q…", v[:show])
	}
	return fmt.Sprintf("%q", v)
}
