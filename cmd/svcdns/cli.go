package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// dispatch runs a subcommand when the first argument names one, else the
// server: svcdns [flags] | version | check [flags] | services | instances NAME.
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			return versionCmd(args[1:], stdout, stderr)
		case "check":
			return checkCmd(ctx, args[1:], getenv, stdout, stderr)
		case "services":
			return servicesCmd(ctx, args[1:], getenv, stdout, stderr)
		case "instances":
			return instancesCmd(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	return run(ctx, args, getenv, stdout, stderr)
}

// buildInfo is what svcdns version prints.
type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// svcdns version [--json]: the version, then Go version, os/arch and the
// commit, as CoreDNS prints them.
func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("svcdns version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return usage(err)
	}
	b := currentBuild()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(b)
	}
	fmt.Fprintf(stdout, "svcdns %s\n%s/%s, %s", b.Version, b.OS, b.Arch, b.Go)
	if b.Revision != "" {
		fmt.Fprintf(stdout, ", commit %s", b.Revision)
		if b.Modified {
			fmt.Fprint(stdout, " (modified)")
		}
	}
	fmt.Fprintln(stdout)
	return nil
}

// usage wraps a flag error for exit status 2 (-h stays help).
func usage(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &usageError{err}
}
