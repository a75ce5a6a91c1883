package watcher

import (
	"strconv"
	"strings"
	"time"

	"github.com/svcdns/svcdns/catalog"
)

// Draining: docker stop sends the container its stop signal and emits a
// kill event at once, but die only once the process has exited, up to the
// stop timeout later (then Docker sends SIGKILL). In between, the
// container is running and shutting down: a graceful server has stopped
// accepting or is about to, so new requests must go elsewhere while the
// ones it holds finish. A kill event whose signal stops the container
// therefore takes it out of the answers (and of the proxy's routes) at
// once: the catalog keeps it, not passing, as a paused container is kept.
// The container is held so until its die event removes it, or, when it is
// still running after its stop timeout plus drainGrace (the signal was
// caught and ignored: docker stop would have killed it by then), until the
// re-inspect that then comes finds it running and serves it again.
// Signals that do not stop a container (HUP, USR1: reloads) change nothing.

const (
	// defaultStopTimeout is Docker's stop timeout for a container that
	// sets none (docker run --stop-timeout, Compose stop_grace_period):
	// docker stop sends SIGKILL this long after the stop signal.
	defaultStopTimeout = 10 * time.Second
	// defaultDrainGrace is how long past the stop timeout a drained
	// container is held before the re-inspect: docker stop's SIGKILL and
	// the die event after it take a moment.
	defaultDrainGrace = 2 * time.Second
	// maxDrainHold bounds the hold of a container whose stop timeout is
	// negative (docker stop waits for it forever) or huge.
	maxDrainHold = 5 * time.Minute
)

// Signal numbers are Linux's, which the daemon's kill events carry
// whatever the platform svcdns runs on (syscall's differ on macOS and
// FreeBSD).
const (
	sigINT  = 2
	sigQUIT = 3
	sigKILL = 9
	sigTERM = 15
)

// linuxSignals maps the names of Linux's standard signals to their
// numbers.
var linuxSignals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
	"FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
	"TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
	"TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
	"IO": 29, "POLL": 29, "PWR": 30, "SYS": 31, "RTMIN": 34, "RTMAX": 64,
}

// parseSignal reads a signal as Docker writes one: a number ("15"), or a
// name with or without SIG ("SIGTERM", "term", "SIGRTMIN+3"). 0 when it is
// none of these.
func parseSignal(s string) int {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		if n > 0 && n <= 64 {
			return n
		}
		return 0
	}
	s = strings.TrimPrefix(s, "SIG")
	base, off := s, 0
	if b, o, ok := strings.Cut(s, "+"); ok {
		n, err := strconv.Atoi(o)
		if err != nil {
			return 0
		}
		base, off = b, n
	} else if b, o, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.Atoi(o)
		if err != nil {
			return 0
		}
		base, off = b, -n
	}
	n, ok := linuxSignals[base]
	if !ok || (off != 0 && !strings.HasPrefix(base, "RT")) || n+off <= 0 || n+off > 64 {
		return 0
	}
	return n + off
}

// stopConfig is how a container is stopped: its configured stop signal
// (Linux number; 0: the default, SIGTERM, or one svcdns cannot read) and
// stop timeout (zero: Docker's default). The zero value is a container
// that configures neither.
type stopConfig struct {
	signal  int
	timeout time.Duration
	set     bool // timeout was configured (0 s is a timeout too)
}

// newStopConfig reads a container's StopSignal and StopTimeout (seconds,
// nil when unset).
func newStopConfig(signal string, timeout *int) stopConfig {
	sc := stopConfig{signal: parseSignal(signal)}
	if timeout != nil {
		sc.set = true
		sc.timeout = time.Duration(*timeout) * time.Second
		if *timeout < 0 || sc.timeout > maxDrainHold {
			sc.timeout = maxDrainHold
		}
	}
	return sc
}

