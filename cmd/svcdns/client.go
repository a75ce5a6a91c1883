package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/svcdns/svcdns/httpapi"
)

const defaultAPI = "http://127.0.0.1:8053"

// clientFlags are the flags of the commands that read a running svcdns's
// API: --api (SVCDNS_API) and --json.
type clientFlags struct {
	api    string
	asJSON bool
}

func parseClientFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (clientFlags, []string, error) {
	var cf clientFlags
	fs := flag.NewFlagSet("svcdns "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("SVCDNS_API")
	if def == "" {
		def = defaultAPI
	}
	fs.StringVar(&cf.api, "api", def, "`URL` of a running svcdns's HTTP API (env SVCDNS_API)")
	fs.BoolVar(&cf.asJSON, "json", false, "print the API's JSON instead of a table")
	// Flags may come after the name too: svcdns instances books-ms --json.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return cf, nil, usage(err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if !strings.Contains(cf.api, "://") {
		cf.api = "http://" + cf.api
	}
	return cf, rest, nil
}

// get reads path from the API into v, and returns the raw body.
func (cf clientFlags) get(ctx context.Context, path string, v any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cf.api, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--api %s: %w", cf.api, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the svcdns API at %s (is svcdns running? set --api or SVCDNS_API): %w", cf.api, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e httpapi.Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s", path, e.Error)
		}
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("GET %s: not the svcdns API (%s): %w", path, cf.api, err)
	}
	return body, nil
}

// svcdns services: every service with its instance counts.
func servicesCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf, rest, err := parseClientFlags("services", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Errorf("services takes no arguments (got %q); for one service: svcdns instances NAME", rest)}
	}
	return printList(ctx, cf, "/v1/services", stdout, []string{"SERVICE", "INSTANCES", "PASSING"},
		func(s httpapi.Service) []string {
			return []string{s.Name, strconv.Itoa(s.Instances), strconv.Itoa(s.Passing)}
		})
}

// svcdns instances NAME: the instances of one service, like docker ps.
func instancesCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cf, rest, err := parseClientFlags("instances", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{errors.New("usage: svcdns instances [--api URL] [--json] NAME")}
	}
	return printList(ctx, cf, "/v1/services/"+url.PathEscape(rest[0]), stdout,
		[]string{"CONTAINER", "NODE", "ADDRESSES", "PORT", "PUBLISHED", "TAGS", "HEALTH", "SOURCE", "ID"}, instanceRow)
}

// instanceRow is one line of svcdns instances.
func instanceRow(in httpapi.Instance) []string {
	var addrs []string
	for _, n := range in.Networks {
		a := n.Address
		if n.Network != "" {
			a += " (" + n.Network + ")"
		}
		addrs = append(addrs, a)
	}
	published := "-"
	if in.HostAddress != "" {
		published = net.JoinHostPort(in.HostAddress, strconv.Itoa(int(in.HostPort)))
	}
	port := "-"
	if in.Port != 0 {
		port = strconv.Itoa(int(in.Port)) + "/" + in.Protocol
	}
	health := "passing"
	if !in.Passing {
		health = "failing"
	}
	return []string{in.ContainerName, in.Node, orDash(strings.Join(addrs, ", ")), port, published,
		orDash(strings.Join(in.Tags, ",")), health, in.Source, shortID(in.ID)}
}

// printList reads a JSON list from the API and prints it as a table of
// header and one row per item, or as the API's JSON with --json.
func printList[T any](ctx context.Context, cf clientFlags, path string, stdout io.Writer, header []string, row func(T) []string) error {
	var items []T
	body, err := cf.get(ctx, path, &items)
	if err != nil {
		return err
	}
	if cf.asJSON {
		return writeIndented(stdout, body)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(row(it), "\t"))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortID shortens a Docker instance id (64 hex digits and a port) as
// docker ps shortens container ids.
func shortID(id string) string {
	if i := strings.IndexByte(id, ':'); i == 64 {
		return id[:12] + id[i:]
	}
	return id
}

func writeIndented(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
