// Command svcdns is DNS service discovery for Docker in one binary: it
// follows the Docker engine's containers, keeps every running service
// instance in an in-memory catalog, and answers DNS for names such as
// books-ms.service.local. Run svcdns -h for its flags; svcdns version,
// svcdns check [flags], svcdns services and svcdns instances NAME are
// its subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode maps run's result to the process's exit status: 0 for a clean
// stop (or -h), 2 for a bad command line, 1 for anything else, with one
// line saying why.
func exitCode(err error, stderr io.Writer) int {
	var usage *usageError
	var reported *reportedError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &reported):
		return reported.code
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "svcdns: %v\n", usage.err)
		return 2
	default:
		fmt.Fprintf(stderr, "svcdns: %v\n", err)
		return 1
	}
}

// usageError is a bad flag or environment variable.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// reportedError is a failure already told on stdout (svcdns check's FAIL
// lines): the exit status says it, with no line of its own.
type reportedError struct {
	code int
	err  error
}

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }
