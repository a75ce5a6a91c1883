package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// cmdQPS prints "queries-per-second lost-queries run-time-seconds" from
// dnsperf's statistics.
func cmdQPS(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	qps, lost, runTime := -1.0, -1, 0.0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 4 && f[0] == "Run" && f[1] == "time" && f[2] == "(s):":
			runTime, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 4 && f[0] == "Queries" && f[1] == "per" && f[2] == "second:":
			qps, _ = strconv.ParseFloat(f[3], 64)
		case len(f) >= 3 && f[0] == "Queries" && f[1] == "lost:":
			lost, _ = strconv.Atoi(f[2])
		}
	}
	if qps < 0 {
		return errors.New("no \"Queries per second\" line in the dnsperf output")
	}
	fmt.Fprintf(out, "%.0f %d %.3f\n", qps, lost, runTime)
	return nil
}

// cmdPct reads dnsperf -v output ("> NOERROR name TYPE 0.000075" per
// query, "> T name TYPE" for a timeout) and prints p50 p99 p99.9 in µs and
// the completed and lost counts. A lost query counts as slower than every
// answer, so a percentile that falls on one prints "lost".
func cmdPct(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var lat []float64
	lost := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "> ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 5 {
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v*1e6)
				continue
			}
		}
		lost++
	}
	if len(lat) == 0 {
		return errors.New("no per-query lines: was dnsperf run with -v?")
	}
	sort.Float64s(lat)
	n := len(lat) + lost
	p := func(q float64) string {
		i := int(math.Ceil(q*float64(n))) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(lat) {
			return "lost"
		}
		return strconv.FormatFloat(lat[i], 'f', 0, 64)
	}
	fmt.Fprintf(out, "%s %s %s %d %d\n", p(0.50), p(0.99), p(0.999), len(lat), lost)
	return nil
}
