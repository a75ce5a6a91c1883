package main

import (
	"flag"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/svcdns/svcdns/internal/bufpool"
)

// bareProxy serves a ReverseProxy to one target until SIGTERM: Rewrite
// with SetURL and SetXForwarded, the client's Host kept, a pool of copy
// buffers, and the Transport and Server settings of svcdns's proxy at its
// defaults (proxy.New, Proxy.Serve), so that the difference to svcdns's
// row is svcdns's own code.
func bareProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:15375", "listen address")
	target := fs.String("target", "127.0.0.1:15370", "host:port of the backend")
	_ = fs.Parse(args)
	to := &url.URL{Scheme: "http", Host: *target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		BufferPool: &bufpool.Pool{},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		},
	}
	return serve(*addr, &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second})
}
