package main

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// What the Go runtime did during a phase: in one process, the garbage
// collector of 100 nodes' heap and the scheduler's delays are every
// node's, so a probe answered late may be the runtime's, not the
// network's.
var runtimeNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/sched/pauses/total/gc:seconds",
	"/sched/latencies:seconds",
	"/gc/heap/live:bytes",
}

// The indexes of runtimeNames.
const (
	rtCycles = iota
	rtGCCPU
	rtTotalCPU
	rtPauses
	rtSched
	rtLive
)

// rtSample is one reading of runtimeNames, and the CPU time the process
// used (the runtime's CPU classes are estimates brought up to date only
// by a garbage collection).
type rtSample struct {
	at  time.Time
	cpu time.Duration
	s   []metrics.Sample
}

func readRuntime() rtSample {
	s := make([]metrics.Sample, len(runtimeNames))
	for i, n := range runtimeNames {
		s[i].Name = n
	}
	metrics.Read(s)
	return rtSample{at: time.Now(), cpu: processCPU(), s: s}
}

// rtPhase is what the runtime did between two samples.
type rtPhase struct {
	name               string
	took               time.Duration
	gcCycles           uint64
	gcCPU              float64 // the GC's share of the CPU time the runtime counted (updated at each GC)
	busyCPU            float64 // the process's CPU time over the wall time of GOMAXPROCS CPUs
	pauseP99, pauseMax time.Duration
	schedP99, schedMax time.Duration
	liveMB             float64
}

func (a rtSample) to(b rtSample, name string) rtPhase {
	p := rtPhase{name: name, took: b.at.Sub(a.at)}
	p.gcCycles = b.s[rtCycles].Value.Uint64() - a.s[rtCycles].Value.Uint64()
	if total := b.s[rtTotalCPU].Value.Float64() - a.s[rtTotalCPU].Value.Float64(); total > 0 {
		p.gcCPU = (b.s[rtGCCPU].Value.Float64() - a.s[rtGCCPU].Value.Float64()) / total
	}
	if wall := p.took.Seconds() * float64(runtime.GOMAXPROCS(0)); wall > 0 {
		p.busyCPU = (b.cpu - a.cpu).Seconds() / wall
	}
	p.pauseP99, p.pauseMax = histDiff(a.s[rtPauses].Value.Float64Histogram(), b.s[rtPauses].Value.Float64Histogram())
	p.schedP99, p.schedMax = histDiff(a.s[rtSched].Value.Float64Histogram(), b.s[rtSched].Value.Float64Histogram())
	p.liveMB = float64(b.s[rtLive].Value.Uint64()) / 1e6
	return p
}

// histDiff returns the 99th percentile and the largest value of what b
// counted past a (the upper bounds of their buckets).
func histDiff(a, b *metrics.Float64Histogram) (p99, top time.Duration) {
	var n uint64
	counts := make([]uint64, len(b.Counts))
	for i := range b.Counts {
		counts[i] = b.Counts[i] - a.Counts[i]
		n += counts[i]
	}
	if n == 0 {
		return 0, 0
	}
	upper := func(i int) time.Duration {
		u := b.Buckets[i+1]
		if math.IsInf(u, 1) {
			u = b.Buckets[i]
		}
		return time.Duration(u * 1e9)
	}
	want := (n*99 + 99) / 100
	var seen uint64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		seen += c
		if p99 == 0 && seen >= want {
			p99 = upper(i)
		}
		top = upper(i)
	}
	return p99, top
}

func (p rtPhase) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	return fmt.Sprintf("%s (%v): %d GCs, GC %.0f%% of CPU, process CPU %.0f%% of GOMAXPROCS, GC pause p99 %s max %s, scheduling delay p99 %s max %s, live heap %.0f MB",
		p.name, p.took.Round(time.Millisecond), p.gcCycles, 100*p.gcCPU, 100*p.busyCPU, ms(p.pauseP99), ms(p.pauseMax),
		ms(p.schedP99), ms(p.schedMax), p.liveMB)
}

func (p rtPhase) row(nodes int) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e6) }
	return fmt.Sprintf("| %d | %s | %.0f s | %d | %.0f%% | %.0f%% | %s / %s ms | %s / %s ms |", nodes, p.name, p.took.Seconds(),
		p.gcCycles, 100*p.gcCPU, 100*p.busyCPU, ms(p.pauseP99), ms(p.pauseMax), ms(p.schedP99), ms(p.schedMax))
}

const rtHeader = "| nodes | phase | took | GC cycles | GC share of CPU | process CPU / GOMAXPROCS | GC pause p99 / max | scheduling delay p99 / max |\n| --- | --- | --- | --- | --- | --- | --- | --- |"

// gcString says how the process's garbage collector is set.
func gcString() string {
	gogc := debug.SetGCPercent(-1)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	l := "none"
	if limit != math.MaxInt64 {
		l = fmt.Sprintf("%.1f GB", float64(limit)/1e9)
	}
	return fmt.Sprintf("GOGC %d, GOMEMLIMIT %s", gogc, l)
}
