package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// results.tsv holds "server<TAB>key<TAB>value" lines written by run.sh.
// Keys: qmix, qa (median queries/s), qmix_runs, qa_runs (all runs), p50,
// p99, p999 (µs at the fixed rate), lat_file, ipq (instructions/query),
// note.
type results struct {
	order []string
	v     map[string]map[string]string
}

func readResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &results{v: map[string]map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		if _, ok := r.v[f[0]]; !ok {
			r.v[f[0]] = map[string]string{}
			r.order = append(r.order, f[0])
		}
		r.v[f[0]][f[1]] = f[2]
	}
	return r, nil
}

func (r *results) get(server, key string) string { return r.v[server][key] }

func (r *results) num(server, key string) (float64, bool) {
	f, err := strconv.ParseFloat(r.get(server, key), 64)
	return f, err == nil && f > 0
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "results.tsv", "results file")
	md := fs.Bool("md", false, "Markdown tables")
	gobench := fs.String("gobench", "", "go test -bench output, for the targets table")
	eventlat := fs.String("eventlat", "", "eventlat output, for the targets table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := readResults(*in)
	if err != nil {
		return err
	}
	t := &tables{md: *md}
	r.mainTable(t)
	r.detailTable(t)
	r.targetTable(t, readFile(*gobench), readFile(*eventlat))
	return nil
}

func readFile(path string) string {
	if path == "" {
		return ""
	}
	b, _ := os.ReadFile(path)
	return string(b)
}

// tables prints tables as Markdown or as aligned text.
type tables struct{ md bool }

func (t *tables) print(title string, head []string, rows [][]string, notes []string) {
	if t.md {
		fmt.Printf("%s\n\n| %s |\n|%s\n", title, strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, row := range rows {
			fmt.Println("| " + strings.Join(row, " | ") + " |")
		}
		for _, n := range notes {
			fmt.Println("\n" + n)
		}
		fmt.Println()
		return
	}
	fmt.Println(strings.TrimLeft(title, "# "))
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len([]rune(h))
	}
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c + strings.Repeat(" ", width[i]-len([]rune(c))+2))
		}
		fmt.Println("  " + strings.TrimRight(b.String(), " "))
	}
	line(head)
	for _, row := range rows {
		line(row)
	}
	for _, n := range notes {
		fmt.Println("  " + n)
	}
	fmt.Println()
}

func (r *results) servers() []string {
	return slices.DeleteFunc(slices.Clone(r.order), func(s string) bool { return s == "machine" })
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *results) kqps(server, key string) string {
	f, ok := r.num(server, key)
	if !ok {
		return dash(r.get(server, key))
	}
	return fmt.Sprintf("%.1fk", f/1000)
}

func fmtUS(f float64) string {
	if f >= 1000 {
		return fmt.Sprintf("%.2f ms", f/1000)
	}
	return fmt.Sprintf("%.0f µs", f)
}

func (r *results) us(server, key string) string {
	v := r.get(server, key)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return dash(v)
	}
	return fmtUS(f)
}

// ratio is svcdns's queries/s over server's on key, or "".
func (r *results) ratio(server, key string) (float64, bool) {
	a, ok1 := r.num("svcdns", key)
	b, ok2 := r.num(server, key)
	if !ok1 || !ok2 {
		return 0, false
	}
	return a / b, true
}

func (r *results) mainTable(t *tables) {
	head := []string{"server", "q-mix QPS", "q-a QPS", "q-mix QPS per server core", "p50", "p99", "p99.9", "latency on", "instr/query", "svcdns ÷ this"}
	var rows [][]string
	for _, s := range r.servers() {
		var parts []string
		for _, k := range []string{"qmix", "qa", "qmix_core"} {
			if x, ok := r.ratio(s, k); ok && s != "svcdns" {
				parts = append(parts, fmt.Sprintf("%.2f× %s", x, map[string]string{"qmix": "mix", "qa": "A", "qmix_core": "mix per core"}[k]))
			}
		}
		ipq := dash(r.get(s, "ipq"))
		if f, ok := r.num(s, "ipq"); ok {
			ipq = fmt.Sprintf("%.1fk", f/1000)
		}
		rows = append(rows, []string{
			s, r.kqps(s, "qmix"), r.kqps(s, "qa"), r.kqps(s, "qmix_core"), r.us(s, "p50"), r.us(s, "p99"), r.us(s, "p999"),
			dash(r.get(s, "lat_file")), ipq, dash(strings.Join(parts, ", ")),
		})
	}
	t.print("### Side by side", head, rows, nil)
}

func (r *results) detailTable(t *tables) {
	head := []string{"server", "q-mix runs (q/s)", "q-a runs (q/s)", "server CPU", "RssAnon loaded", "lost at fixed rate", "callgrind Ir", "answers"}
	var rows [][]string
	kb := func(s, k string) string {
		if f, ok := r.num(s, k); ok {
			return fmt.Sprintf("%.1f MB", f/1024)
		}
		return "—"
	}
	for _, s := range r.servers() {
		cpu := dash(r.get(s, "cpu"))
		if cpu != "—" {
			cpu += "%"
		}
		rows = append(rows, []string{
			s, dash(r.get(s, "qmix_runs")), dash(r.get(s, "qa_runs")), cpu, kb(s, "rss_loaded"),
			dash(r.get(s, "lat_lost")), dash(r.get(s, "ipq_detail")), dash(r.get(s, "shape")),
		})
	}
	t.print("### Every run", head, rows, []string{"Server CPU is measured over the first throughput run; near 100% means the server, not dnsperf, was the limit."})
}
