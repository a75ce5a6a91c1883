//go:build !linux

package main

import "time"

// newPacer returns the wait of rate's sender: time.Sleep, as precise as
// the platform's timers (Linux gets a thread of its own, pace_linux.go).
func newPacer() func(time.Time) {
	return func(t time.Time) {
		if d := time.Until(t); d > 0 {
			time.Sleep(d)
		}
	}
}
