// Command coredns is CoreDNS with the plugins svcdns's tests and benchmark
// use, built the way CoreDNS documents for a custom plugin set: its own
// main importing coremain and the chosen plugins. It is a module of its
// own so that CoreDNS's dependencies stay out of svcdns's go.mod, and so
// that a fresh machine downloads what these plugins need rather than
// every cloud SDK the full binary links (the full `go install` took longer
// than the integration tests' timeout on a fresh CI machine).
//
// The query path is CoreDNS's own (core/dnsserver and the plugin chain a
// Corefile names), so the benchmark's figures for `file` and `hosts` are
// those of the released binary.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/log"
)

func main() {
	coremain.Run()
}
