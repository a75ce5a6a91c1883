package httpapi

import (
	"context"
	"sync"
	"time"
)

// QueryRates are the DNS queries answered per second over the last
// minutes, by response code: a sample every Step seconds, oldest first.
type QueryRates struct {
	Step    int          `json:"step_seconds"`
	Samples []RateSample `json:"samples"`
}

// RateSample is the query rate over one step, by response code
// ("NOERROR", "NXDOMAIN", ...).
type RateSample struct {
	Time      time.Time          `json:"time"`
	PerSecond map[string]float64 `json:"per_second"`
}

const (
	rateStep    = 5 * time.Second
	rateSamples = 60 // 5 minutes
)

// rates samples the DNS server's query counters (Config.Queries): the
// dashboard shows what /metrics shows, counted once, by the DNS server.
// They are read directly, not through the registry's Gather: a Gather
// every step walked the whole catalog and the Go and process collectors,
// and its garbage cost the DNS read loop GC work (1-2k instructions a
// query at 3,000 q/s under callgrind).
type rates struct {
	read func() map[string]float64
	now  func() time.Time

	mu      sync.Mutex
	last    map[string]float64 // the counter's totals at lastT
	lastT   time.Time
	samples []RateSample // oldest first, at most rateSamples
}

func newRates(read func() map[string]float64, now func() time.Time) *rates {
	return &rates{read: read, now: now}
}

// run samples every rateStep until ctx is done.
func (r *rates) run(ctx context.Context) {
	if r.read == nil {
		return
	}
	t := time.NewTicker(rateStep)
	defer t.Stop()
	r.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sample()
		}
	}
}

// sample reads the counter and adds the rates since the last sample.
func (r *rates) sample() {
	if r.read == nil {
		return
	}
	totals := r.read()
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last != nil {
		if secs := now.Sub(r.lastT).Seconds(); secs > 0 {
			s := RateSample{Time: now.UTC(), PerSecond: make(map[string]float64, len(totals))}
			for rcode, v := range totals {
				d := v - r.last[rcode]
				if d < 0 { // the counter restarted
					d = v
				}
				if d > 0 {
					s.PerSecond[rcode] = d / secs
				}
			}
			r.samples = append(r.samples, s)
			if n := len(r.samples) - rateSamples; n > 0 {
				r.samples = r.samples[n:]
			}
		}
	}
	r.last, r.lastT = totals, now
}

// get returns the samples so far.
func (r *rates) get() QueryRates {
	r.mu.Lock()
	defer r.mu.Unlock()
	return QueryRates{Step: int(rateStep / time.Second), Samples: append([]RateSample{}, r.samples...)}
}
