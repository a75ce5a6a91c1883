package httpapi

import (
	"net/http"
	"time"
)

// Node is one element of GET /v1/nodes: a svcdns node of the gossip
// cluster as this node sees it. cmd/svcdns fills it from the cluster
// package (httpapi does not import it).
type Node struct {
	Name    string `json:"name"`
	Address string `json:"address"` // its gossip address, ip:port
	State   string `json:"state"`   // "alive", "suspect", "dead" or "left"
	Local   bool   `json:"local"`   // this node
	// Instances is the number of its instances held here.
	Instances int `json:"instances"`
	// Version is the version of its records held here: incarnation.seq.
	Version string `json:"version"`
	// LastFullState is when a full state of it was last applied here;
	// omitted for this node and before any.
	LastFullState time.Time `json:"last_full_state,omitzero"`
}

// GET /v1/nodes: every node of the cluster, sorted by name; 404 when
// clustering is off.
func (a *API) handleNodes(w http.ResponseWriter, r *http.Request) {
	if a.cluster == nil {
		writeError(w, http.StatusNotFound, "clustering is off: start svcdns with --cluster-addr")
		return
	}
	setIndex(w, a.cat.Index())
	writeJSON(w, http.StatusOK, a.cluster())
}
