// Package httpstatus records the status an HTTP handler wrote, for the
// metrics of the API and of the proxy.
package httpstatus

import (
	"bufio"
	"net"
	"net/http"
)

// Writer remembers the final status written through it. Informational
// answers (1xx) do not count, except 101 Switching Protocols, which ends a
// WebSocket upgrade. Unwrap lets http.ResponseController flush and hijack
// through it.
type Writer struct {
	http.ResponseWriter
	code int
}

// WriteHeader records code unless a final status was recorded already.
func (w *Writer) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records 200 when nothing was written before, as net/http does.
func (w *Writer) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is httputil.ReverseProxy taking the connection after an
// instance's 101 Switching Protocols, which it then writes itself.
func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Status is the status written, 200 when the handler wrote nothing.
func (w *Writer) Status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
