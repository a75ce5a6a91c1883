// Package forward resolves names outside svcdns's zone by asking upstream
// resolvers, hardened against cache poisoning and overload.
//
//	ups, err := forward.FromResolvConf("/etc/resolv.conf", ownAddrs)
//	if err != nil { ... }
//	fwd, err := forward.New(forward.Config{Upstreams: ups, Logger: log, Registerer: reg})
//	if err != nil { ... }
//	resp, err := fwd.Forward(ctx, req) // err: answer SERVFAIL
//
// # How a query is forwarded
//
// Upstreams are tried in order. A try is one UDP exchange; when the reply
// has TC set (or did not fit the read buffer) the same upstream is asked
// again over TCP. A try fails over to the next upstream on a timeout, a
// network error (such as ICMP port unreachable), or an rcode other than
// NOERROR, NXDOMAIN and YXDOMAIN (SERVFAIL, REFUSED, FORMERR, NOTIMP, ...).
// When no upstream answers, Forward returns an error wrapping ErrNoAnswer;
// the caller answers SERVFAIL. Nothing is cached.
//
// # Time bounds
//
// A try lasts at most Config.Timeout (2 s by default). A whole Forward call
// lasts at most Timeout*6/5 (2.4 s by default, so a client gets SERVFAIL
// within 2.5 s) and never past ctx's deadline or cancellation: the time
// left is split evenly between the upstreams not yet tried, so three dead
// upstreams cost 2.4 s in all, not 6 s, while a single upstream gets the
// full per-try Timeout. An upstream that fails fast
// (REFUSED, ICMP unreachable) leaves its share to the next ones.
//
// # Anti-poisoning
//
// Every try (UDP and TCP alike) uses a fresh socket and a fresh ID drawn
// from crypto/rand; the client's ID is never sent upstream. UDP sockets are
// connected to the upstream, so the kernel picks a random source port and
// delivers only datagrams from the upstream's own address and port. A
// datagram is accepted only when its ID matches, QR is set, the opcode
// matches and its single question equals ours (name compared ASCII
// case-insensitively, type and class exactly). Anything else — a forged ID,
// a wrong question, garbage — is counted (errors kind "mismatch") and
// ignored, and the wait for the real reply goes on until the try's deadline
// (the lesson of CoreDNS CVE-2023-28452).
//
// The upstream query carries only the question and a fresh EDNS0 OPT
// advertising 1232 bytes, with the DO bit copied from the client; client
// EDNS options (cookies, client subnet, padding) and any other additional
// records are not passed on.
//
// # The reply
//
// Forward returns the upstream's message with the client's ID and the
// client's question (so its case, 0x20-randomised or not, is echoed
// exactly). The upstream's OPT record is removed; when the client's query had
// an OPT, a fresh one (1232 bytes, the client's DO bit) is added, so a client
// without EDNS0 never gets an OPT back. The reply may exceed the client's
// UDP size: the caller truncates it.
//
// # Overload
//
// At most Config.MaxInFlight (1024 by default) Forward calls run at once.
// Past that, Forward returns ErrOverloaded immediately, counts it, and logs
// at most one Warn line every 5 seconds.
package forward
