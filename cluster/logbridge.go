package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// keyMismatchMsg is the one line logged, on both sides, when gossip
// cannot be read with this node's key.
const keyMismatchMsg = "cluster: gossip not decryptable with our key (check --cluster-key on both nodes)"

// logBridge turns memberlist's log lines ("[ERR] memberlist: ...") into
// slog records at the matching level. Lines saying a peer's gossip could
// not be decrypted become keyMismatchMsg, at most once a minute per peer
// host; those of a failed join are left to Cluster.join, which logs them,
// and those of a name conflict, at debug level, to the delegate.
type logBridge struct {
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]time.Time
}

func (b *logBridge) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		b.line(string(line))
	}
	return len(p), nil
}

func (b *logBridge) line(s string) {
	level := slog.LevelDebug
	for tag, l := range map[string]slog.Level{"[ERR]": slog.LevelWarn, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelDebug, "[DEBUG]": slog.LevelDebug} {
		if i := strings.Index(s, tag); i >= 0 {
			level = l
			s = strings.TrimSpace(s[i+len(tag):])
			break
		}
	}
	if isKeyText(s) {
		if strings.Contains(s, "failed to join") {
			return // Cluster.join logs it, with every address tried
		}
		peer := ""
		if i := strings.Index(s, "from="); i >= 0 {
			peer = strings.Fields(s[i+len("from="):])[0]
		}
		// A peer's joins come from a new port each time: the host
		// alone says who it is.
		if host, _, err := net.SplitHostPort(peer); err == nil {
			peer = host
		}
		if b.recent(peer) {
			return
		}
		b.log.Warn(keyMismatchMsg, "peer", peer, "detail", s)
		return
	}
	if strings.Contains(s, "use of closed network connection") {
		level = slog.LevelDebug // shutting down
	}
	if isNameText(s) {
		// The delegate logs a name conflict (NotifyMerge,
		// NotifyConflict), once a minute per claimant: a node
		// restarted on a new address asks every probe interval.
		level = slog.LevelDebug
	}
	b.log.Log(context.Background(), level, s, "from", "memberlist")
}

// recent reports whether peer's key mismatch was logged in the last minute.
func (b *logBridge) recent(peer string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = make(map[string]time.Time)
	}
	now := time.Now()
	if t, ok := b.seen[peer]; ok && now.Sub(t) < time.Minute {
		return true
	}
	if len(b.seen) > 1024 {
		clear(b.seen)
	}
	b.seen[peer] = now
	return false
}

func isKeyText(s string) bool {
	s = strings.ToLower(s)
	for _, sub := range []string{
		"no installed keys could decrypt", "message authentication failed",
		"encryption is configured but remote state is not encrypted",
		"remote state is encrypted and encryption is not configured",
	} {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func isNameText(s string) bool {
	return strings.Contains(s, "Conflicting address for") ||
		(strings.Contains(s, "Failed push/pull merge") && strings.Contains(s, "node name "))
}

func isKeyError(err error) bool { return err != nil && isKeyText(err.Error()) }
