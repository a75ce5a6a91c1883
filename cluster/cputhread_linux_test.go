//go:build linux

package cluster

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD, which package syscall does not
// name.
const rusageThread = 1

// threadCPU is the CPU time the calling OS thread has used, user and
// system: with the goroutine locked to its thread, the CPU of one
// goroutine (the apply loop's part of a join), which bounds how fast it
// can end however many cores the rest gets.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
