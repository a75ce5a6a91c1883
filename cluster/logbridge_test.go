package cluster

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/svcdns/svcdns/internal/testutil"
)

// memberlist's lines become one slog record each at their level; a key
// mismatch is one line per peer host a minute, and none for a failed join
// (Cluster.join logs those with every address tried).
func TestLogBridge(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string // the records logged, level and message, in order
	}{
		{name: "levels, the timestamp and tag cut",
			lines: []string{
				"2026/12/01 00:37:16 [ERR] memberlist: failed to send ping",
				"2026/12/01 00:37:16 [WARN] memberlist: was able to connect to n2 over TCP",
				"2026/12/01 00:37:16 [INFO] memberlist: marking n2 as failed",
				"2026/12/01 00:37:16 [DEBUG] memberlist: stream connection from=127.0.0.1:4000",
			},
			want: []string{
				"level=WARN msg=\"memberlist: failed to send ping\"",
				"level=WARN msg=\"memberlist: was able to connect to n2 over TCP\"",
				"level=DEBUG msg=\"memberlist: marking n2 as failed\"",
				"level=DEBUG msg=\"memberlist: stream connection from=127.0.0.1:4000\"",
			}},
		{name: "a name conflict is the delegate's to log",
			lines: []string{
				"2026/12/01 00:37:16 [ERR] memberlist: Conflicting address for n2. Mine: 127.0.0.1:4000 Theirs: 127.0.0.1:4001 Old state: 2",
				"2026/12/01 00:37:16 [WARN] memberlist: Failed push/pull merge: node name n2 is taken by 127.0.0.1:4000 from=127.0.0.1:51466",
			},
			want: []string{
				"level=DEBUG msg=\"memberlist: Conflicting address for n2.",
				"level=DEBUG msg=\"memberlist: Failed push/pull merge: node name n2",
			}},
		{name: "a failed join is left to Cluster.join",
			lines: []string{"2026/12/01 00:37:16 [DEBUG] memberlist: failed to join 127.0.0.1:17301: no installed keys could decrypt the message"}},
		{name: "a peer's joins from new ports: one line",
			lines: []string{
				"2026/12/01 00:37:16 [ERR] memberlist: failed to receive: no installed keys could decrypt the message from=10.0.0.9:53082",
				"2026/12/01 00:37:17 [ERR] memberlist: failed to receive: no installed keys could decrypt the message from=10.0.0.9:53086",
				"2026/12/01 00:37:17 [ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=10.0.0.8:4000",
			},
			want: []string{
				"level=WARN msg=\"" + keyMismatchMsg + "\" peer=10.0.0.9",
				"level=WARN msg=\"" + keyMismatchMsg + "\" peer=10.0.0.8",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf testutil.LogBuffer
			b := &logBridge{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			for _, l := range tc.lines {
				if _, err := b.Write([]byte(l + "\n")); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if l != "" {
					got = append(got, l)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("logged %d records, want %d:\n%s", len(got), len(tc.want), buf.String())
			}
			for k, w := range tc.want {
				if !strings.Contains(got[k], w) {
					t.Errorf("record %d: %s\nwant it to hold %s", k, got[k], w)
				}
			}
		})
	}
}
