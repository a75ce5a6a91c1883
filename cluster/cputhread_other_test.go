//go:build !linux

package cluster

import "time"

// threadCPU is not measured here: benchmarks report 0.
func threadCPU() time.Duration { return 0 }
