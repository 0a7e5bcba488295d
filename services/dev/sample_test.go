package main

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/inletdev/inlet/pkg/source"
)

// TestSampleCurlIsNewEachStart: the banner's curl carries a body its
// signature verifies, and each start's order update is a new one (its
// updated_at is the start's time): the shop source's natural key is the
// order id and updated_at, and a sample repeated across starts on a kept
// .inlet/ was a duplicate, where the README promises it is processed.
func TestSampleCurlIsNewEachStart(t *testing.T) {
	for k, v := range devSecrets {
		t.Setenv(k, v)
	}
	sources, err := source.Load("../../deploy/sources.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := sources.Get("shop")
	sig := regexp.MustCompile(`X-Shopify-Hmac-Sha256: ([^']+)'`)
	data := regexp.MustCompile(`--data-binary '([^']*)'`)
	parse := func(curl string) (http.Header, []byte) {
		s, d := sig.FindStringSubmatch(curl), data.FindStringSubmatch(curl)
		if s == nil || d == nil {
			t.Fatalf("no signature or body in\n%s", curl)
		}
		h := http.Header{}
		h.Set("X-Shopify-Hmac-Sha256", s[1])
		return h, []byte(d[1])
	}
	first := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var updated []string
	for _, at := range []time.Time{first, first.Add(time.Hour)} {
		h, body := parse(sampleCurl(sources, "http://127.0.0.1:8080", at))
		if err := src.Provider().Verify(h, body, at); err != nil {
			t.Fatalf("the sample's signature does not verify: %v\n%s", err, body)
		}
		updated = append(updated, gjson.GetBytes(body, "updated_at").String())
	}
	if updated[0] != "2026-11-29T09:00:00Z" || updated[1] == updated[0] {
		t.Fatalf("updated_at %q: want each start's own time", updated)
	}
}
