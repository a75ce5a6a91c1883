package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ExplainFunc answers a question as the DNS server would answer it for a
// client, and says why each address is in the answer. Errors are bad
// input (an unknown type, a name that is not one), shown to the user.
// cmd/svcdns fills it from the DNS handler; nil = no /v1/explain.
type ExplainFunc func(ctx context.Context, q ExplainQuery) (Explanation, error)

// ExplainQuery is a question asked on behalf of a client.
type ExplainQuery struct {
	Name   string     // a domain name, absolute or not
	Type   string     // "A", "AAAA", "SRV", ... ; "" = A
	Client netip.Addr // the client the answer is for
}

// Explanation is the answer of GET /v1/explain.
type Explanation struct {
	Question string `json:"question"` // "books-ms.service.local. SRV"
	Client   string `json:"client"`
	// Outcome says what svcdns does with the question: "answered from
	// the catalog", "forwarded upstream", "refused: ...".
	Outcome       string   `json:"outcome"`
	Rcode         string   `json:"rcode"`
	Authoritative bool     `json:"authoritative"`
	Answer        []string `json:"answer"`     // zone-file lines, [] when none
	Authority     []string `json:"authority"`  // the SOA of a negative answer
	Additional    []string `json:"additional"` // SRV targets' addresses
	// Instances are the instances the name selects, each with the rule
	// that chose its address for this client, or why it was left out.
	Instances []ExplainedInstance `json:"instances"`
}

// ExplainedInstance is one instance of an explained answer.
type ExplainedInstance struct {
	ID        string   `json:"id"`
	Container string   `json:"container"`
	Passing   bool     `json:"passing"`
	Addresses []string `json:"addresses"` // what the answer gives; [] when left out
	Port      uint16   `json:"port"`
	// Rule is "shared-network", "shared-overlay" (another host's
	// container on a network spanning hosts that the client is on),
	// "published", "container-address", "host-network", "registered" (an
	// API instance), "not-passing" or "unreachable".
	Rule   string `json:"rule"`
	Reason string `json:"reason"` // the rule in words, with the network or port involved
}

// explainForm is the dashboard's "why this answer" box, for the page
// rendered without JavaScript.
type explainForm struct {
	Name, Type, Client string
	Result             *Explanation
	Error              string
}

// GET /v1/explain?name=books-ms.service.local&type=A&client=172.18.0.5
func (a *API) handleExplain(w http.ResponseWriter, r *http.Request) {
	if a.explainer == nil {
		writeError(w, http.StatusNotFound, "explain is not available: this svcdns serves no DNS")
		return
	}
	q, err := explainQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ex, err := a.explainer(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

// explainQuery reads ?name, ?type and ?client (default: the caller's own
// address).
func explainQuery(r *http.Request) (ExplainQuery, error) {
	qs := r.URL.Query()
	q := ExplainQuery{Name: strings.TrimSpace(qs.Get("name")), Type: strings.ToUpper(strings.TrimSpace(qs.Get("type")))}
	if q.Name == "" {
		return q, fmt.Errorf("name is missing: want ?name=books-ms.service.local&type=A&client=172.18.0.5")
	}
	if q.Type == "" {
		q.Type = "A"
	}
	c := strings.TrimSpace(qs.Get("client"))
	if c == "" {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return q, fmt.Errorf("client is missing, and the caller's address %q is not one", clip(r.RemoteAddr))
		}
		q.Client = ap.Addr().Unmap()
		return q, nil
	}
	a, err := netip.ParseAddr(c)
	if err != nil {
		return q, fmt.Errorf("client %q: want an IP address such as 172.18.0.5", clip(c))
	}
	q.Client = a.Unmap()
	return q, nil
}

// explainFromPage runs the explain box of GET /?name=..&type=..&client=..;
// nil when the page was not asked to.
func (a *API) explainFromPage(r *http.Request) *explainForm {
	if a.explainer == nil {
		return nil
	}
	qs := r.URL.Query()
	f := &explainForm{Name: qs.Get("name"), Type: qs.Get("type"), Client: qs.Get("client")}
	if f.Name == "" {
		return f
	}
	q, err := explainQuery(r)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	ex, err := a.explainer(r.Context(), q)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	f.Result = &ex
	return f
}
