package ingest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
)

// Response is the JSON body of every webhook answer.
type Response struct {
	ID            string `json:"id,omitempty"`
	EventID       string `json:"event_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

// writeResponse writes v as writeJSON would, without reflection when every
// field is plain ASCII that encoding/json copies verbatim (ids are, error
// texts are ours): 1 allocation instead of 3 per answer. Anything else goes
// through encoding/json, so the bytes are always json.Marshal's
// (FuzzAppendResponse keeps them so).
func writeResponse(w http.ResponseWriter, status int, v Response) {
	b, ok := appendResponse(make([]byte, 0, 160), v)
	if !ok {
		writeJSON(w, status, v)
		return
	}
	writeBody(w, status, append(b, '\n'))
}

// appendResponse appends the JSON encoding of v, or reports false when a
// field holds a byte encoding/json would escape.
func appendResponse(b []byte, v Response) ([]byte, bool) {
	b = append(b, '{')
	for _, f := range [...]struct{ name, value string }{
		{`"id":"`, v.ID}, {`"event_id":"`, v.EventID}, {`"correlation_id":"`, v.CorrelationID}, {`"error":"`, v.Error},
	} {
		if f.value == "" { // omitempty
			continue
		}
		if !verbatimJSON(f.value) {
			return b, false
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(append(append(b, f.name...), f.value...), '"')
	}
	return append(b, '}'), true
}

// verbatimJSON reports whether encoding/json writes s unchanged inside
// quotes: printable ASCII other than the quote, the backslash and the
// characters it escapes for HTML (<, > and &).
func verbatimJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only for values that cannot be JSON: a bug
		slog.Error("encode response", "error", err)
		b = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	writeBody(w, status, append(b, '\n'))
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	// One backing array for both values: a third fewer allocations here.
	vs := []string{"application/json", strconv.Itoa(len(b))}
	h[headerContentType] = vs[0:1:1]
	h[headerContentLength] = vs[1:2:2]
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		slog.Debug("write response", "error", err)
	}
}