// stops reports whether signal stops the container: TERM, INT, QUIT and
// KILL do (what docker stop, docker kill and Ctrl-C send, and what
// servers treat as stop or graceful stop), and so does its own stop
// signal, whatever it is (nginx's QUIT, httpd's WINCH).
func (sc stopConfig) stops(signal int) bool {
	switch signal {
	case 0:
		return false
	case sigTERM, sigINT, sigQUIT, sigKILL:
		return true
	}
	return signal == sc.signal
}

// hold is how long a container sent a stop signal is kept out of the
// answers before it is inspected again: its stop timeout (docker stop
// kills it then) plus grace.
func (sc stopConfig) hold(grace time.Duration) time.Duration {
	t := defaultStopTimeout
	if sc.set {
		t = sc.timeout
	}
	return min(t+grace, maxDrainHold)
}

// drainState is what the store keeps about draining, per container: how
// it is stopped (only containers that configure something), and until
// when the drained ones are held.
type drainState struct {
	stops   map[string]stopConfig
	until   map[string]time.Time
	signals map[string]int // the signal each held container was sent, for the log
	grace   time.Duration
}

func newDrainState(grace time.Duration) drainState {
	return drainState{stops: map[string]stopConfig{}, until: map[string]time.Time{}, signals: map[string]int{}, grace: grace}
}

// learn records how an inspected, served container is stopped.
func (d *drainState) learn(id string, sc stopConfig) {
	if sc == (stopConfig{}) {
		delete(d.stops, id)
		return
	}
	d.stops[id] = sc
}

// forget drops a container that left the catalog.
func (d *drainState) forget(id string) {
	delete(d.stops, id)
	delete(d.until, id)
	delete(d.signals, id)
}

// start holds id from now if signal stops it, and returns for how long.
func (d *drainState) start(id string, signal int, now time.Time) (time.Duration, bool) {
	sc := d.stops[id]
	if !sc.stops(signal) {
		return 0, false
	}
	hold := sc.hold(d.grace)
	d.until[id] = now.Add(hold)
	d.signals[id] = signal
	return hold, true
}

// held reports whether id is held out of the answers at now. A hold that
// has ended is dropped, and ended reports it with the signal it was for:
// the container outlived its stop signal.
func (d *drainState) held(id string, now time.Time) (held bool, ended bool, signal int) {
	until, ok := d.until[id]
	if !ok {
		return false, false, 0
	}
	if now.Before(until) {
		return true, false, 0
	}
	signal = d.signals[id]
	delete(d.until, id)
	delete(d.signals, id)
	return false, true, signal
}

// holds returns how long each held container's hold still lasts, for the
// re-inspects a new session schedules again.
func (d *drainState) holds(now time.Time) map[string]time.Duration {
	out := make(map[string]time.Duration, len(d.until))
	for id, until := range d.until {
		out[id] = max(until.Sub(now), 0)
	}
	return out
}

// keepOnly forgets every container but those in ids (a full sync's).
func (d *drainState) keepOnly(ids map[string]bool) {
	for id := range d.stops {
		if !ids[id] {
			delete(d.stops, id)
		}
	}
	for id := range d.until {
		if !ids[id] {
			delete(d.until, id)
			delete(d.signals, id)
		}
	}
}

// notPassing is rec with its container and instances not passing: new
// copies, since the catalog's objects are never changed in place.
func notPassing(rec catalog.ContainerRecord) catalog.ContainerRecord {
	c := *rec.Container
	c.Passing = false
	out := catalog.ContainerRecord{Container: &c, Instances: make([]*catalog.Instance, len(rec.Instances))}
	for i, inst := range rec.Instances {
		cp := *inst
		cp.Passing = false
		out.Instances[i] = &cp
	}
	return out
}

// passingAny reports whether the container or any of its instances is
// answered.
func passingAny(rec catalog.ContainerRecord) bool {
	if rec.Container.Passing {
		return true
	}
	for _, inst := range rec.Instances {
		if inst.Passing {
			return true
		}
	}
	return false
}
