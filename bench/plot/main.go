// Command plot draws the bar chart of BENCHMARKS.png from the results file
// that bench/run.sh writes: queries/s per server (q-mix and q-a) on the
// left, p99 latency at the fixed rate on the right; -mode proxy and
// -mode cluster draw bench/proxy.sh's and bench/cluster.sh's (cluster.go).
// It uses only the
// standard library; the labels are drawn with a small bitmap font.
//
//	plot -in results.tsv -out BENCHMARKS.png
//	plot -mode cluster -in cluster.tsv -out BENCHMARKS-cluster.png
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
)

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{20, 20, 20, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	dark   = color.RGBA{90, 90, 90, 255}
	blue   = color.RGBA{44, 110, 190, 255}
	orange = color.RGBA{230, 140, 40, 255}
	red    = color.RGBA{190, 50, 50, 255}
)

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

type series struct {
	name  string
	color color.RGBA
	vals  []float64 // per server; NaN = none
	label func(float64) string
}

func main() {
	in := flag.String("in", "results.tsv", "results file (server<TAB>key<TAB>value)")
	out := flag.String("out", "BENCHMARKS.png", "PNG to write")
	title := flag.String("title", "svcdns vs CoreDNS and dnsmasq", "chart title")
	latQPS := flag.String("lat-qps", "30k", "fixed rate of the latency runs, for the label")
	mode := flag.String("mode", "dns", "dns (bench/run.sh), proxy (bench/proxy.sh) or cluster (bench/cluster.sh)")
	flag.Parse()
	draw := func() error { return run(*in, *out, *title, *latQPS, *mode) }
	if *mode == "cluster" {
		draw = func() error { return runCluster(*in, *out, *title) }
	}
	if err := draw(); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
}

func run(in, out, title, latQPS, mode string) error {
	servers, vals, err := read(in)
	if err != nil {
		return err
	}
	if len(servers) == 0 {
		return fmt.Errorf("%s: no servers", in)
	}
	get := func(key string) []float64 {
		v := make([]float64, len(servers))
		for i, s := range servers {
			f, err := strconv.ParseFloat(vals[s][key], 64)
			if err != nil || f <= 0 {
				f = math.NaN()
			}
			v[i] = f
		}
		return v
	}
	kq := func(f float64) string { return fmt.Sprintf("%.0fk", f/1000) }
	us := func(f float64) string {
		if f >= 1000 {
			return fmt.Sprintf("%.1f ms", f/1000)
		}
		return fmt.Sprintf("%.0f µs", f)
	}

	const W, H = 1200, 560
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Bounds(), white)
	drawText(img, (W-textWidth(title, 3))/2, 16, title, 3, black)

	left := image.Rect(70, 100, 690, 470)
	right := image.Rect(790, 100, 1170, 470)
	if mode == "proxy" {
		bars(img, left, "requests/s, one pinned proxy core (more is better)", servers, []series{
			{"req/s", blue, get("rps"), kq},
			{"req/s per proxy core", orange, get("rps_core"), kq},
		})
		bars(img, right, "p99 at "+latQPS+" req/s (less is better)", servers, []series{
			{"p99", red, get("p99"), us},
		})
	} else {
		bars(img, left, "queries/s, one pinned core (more is better)", servers, []series{
			{"q-mix (80% A, 20% SRV)", blue, get("qmix"), kq},
			{"q-a (A only)", orange, get("qa"), kq},
		})
		bars(img, right, "p99 at "+latQPS+" q/s (less is better)", servers, []series{
			{"p99", red, get("p99"), us},
		})
	}
	return writePNG(img, out)
}

// writePNG writes img to the file out.
func writePNG(img image.Image, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// bars draws a grouped bar chart of ss in r: one group per server, a
// value label on each bar, server names below, a legend above.
func bars(img *image.RGBA, r image.Rectangle, title string, servers []string, ss []series) {
	drawText(img, r.Min.X, r.Min.Y-46, title, 2, black)
	// Legend.
	x := r.Min.X
	for _, s := range ss {
		if len(ss) == 1 {
			break
		}
		fill(img, image.Rect(x, r.Min.Y-22, x+14, r.Min.Y-8), s.color)
		drawText(img, x+20, r.Min.Y-22, s.name, 2, dark)
		x += 20 + textWidth(s.name, 2) + 30
	}
	top := 0.0
	for _, s := range ss {
		for _, v := range s.vals {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	if top == 0 {
		top = 1
	}
	top *= 1.15
	// Axis and grid: four lines.
	for i := 0; i <= 4; i++ {
		y := r.Max.Y - int(float64(r.Dy())*float64(i)/4)
		fill(img, image.Rect(r.Min.X, y, r.Max.X, y+1), grey)
	}
	fill(img, image.Rect(r.Min.X, r.Min.Y, r.Min.X+1, r.Max.Y+1), dark)
	fill(img, image.Rect(r.Min.X, r.Max.Y, r.Max.X, r.Max.Y+2), dark)

	group := r.Dx() / len(servers)
	barW := min((group-16)/len(ss), 70)
	for i, name := range servers {
		gx := r.Min.X + i*group + (group-barW*len(ss))/2
		for j, s := range ss {
			v := s.vals[i]
			bx := gx + j*barW
			if math.IsNaN(v) {
				drawText(img, bx+(barW-textWidth("n/a", 1))/2, r.Max.Y-12, "n/a", 1, dark)
				continue
			}
			h := int(float64(r.Dy()) * v / top)
			fill(img, image.Rect(bx+2, r.Max.Y-h, bx+barW-2, r.Max.Y), s.color)
			lbl := s.label(v)
			scale := 2
			if textWidth(lbl, 2) > barW+8 {
				scale = 1
			}
			drawText(img, bx+(barW-textWidth(lbl, scale))/2, r.Max.Y-h-8*scale-2, lbl, scale, black)
		}
		// Server name, in two lines when it is too wide.
		lines := []string{name}
		if textWidth(name, 2) > group-4 {
			if k := strings.IndexByte(name, '-'); k > 0 {
				lines = []string{name[:k], name[k:]}
			}
		}
		for k, l := range lines {
			scale := 2
			if textWidth(l, 2) > group-4 {
				scale = 1
			}
			cx := r.Min.X + i*group + group/2
			drawText(img, cx-textWidth(l, scale)/2, r.Max.Y+10+k*18, l, scale, black)
		}
	}
}

// read returns the servers in file order (the "machine" pseudo-server
// left out) and their key/value pairs.
func read(path string) ([]string, map[string]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var order []string
	vals := map[string]map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "\t", 3)
		if len(p) != 3 || p[0] == "machine" {
			continue
		}
		if vals[p[0]] == nil {
			vals[p[0]] = map[string]string{}
			order = append(order, p[0])
		}
		vals[p[0]][p[1]] = p[2]
	}
	return order, vals, sc.Err()
}
