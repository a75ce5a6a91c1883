package watcher

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

func TestParseSignal(t *testing.T) {
	tests := map[string]int{
		"15": 15, "SIGTERM": 15, "TERM": 15, "sigterm": 15, " 9 ": 9, "SIGKILL": 9,
		"SIGHUP": 1, "USR1": 10, "SIGWINCH": 28, "SIGRTMIN+3": 37, "RTMAX-1": 63,
		"": 0, "0": 0, "65": 0, "-1": 0, "SIGNOPE": 0, "TERM+1": 0, "RTMIN+x": 0,
	}
	for in, want := range tests {
		if got := parseSignal(in); got != want {
			t.Errorf("parseSignal(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestStopConfig(t *testing.T) {
	secs := func(n int) *int { return &n }
	const grace = 2 * time.Second
	tests := []struct {
		name     string
		signal   string
		timeout  *int
		stops    []int // signals that stop it
		keeps    []int // signals that do not
		wantHold time.Duration
	}{
		{"defaults", "", nil, []int{sigTERM, sigINT, sigQUIT, sigKILL}, []int{0, 1, 10, 12, 28}, defaultStopTimeout + grace},
		{"nginx: QUIT", "SIGQUIT", secs(30), []int{sigQUIT, sigTERM}, []int{1, 10}, 30*time.Second + grace},
		{"httpd: WINCH", "SIGWINCH", secs(0), []int{28, sigTERM}, []int{1, 10}, grace},
		{"own USR1, by number", "10", nil, []int{10, sigKILL}, []int{1, 12}, defaultStopTimeout + grace},
		{"waits forever", "", secs(-1), []int{sigTERM}, []int{1}, maxDrainHold},
		{"unreadable signal", "SIGBOGUS", secs(3), []int{sigTERM}, []int{1}, 3*time.Second + grace},
	}
	for _, tt := range tests {
		sc := newStopConfig(tt.signal, tt.timeout)
		for _, s := range tt.stops {
			if !sc.stops(s) {
				t.Errorf("%s: signal %d does not stop it", tt.name, s)
			}
		}
		for _, s := range tt.keeps {
			if sc.stops(s) {
				t.Errorf("%s: signal %d stops it", tt.name, s)
			}
		}
		if got := sc.hold(grace); got != tt.wantHold {
			t.Errorf("%s: hold %v, want %v", tt.name, got, tt.wantHold)
		}
	}
}

// kill emits a kill event with the signal attribute the daemon writes ("" =
// none) and waits until it is applied.
func (h *harness) kill(id, signal string) {
	h.t.Helper()
	var attrs []string
	if signal != "" {
		attrs = []string{"signal", signal}
	}
	if err := h.e.emit(events.ContainerEventType, "kill", id, attrs...); err != nil {
		h.t.Fatal(err)
	}
	h.barrier()
}

// exit makes the engine's container exit and emits its die event.
func (h *harness) exit(id string) {
	h.t.Helper()
	h.e.mutate(id, func(c *container.InspectResponse) { c.State.Running, c.State.Status = false, container.StateExited })
	h.event("die", id)
}

// TestKillDrains: docker stop's kill event takes the container out of the
// answers while it still runs (its inspect says running), when the signal
// stops it; a reload signal changes nothing. The container stays in the
// catalog, not passing, until its die event.
func TestKillDrains(t *testing.T) {
	tests := []struct {
		name       string
		stopSignal string // the container's StopSignal
		signal     string // the kill event's signal attribute
		want       string
	}{
		{"docker stop: TERM, as the daemon writes it", "", "15", "a(down)"},
		{"TERM by name", "", "SIGTERM", "a(down)"},
		{"docker kill: KILL", "", "9", "a(down)"},
		{"INT", "", "2", "a(down)"},
		{"QUIT", "", "3", "a(down)"},
		{"HUP is a reload", "", "1", "a"},
		{"USR1 is a reload", "", "SIGUSR1", "a"},
		{"its own stop signal USR1", "SIGUSR1", "10", "a(down)"},
		{"its own stop signal WINCH, by name", "WINCH", "28", "a(down)"},
		{"another than its own", "SIGUSR1", "12", "a"},
		{"no signal attribute", "", "", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			a, b := newCtr(1, "a"), newCtr(2, "b")
			a.Config.StopSignal = tt.stopSignal
			h.e.run(a)
			h.start()
			h.waitSynced()

			h.kill(a.ID, tt.signal) // the engine still says running
			h.wantView(tt.want)
			inst, err := h.cat.Instance(a.ID + ":8080/tcp")
			if err != nil || inst.Passing != !strings.Contains(tt.want, "down") {
				t.Fatalf("instance %+v, %v", inst, err)
			}
			if drained := strings.Contains(h.logs.String(), `msg="container draining" container=a`); drained != (tt.want != "a") {
				t.Errorf("container draining logged: %t", drained)
			}
			// Other containers go on as before.
			h.e.run(b)
			h.event("start", b.ID)
			h.wantView(tt.want + " b")
			h.exit(a.ID)
			h.wantView("b")
		})
	}
}

// TestKillSurvivorComesBack: a container that ignores its stop signal and
// keeps running is inspected again when its hold (its stop timeout plus a
// grace) ends, and answered again.
func TestKillSurvivorComesBack(t *testing.T) {
	h := newHarness(t, Config{})
	h.w.store.drains.grace = 100 * time.Millisecond
	a := newCtr(1, "a")
	zero := 0
	a.Config.StopTimeout = &zero // hold = the grace
	h.e.run(a)
	h.start()
	h.waitSynced()
	before := h.e.inspected(a.ID)

	if err := h.e.emit(events.ContainerEventType, "kill", a.ID, "signal", "15"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a drained", func() bool { return strings.Contains(h.logs.String(), `msg="container draining" container=a`) })
	h.waitFor("a answered again", func() bool {
		return h.view() == "a" && strings.Contains(h.logs.String(), "container still running after its stop signal, answered again")
	})
	if n := h.e.inspected(a.ID) - before; n < 2 {
		t.Errorf("%d inspects after the kill, want the event's and the re-check's", n)
	}
}

// TestKillThenRestart: docker restart is kill, die, start: the container is
// answered again from its start, not held until the end of the hold.
func TestKillThenRestart(t *testing.T) {
	h := newHarness(t, Config{})
	a := newCtr(1, "a")
	h.e.run(a)
	h.start()
	h.waitSynced()
	h.kill(a.ID, "15")
	h.wantView("a(down)")
	for _, action := range []string{"die", "start"} { // it runs again: the engine still says running
		if err := h.e.emit(events.ContainerEventType, action, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.barrier()
	h.wantView("a")
}

// TestDrainSurvivesResync: a full sync after a reconnect lists a draining
// container (it still runs) and keeps it out of the answers; the new
// session inspects it again when its hold ends.
func TestDrainSurvivesResync(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		h := newHarness(t, Config{})
		a := newCtr(1, "a")
		h.e.run(a)
		h.start()
		h.waitSynced()
		h.kill(a.ID, "15") // held for 12 s
		h.wantView("a(down)")
		h.e.breakStream(io.ErrUnexpectedEOF)
		h.waitFor("resync after the reconnect", func() bool { return h.w.Status().Resyncs == 2 && h.w.Status().Connected })
		h.wantView("a(down)")
		h.exit(a.ID)
		h.wantView("")
	})
	t.Run("comes back", func(t *testing.T) {
		h := newHarness(t, Config{})
		h.w.store.drains.grace = 300 * time.Millisecond
		a := newCtr(1, "a")
		zero := 0
		a.Config.StopTimeout = &zero
		h.e.run(a)
		h.start()
		h.waitSynced()
		h.kill(a.ID, "15")
		h.e.breakStream(io.ErrUnexpectedEOF) // the session's re-check goes with it
		h.waitFor("resync after the reconnect", func() bool { return h.w.Status().Resyncs == 2 && h.w.Status().Connected })
		h.waitFor("a answered again", func() bool { return h.view() == "a" }) // the periodic resync is a minute away
	})
}
