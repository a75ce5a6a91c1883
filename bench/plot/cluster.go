package main

import (
	"fmt"
	"image"
	"math"
	"strconv"
)

// runCluster draws BENCHMARKS-cluster.png from bench/cluster.sh's results:
// per cluster size, change -> every node (p50, p99), kill -> gone and
// join -> all held, gossip bytes per node idle and under load; and the DNS
// queries/s of svcdns alone and holding the peers' records.
func runCluster(in, out, title string) error {
	groups, vals, err := read(in)
	if err != nil {
		return err
	}
	var sizes, dns []string
	for _, g := range groups {
		if _, ok := vals[g]["dns_qps"]; ok {
			dns = append(dns, g)
		} else {
			sizes = append(sizes, g)
		}
	}
	if len(sizes) == 0 {
		return fmt.Errorf("%s: no cluster sizes", in)
	}
	get := func(gs []string, key string) []float64 {
		v := make([]float64, len(gs))
		for i, g := range gs {
			f, err := strconv.ParseFloat(vals[g][key], 64)
			if err != nil || f < 0 {
				f = math.NaN()
			}
			v[i] = f
		}
		return v
	}
	ms := func(f float64) string { return fmt.Sprintf("%.0f ms", f) }
	sec := func(f float64) string { return fmt.Sprintf("%.1f s", f) }
	kbs := func(f float64) string { return fmt.Sprintf("%.1fk", f) }
	kq := func(f float64) string { return fmt.Sprintf("%.1fk", f/1000) }

	const W, H = 1400, 560
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Bounds(), white)
	drawText(img, (W-textWidth(title, 3))/2, 16, title, 3, black)
	panels := 3
	if len(dns) > 0 {
		panels = 4
	}
	pw := (W - 60) / panels
	rect := func(i int) image.Rectangle {
		return image.Rect(50+i*pw+20, 130, 50+(i+1)*pw-40, 470)
	}
	bars(img, rect(0), "change, on every node", sizes, []series{
		{"p50", blue, get(sizes, "change_p50_ms"), ms},
		{"p99", red, get(sizes, "change_p99_ms"), ms},
	})
	bars(img, rect(1), "killed: gone, joined: held", sizes, []series{
		{"kill", red, get(sizes, "kill_s"), sec},
		{"join", orange, get(sizes, "join_s"), sec},
	})
	bars(img, rect(2), "gossip kB/s per node", sizes, []series{
		{"idle", blue, get(sizes, "idle_kBs"), kbs},
		{"100 changes/s", orange, get(sizes, "load_kBs"), kbs},
	})
	if len(dns) > 0 {
		bars(img, rect(3), "DNS queries/s", dns, []series{
			{"q-mix", blue, get(dns, "dns_qps"), kq},
		})
	}
	return writePNG(img, out)
}
