package main

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/svcdns/svcdns/dnsserver"
	"github.com/svcdns/svcdns/httpapi"
)

// explainFunc lets the HTTP API's GET /v1/explain ask the DNS handler
// (httpapi reads the catalog, never dnsserver).
func explainFunc(h *dnsserver.Handler) httpapi.ExplainFunc {
	return func(ctx context.Context, q httpapi.ExplainQuery) (httpapi.Explanation, error) {
		ex, err := h.Explain(ctx, q.Name, q.Type, q.Client)
		if err != nil {
			return httpapi.Explanation{}, err
		}
		out := httpapi.Explanation{
			Client: q.Client.String(), Outcome: ex.Outcome,
			Rcode:         dns.RcodeToString[ex.Reply.Rcode],
			Authoritative: ex.Reply.Authoritative,
			Answer:        rrLines(ex.Reply.Answer), Authority: rrLines(ex.Reply.Ns), Additional: rrLines(ex.Reply.Extra),
			Instances: make([]httpapi.ExplainedInstance, 0, len(ex.Instances)),
		}
		if len(ex.Reply.Question) == 1 {
			qq := ex.Reply.Question[0]
			out.Question = qq.Name + " " + dns.TypeToString[qq.Qtype]
		}
		for _, ir := range ex.Instances {
			out.Instances = append(out.Instances, httpapi.ExplainedInstance{
				ID: ir.Instance.ID, Container: ir.Instance.ContainerName, Passing: ir.Instance.Passing,
				Addresses: addrStrings(ir.Addrs), Port: ir.Port, Rule: ir.Rule, Reason: ir.Reason,
			})
		}
		return out, nil
	}
}

// rrLines renders records in zone-file syntax, without the OPT record.
func rrLines(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr.String())
		}
	}
	return out
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}
