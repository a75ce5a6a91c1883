// Package bench holds svcdns's benchmarks: Go benchmarks of the catalog and
// the watcher at scale (bench_test.go, only Benchmark functions, so `go test
// ./...` runs nothing here), and the side-by-side harness run.sh with its
// helper programs gen (data set, registration, dnsperf parsing, report),
// plot (BENCHMARKS.png) and eventlat (event → resolvable on the real Docker
// engine). run.sh and proxy.sh (the HTTP proxy's section) source lib.sh,
// the shell setup they share (scratch directory and cleanup, packages,
// the svcdns binary, free ports, pinned servers).
//
//	go test -run '^$' -bench . -benchmem ./bench/
//	bench/run.sh        # what `make bench` runs
package bench
