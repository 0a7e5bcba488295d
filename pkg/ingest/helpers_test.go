package ingest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func ioNopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func httpRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustGet(t testing.TB, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
