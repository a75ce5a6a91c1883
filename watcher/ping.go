package watcher

import (
	"context"
	"fmt"
)

// Engine is what Ping learns of a Docker engine.
type Engine struct {
	Version    string // the engine's version, e.g. 20.10.24
	APIVersion string // the API version the client and the engine agreed on
}

// Ping asks the Docker engine at host ("" = DOCKER_HOST or the local
// socket) for its version, the way the watcher connects to it: svcdns
// check's Docker probe. It only reads (GET /version).
func Ping(ctx context.Context, host string) (Engine, error) {
	cli, err := newDockerClient(host)
	if err != nil {
		return Engine{}, err
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return Engine{}, fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	return Engine{Version: v.Version, APIVersion: cli.ClientVersion()}, nil
}
