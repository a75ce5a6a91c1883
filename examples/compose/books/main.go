// Command books is the demo's service: it answers every HTTP request on
// :8080 with which replica it is (its hostname, the container's short id).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "books-ms replica %s: %s %s\n", host, r.Method, r.URL.Path)
	})
	go func() { log.Fatal(http.ListenAndServe(":8080", nil)) }()
	// PID 1 in a container: stop at once on docker stop.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
