package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
)

// LogBuffer collects what loggers (or a child process) on several
// goroutines write. The zero value is ready and keeps everything; Max,
// when set, keeps only the last Max bytes (for a long-running process).
type LogBuffer struct {
	Max int

	mu  sync.Mutex
	buf []byte
	// wrote is closed by the next Write, for WaitFor; nil until asked for.
	wrote chan struct{}
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.Max; b.Max > 0 && over > 0 {
		b.buf = b.buf[over:]
	}
	if b.wrote != nil {
		close(b.wrote)
		b.wrote = nil
	}
	return len(p), nil
}

// String returns what was written (the last Max bytes of it).
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// WaitFor returns the submatches of the first match of re in what was
// written, waiting for writes until there is one or ctx is done.
func (b *LogBuffer) WaitFor(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		b.mu.Lock()
		m := re.FindSubmatch(b.buf)
		if b.wrote == nil {
			b.wrote = make(chan struct{})
		}
		wrote := b.wrote
		b.mu.Unlock()
		if m != nil {
			out := make([]string, len(m))
			for i, s := range m {
				out[i] = string(s)
			}
			return out, nil
		}
		select {
		case <-wrote:
		case <-ctx.Done():
			return nil, fmt.Errorf("no log line matching %s: %w", re, context.Cause(ctx))
		}
	}
}

// Logger returns a text logger at debug level writing into b.
func (b *LogBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// StartedLine matches the line svcdns logs (text format) once every
// listener is bound, with the addresses they got: dns, http, and proxy
// ("off" when there is none).
var StartedLine = regexp.MustCompile(`msg="svcdns started".* dns=(\S+) http=(\S+) proxy=(\S+)`)
