package ingest

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
)

// FuzzAppendResponse: writeResponse answers with exactly json.Marshal's
// bytes, whatever the fields hold (ids come from senders' payloads).
func FuzzAppendResponse(f *testing.F) {
	f.Add("0190c0de-0000-7000-8000-000000000001", "evt_1", "4bf92f3577b34da6a3ce929d0e0e4736", "")
	f.Add("", "", "order-42", "signature verification failed")
	f.Add("", "a<b>&c", "x", "")
	f.Add("", "quote\" back\\slash", "", "tab\there")
	f.Add("", "\xff\xfe", "\u2028\u2029", "é")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, id, eventID, corr, msg string) {
		v := Response{ID: id, EventID: eventID, CorrelationID: corr, Error: msg}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		w := httptest.NewRecorder()
		writeResponse(w, 202, v)
		if got := w.Body.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("%+v: wrote %q, json.Marshal %q", v, got, want)
		}
		if b, ok := appendResponse(nil, v); ok && !bytes.Equal(append(b, '\n'), want) {
			t.Fatalf("%+v: fast path %q, json.Marshal %q", v, b, want)
		}
		if w.Code != 202 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Fatalf("status %d, headers %v", w.Code, w.Header())
		}
	})
}
