package testutil

import "testing"

// dockerEnv are the variables the Docker client's FromEnv reads.
var dockerEnv = []string{"DOCKER_HOST", "DOCKER_API_VERSION", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"}

// NoDockerEnv empties the DOCKER_* variables for tb (the client takes an
// empty one as unset), for a test that points a real Docker client at a
// fake engine: a CI machine that reaches its engine over TLS sets
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, and the client would then speak
// TLS to the fake's plain socket, or fail on certificates it cannot read.
func NoDockerEnv(tb testing.TB) {
	tb.Helper()
	for _, k := range dockerEnv {
		tb.Setenv(k, "")
	}
}
