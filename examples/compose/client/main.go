// Command client is the demo's consumer: it asks its ordinary resolver
// (the container's, which Compose points at svcdns) for the SRV records of
// books-ms.service.local, then calls every replica at the host and port
// the records give, and prints what each one answered.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const name = "books-ms.service.local"

func main() {
	want := 2
	if len(os.Args) > 1 {
		want, _ = strconv.Atoi(os.Args[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var srvs []*net.SRV
	for {
		_, got, err := net.DefaultResolver.LookupSRV(ctx, "", "", name)
		if err == nil && len(got) >= want {
			srvs = got
			break
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "client: %s SRV: %d records, want %d (last error: %v)\n", name, len(got), want, err)
			os.Exit(1)
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Printf("%s SRV:\n", name)
	for _, s := range srvs {
		fmt.Printf("  %s port %d\n", s.Target, s.Port)
	}
	failed := false
	for _, s := range srvs {
		url := "http://" + net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))) + "/api/v1/books"
		resp, err := http.Get(url)
		if err != nil {
			fmt.Fprintf(os.Stderr, "client: GET %s: %v\n", url, err)
			failed = true
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET %s -> %s", url, body)
	}
	if failed {
		os.Exit(1)
	}
}
