package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// service is one name of the data set (performance-anchors.md §4).
type service struct {
	Name string
	IP   string
	Port int
}

const (
	zone     = "service.local"
	nQueries = 20000
	shareA   = 0.8
)

// services returns books-ms and svc0…svc999, each with one address and port.
func services() []service {
	out := []service{{"books-ms", "172.17.0.2", 8080}}
	for i := range 1000 {
		out = append(out, service{
			Name: fmt.Sprintf("svc%d", i),
			IP:   fmt.Sprintf("10.%d.%d.%d", (i>>8)&255, i&255, i%250+2),
			Port: 8000 + i,
		})
	}
	return out
}

func cmdData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	dir := fs.String("dir", ".", "output directory")
	seed := fs.Uint64("seed", 1, "seed of the query mix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svcs := services()
	var db, hosts, srv bytes.Buffer
	fmt.Fprintf(&db, "$ORIGIN %s.\n$TTL 0\n@ 3600 IN SOA ns admin 1 7200 3600 1209600 3600\n@ 3600 IN NS ns\nns 3600 IN A 127.0.0.1\n", zone)
	for _, s := range svcs {
		fmt.Fprintf(&db, "%s 0 IN A %s\n%s 0 IN SRV 1 1 %d %s.%s.\n", s.Name, s.IP, s.Name, s.Port, s.Name, zone)
		fmt.Fprintf(&hosts, "%s %s.%s\n", s.IP, s.Name, zone)
		fmt.Fprintf(&srv, "srv-host=%s.%s,%s.%s,%d,1,1\n", s.Name, zone, s.Name, zone, s.Port)
	}
	r := rand.New(rand.NewPCG(*seed, 0))
	var mix, onlyA bytes.Buffer
	for range nQueries {
		name := fmt.Sprintf("svc%d.%s", r.IntN(1000), zone)
		if r.Float64() < shareA {
			fmt.Fprintf(&mix, "%s A\n", name)
			fmt.Fprintf(&onlyA, "%s A\n", name)
		} else {
			fmt.Fprintf(&mix, "%s SRV\n", name)
		}
	}
	files := map[string][]byte{
		"db": db.Bytes(), "hosts": hosts.Bytes(), "srv.conf": srv.Bytes(),
		"q-mix.txt": mix.Bytes(), "q-a.txt": onlyA.Bytes(),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
