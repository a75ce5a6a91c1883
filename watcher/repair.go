package watcher

import "time"

// Repair is what one resync had to change in the catalog: the events
// svcdns missed (Docker away, the stream cut, an overflow) or had not
// applied yet. Status.LastRepair holds the last one; the dashboard shows
// it beside the repairs counter.
type Repair struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"` // the resync's: connect, periodic or overflow
	// Count is the containers the resync added, removed or updated in the
	// catalog, as Status.Repairs counts them.
	Count int `json:"count"`
	// Containers names them, by name, at most maxRepairNames: those whose
	// answers changed (a change of labels alone is counted, not named).
	Containers []RepairedContainer `json:"containers"`
	// More is the containers named by the resync past maxRepairNames.
	More int `json:"more,omitempty"`
}

// RepairedContainer is one container a resync changed.
type RepairedContainer struct {
	Name   string `json:"name"`
	Action string `json:"action"` // RepairAdded, RepairUpdated or RepairRemoved
}

// The actions of a RepairedContainer, as the log lines say them.
const (
	RepairAdded   = "added"
	RepairUpdated = "updated"
	RepairRemoved = "removed"
)

// maxRepairNames bounds the names a Repair keeps: a reconnect after a long
// absence may repair thousands of containers.
const maxRepairNames = 20

func newRepair(at time.Time, reason string, count int, changed []RepairedContainer) *Repair {
	r := &Repair{Time: at, Reason: reason, Count: count, Containers: changed}
	if len(changed) > maxRepairNames {
		r.Containers, r.More = changed[:maxRepairNames:maxRepairNames], len(changed)-maxRepairNames
	}
	if r.Containers == nil {
		r.Containers = []RepairedContainer{}
	}
	return r
}
