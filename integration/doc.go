// Package integration holds svcdns's end-to-end tests: they build the
// svcdns binary and small test programs (testapps/), start the binary as a
// user would, and check its answers with dig, kdig, Go's own resolver and
// busybox nslookup, against the real Docker engine.
//
// The tests carry the build tag "integration":
//
//	go test -tags integration -count=1 ./integration/...
//
// Tests that need no Docker (svcdns --docker-host none, instances registered
// over the HTTP API) always run. The Docker tests skip when `docker info`
// fails, unless CI=true, which turns a missing engine into a failure. Every
// container, network and image a test creates is labelled svcdns-test=1 or
// named svcdns-test-…, removed when the test ends, and swept at the start of
// the next run if a crashed run left it behind.
//
// The Docker tests that start client containers with --dns run svcdns on
// port 53 of the default bridge's gateway address (resolv.conf has no port),
// so they need root, and run one at a time.
//
// No Docker test runs in parallel with another: each svcdns watches every
// container labelled svcdns-test=1. For the same reason two runs of this
// package at once on one engine would break each other (each run's sweep
// and image removal takes away the other's), so TestMain holds a lock file
// for the whole run and a second run waits for it.
package integration
