package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// maxCorrelationLen bounds a caller-supplied correlation id: it is copied
// into every record header and log line.
const maxCorrelationLen = 128

// correlationID takes X-Correlation-ID when it is sane, else the trace id of
// a valid W3C traceparent (so a trace and its events share one id), else a
// new random id.
func correlationID(h http.Header) string {
	if v := firstValue(h, headerCorrelationID); validCorrelationID(v) {
		return v
	}
	if tp := firstValue(h, headerTraceparent); validTraceparent(tp) {
		return tp[3:35]
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validCorrelationID reports whether a caller-supplied correlation id is
// taken as is: not empty, at most maxCorrelationLen bytes, printable ASCII,
// and not ".", ".." or "/": the history is asked for by the id as a URL
// path segment, which a URL cleans the first two away from, and Go's
// ServeMux does not route a lone escaped slash (%2F) to a wildcard (an
// event sent with one could not be traced). Longer ids holding those
// characters route fine.
func validCorrelationID(v string) bool {
	return v != "" && v != "." && v != ".." && v != "/" && len(v) <= maxCorrelationLen && printable(v)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validTraceparent checks the W3C shape:
// <2 hex version, not ff>-<32 hex trace id, not all 0>-<16 hex parent id,
// not all 0>-<2 hex flags>, exactly that for version 00; a later version
// may add fields after a '-' (read as W3C Trace Context says, and as
// OpenTelemetry's propagator does, which continues such a trace).
func validTraceparent(tp string) bool {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" {
		return false
	}
	if len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-') {
		return false
	}
	tp = tp[:55]
	for _, part := range []string{tp[:2], tp[3:35], tp[36:52], tp[53:]} {
		if !isLowerHex(part) {
			return false
		}
	}
	return tp[3:35] != "00000000000000000000000000000000" && tp[36:52] != "0000000000000000"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
