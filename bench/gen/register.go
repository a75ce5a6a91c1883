package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func cmdRegister(args []string) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8053", "svcdns HTTP API base URL")
	token := fs.String("token", "", "bearer token")
	workers := fs.Int("c", 16, "concurrent PUTs")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after (waiting for the API included)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	if err := waitAPI(ctx, client, *api); err != nil {
		return err
	}
	svcs := services()
	jobs := make(chan service)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
		done    atomic.Int64
	)
	began := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				if err := put(ctx, client, *api, *token, s); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				done.Add(1)
			}
		}()
	}
	for _, s := range svcs {
		if ctx.Err() != nil {
			break
		}
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("registered %d of %d: %w", done.Load(), len(svcs), err)
	}
	fmt.Printf("registered %d instances in %v\n", done.Load(), time.Since(began).Round(time.Millisecond))
	return nil
}

// waitAPI waits until the API answers anything at all (the server is up).
func waitAPI(ctx context.Context, client *http.Client, api string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api, "/")+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("API %s not up: %w", api, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func put(ctx context.Context, client *http.Client, api, token string, s service) error {
	body, _ := json.Marshal(map[string]any{
		"service": s.Name, "address": s.IP, "port": s.Port, "protocol": "tcp",
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(api, "/")+"/v1/instances/"+s.Name, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("put %s: %w", s.Name, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("put %s: %s: %s", s.Name, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
