package watcher

import (
	"fmt"
	"strings"
)

// labelFilter is one --docker-filter: label=key or label=key=value.
type labelFilter struct {
	Key      string
	Value    string
	HasValue bool
}

// parseFilters reads Docker label filters ("label=env=prod",
// "label=com.example.svc"). Only label filters are accepted: the watcher
// must decide for each container it inspects whether the filter keeps it,
// and label filters are the ones it can decide exactly as the daemon does.
func parseFilters(list []string) ([]labelFilter, error) {
	var out []labelFilter
	for _, f := range list {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		kind, rest, ok := strings.Cut(f, "=")
		if !ok || strings.TrimSpace(kind) != "label" || rest == "" {
			return nil, fmt.Errorf("docker filter %q: only label filters are supported (label=key or label=key=value)", f)
		}
		k, v, hasValue := strings.Cut(rest, "=")
		if k == "" {
			return nil, fmt.Errorf("docker filter %q: empty label key", f)
		}
		out = append(out, labelFilter{Key: k, Value: v, HasValue: hasValue})
	}
	return out, nil
}

func (f labelFilter) String() string {
	if f.HasValue {
		return f.Key + "=" + f.Value
	}
	return f.Key
}

// matchLabels reports whether labels satisfy every filter, as the daemon's
// label filter does: a key alone needs the label to exist, key=value needs
// that value.
func matchLabels(lf []labelFilter, labels map[string]string) bool {
	for _, f := range lf {
		v, ok := labels[f.Key]
		if !ok || f.HasValue && v != f.Value {
			return false
		}
	}
	return true
}
