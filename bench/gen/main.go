// Command gen is the helper of bench/run.sh: it writes the data set of the
// side-by-side benchmark, registers it with svcdns, checks that a server
// answers all of it, turns dnsperf output into figures, and prints the
// results table.
//
//	gen data -dir D                     zone file, hosts, dnsmasq conf, query files
//	gen register -api URL               PUT the 1,001 instances into svcdns
//	gen check -server ADDR [-types A,SRV] [-wait 30s]
//	gen qps < dnsperf-output            "qps lost"
//	gen pct < dnsperf-v-output          "p50 p99 p99.9 completed lost" (µs)
//	gen report -in results.tsv [-md]    the results table (text or Markdown)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen data|register|check|qps|pct|report [flags]")
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "data":
		err = cmdData(args)
	case "register":
		err = cmdRegister(args)
	case "check":
		err = cmdCheck(args)
	case "qps":
		err = cmdQPS(os.Stdin, os.Stdout)
	case "pct":
		err = cmdPct(os.Stdin, os.Stdout)
	case "report":
		err = cmdReport(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
