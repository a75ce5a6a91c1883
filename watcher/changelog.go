package watcher

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdns/svcdns/catalog"
)

// changelog logs what the watcher changed in the catalog, one line per
// container added, updated or removed, and one WARN per rejected name,
// each once: a resync every minute repeats none of them. Only the
// session's goroutine uses it.
type changelog struct {
	log      *slog.Logger
	rejected *prometheus.CounterVec // rejected_names_total, by reason
	known    map[string]summary     // the containers stored, as last logged
	problems map[string]string      // container id -> the rejected names last logged
}

func newChangelog(log *slog.Logger, rejected *prometheus.CounterVec) *changelog {
	return &changelog{log: log, rejected: rejected, known: make(map[string]summary), problems: make(map[string]string)}
}

// summary is what a log line says about a stored container.
type summary struct {
	name     string
	services string
	passing  bool
	addrs    string
}

func summarize(rec catalog.ContainerRecord) summary {
	c := rec.Container
	s := summary{name: cmp.Or(c.Name, shortID(c.ID)), passing: c.Passing}
	var svcs []string
	for _, inst := range rec.Instances {
		svcs = append(svcs, fmt.Sprintf("%s:%d/%s", inst.Service, inst.Port, inst.Protocol))
	}
	s.services = strings.Join(svcs, ",")
	var addrs []string
	for _, a := range c.Addrs {
		addrs = append(addrs, a.Network+"="+a.Prefix.Addr().String())
	}
	if c.HostIP.IsValid() {
		addrs = append(addrs, "host="+c.HostIP.String())
	}
	s.addrs = strings.Join(addrs, ",")
	return s
}

// logRejected logs a container's rejected names, one WARN line each, and
// counts them, but only when they differ from what was last logged for it.
func (l *changelog) logRejected(id, name string, probs []problem) {
	var b strings.Builder
	for _, p := range probs {
		b.WriteString(p.Reason)
		b.WriteByte(0)
		b.WriteString(p.Detail)
		b.WriteByte(0)
	}
	key := b.String()
	if l.problems[id] == key {
		return
	}
	if key == "" {
		delete(l.problems, id)
		return
	}
	l.problems[id] = key
	for _, p := range probs {
		l.rejected.WithLabelValues(p.Reason).Inc()
		l.log.Warn("container name rejected", "container", name, "id", shortID(id), "reason", p.Reason, "detail", p.Detail)
	}
}

// stored logs a stored container if it is new or its answers changed, and
// returns what it logged: RepairAdded, RepairUpdated, or "" for nothing.
// via is "" for an event, else the reason of the resync that repaired it.
func (l *changelog) stored(rec catalog.ContainerRecord, via string) string {
	id := rec.Container.ID
	s := summarize(rec)
	old, known := l.known[id]
	l.known[id] = s
	if known && old == s {
		return ""
	}
	action := RepairAdded
	if known {
		action = RepairUpdated
	}
	attrs := []any{"container", s.name, "id", shortID(id), "services", s.services, "passing", s.passing, "addrs", s.addrs}
	if via != "" {
		attrs = append(attrs, "resync", via)
	}
	l.log.Info("container "+action, attrs...)
	return action
}

// drained logs a container taken out of the answers by its stop signal.
func (l *changelog) drained(rec catalog.ContainerRecord, signal int, hold time.Duration) {
	s := summarize(rec)
	l.known[rec.Container.ID] = s
	l.log.Info("container draining", "container", s.name, "id", shortID(rec.Container.ID), "signal", signal, "hold", hold)
}

// removed logs a container leaving the catalog, if it was there.
func (l *changelog) removed(id, reason string) {
	delete(l.problems, id)
	if s, ok := l.known[id]; ok {
		delete(l.known, id)
		l.log.Info("container removed", "container", s.name, "id", shortID(id), "reason", reason)
	}
}

// replaced brings the known set in line with a full sync's records and
// logs what changed, and returns it, by container name. The first sync
// logs one summary line (the caller's), not a line per container, and
// returns nothing: it repairs nothing.
func (l *changelog) replaced(records []catalog.ContainerRecord, first bool, reason string) []RepairedContainer {
	var changed []RepairedContainer
	keep := make(map[string]bool, len(records))
	for _, rec := range records {
		keep[rec.Container.ID] = true
		if first {
			l.known[rec.Container.ID] = summarize(rec)
			continue
		}
		if action := l.stored(rec, reason); action != "" {
			changed = append(changed, RepairedContainer{Name: l.known[rec.Container.ID].name, Action: action})
		}
	}
	for id, s := range l.known {
		if !keep[id] {
			delete(l.known, id)
			l.log.Info("container removed", "container", s.name, "id", shortID(id), "reason", "not running", "resync", reason)
			changed = append(changed, RepairedContainer{Name: s.name, Action: RepairRemoved})
		}
	}
	for id := range l.problems {
		if !keep[id] {
			delete(l.problems, id)
		}
	}
	slices.SortFunc(changed, func(a, b RepairedContainer) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Action, b.Action))
	})
	return changed
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
