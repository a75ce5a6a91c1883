package testutil

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestLogBufferKeepsTheTail(t *testing.T) {
	b := &LogBuffer{Max: 8}
	for _, s := range []string{"abc", "defgh", "ijk"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "defghijk" {
		t.Errorf("String() = %q, want the last 8 bytes %q", got, "defghijk")
	}
}

func TestLogBufferConcurrentWriters(t *testing.T) {
	var b LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Logger().Info("line")
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "msg=line"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

func TestLogBufferWaitFor(t *testing.T) {
	var b LogBuffer
	re := regexp.MustCompile(`msg=ready addr=(\S+)`)
	go func() {
		b.Logger().Info("starting")
		b.Logger().Info("ready", "addr", "127.0.0.1:5353")
	}()
	m, err := b.WaitFor(t.Context(), re)
	if err != nil || m[1] != "127.0.0.1:5353" {
		t.Fatalf("WaitFor = %q, %v; want the address", m, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if m, err := b.WaitFor(ctx, regexp.MustCompile(`never`)); err == nil {
		t.Fatalf("WaitFor(never) = %q, want an error once ctx is done", m)
	}
}
