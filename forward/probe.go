package forward

import (
	"context"

	"github.com/miekg/dns"
)

// Probe asks one upstream ("ip[:port]") for the root's NS records, as a
// forward would (UDP, then TCP if truncated, within Timeout): svcdns
// check's "does this upstream answer" test. A reply of any rcode but
// SERVFAIL and REFUSED counts as answering. The error is Forward's, which
// names the upstream in its detail, not in front: the caller prefixes it.
func Probe(ctx context.Context, upstream string) error {
	f, err := New(Config{Upstreams: []string{upstream}, MaxInFlight: 1})
	if err != nil {
		return err
	}
	q := new(dns.Msg)
	q.SetQuestion(".", dns.TypeNS)
	if _, err := f.Forward(ctx, q); err != nil {
		return err
	}
	return nil
}
