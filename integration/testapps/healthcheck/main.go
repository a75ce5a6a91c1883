// Command healthcheck is the HEALTHCHECK of the integration tests' images:
// with no argument it exits 0 when the health file exists and 1 when it does
// not. "healthcheck pass" and "healthcheck fail" create and remove the file,
// so a test flips a container's health with docker exec, no shell needed.
//
//	HEALTHCHECK --interval=500ms --retries=1 CMD ["/healthcheck"]
//	docker exec <container> /healthcheck fail
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	path := os.Getenv("HEALTH_FILE")
	if path == "" {
		path = "/health/ok"
	}
	var err error
	switch {
	case len(os.Args) == 1:
		_, err = os.Stat(path)
	case os.Args[1] == "pass":
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, []byte("ok\n"), 0o644)
		}
	case os.Args[1] == "fail":
		if err = os.Remove(path); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	default:
		err = errors.New("usage: healthcheck [pass|fail]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		os.Exit(1)
	}
}
