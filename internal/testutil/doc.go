// Package testutil holds the helpers that several packages' tests share,
// written once: a goroutine-safe log buffer, the promlint check of a
// registry, and catalog fixtures built the way the watcher and the HTTP
// API write them. It is imported by tests only.
package testutil
