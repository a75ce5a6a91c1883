package dnsserver

import (
	"net"
	"time"

	"github.com/miekg/dns"
)

// completeMessage reports whether p holds every record its header counts.
// miekg/dns's Unpack stops quietly where the data ends, so a cut-off query
// (a question without its type and class, an OPT promised but missing)
// would otherwise be answered as if the missing parts were zero; such a
// message gets FORMERR instead. Bytes after the last record are tolerated,
// as by most servers.
func completeMessage(p []byte) bool {
	if len(p) < headerLen {
		return false
	}
	count := func(i int) int { return int(p[i])<<8 | int(p[i+1]) }
	off := headerLen
	for range count(4) {
		_, o, err := dns.UnpackDomainName(p, off)
		if err != nil || o+4 > len(p) {
			return false
		}
		off = o + 4
	}
	// Each record needs at least 11 bytes, so the loop ends with the data
	// whatever the counts claim.
	for range count(6) + count(8) + count(10) {
		_, o, err := dns.UnpackDomainName(p, off)
		if err != nil || o+10 > len(p) {
			return false
		}
		off = o + 10 + (int(p[o+8])<<8 | int(p[o+9]))
		if off > len(p) {
			return false
		}
	}
	return true
}

// strictReader is the TCP side of completeMessage: an incomplete message
// is handed on as its bare header with no question, which the accept
// filter answers with FORMERR and the query's ID.
type strictReader struct{ dns.Reader }

func (r strictReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	b, err := r.Reader.ReadTCP(conn, timeout)
	if err == nil && len(b) >= headerLen && !completeMessage(b) {
		b = b[:headerLen]
		clear(b[4:headerLen])
	}
	return b, err
}
