package watcher

import (
	"fmt"
	"testing"
	"time"
)

// A Repair names at most maxRepairNames containers and counts the rest.
func TestNewRepair(t *testing.T) {
	named := func(n int) []RepairedContainer {
		var out []RepairedContainer
		for i := range n {
			out = append(out, RepairedContainer{Name: fmt.Sprintf("c%03d", i), Action: RepairAdded})
		}
		return out
	}
	tests := []struct {
		named, count int
		kept, more   int
	}{
		{0, 2, 0, 0}, // labels changed: counted, not named
		{3, 3, 3, 0},
		{maxRepairNames, maxRepairNames, maxRepairNames, 0},
		{maxRepairNames + 7, maxRepairNames + 7, maxRepairNames, 7},
	}
	for _, tc := range tests {
		r := newRepair(time.Unix(0, 0), syncPeriodic, tc.count, named(tc.named))
		if len(r.Containers) != tc.kept || r.More != tc.more || r.Count != tc.count || r.Containers == nil {
			t.Errorf("%d named, count %d: %d kept, %d more, count %d (nil list %t); want %d kept, %d more",
				tc.named, tc.count, len(r.Containers), r.More, r.Count, r.Containers == nil, tc.kept, tc.more)
		}
	}
}
