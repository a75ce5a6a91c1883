//go:build unix

package testutil

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time the process has used, user and system: what
// a benchmark on a shared machine can compare when wall time cannot.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
