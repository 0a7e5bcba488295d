package ingest

import (
	"encoding/json"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestShortSecretWarnedAtStart: a signing secret shorter than 16 bytes
// (GitHub's and an hmac source's are chosen by the user) is still taken,
// as refusing it would stop a working setup, but ingest warns at start,
// naming the source, the variable and the length in bytes, never the
// secret. A Standard Webhooks secret is measured as the key it decodes
// to. It started silently.
func TestShortSecretWarnedAtStart(t *testing.T) {
	var logs syncbuf.Buffer
	newHarnessDeps(t, testenv.Embedded(t), testSources, nil, func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	got := map[string]float64{}
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(m["msg"].(string), "shorter than 16 bytes") {
			src, _ := m["source"].(string)
			env, _ := m["secret_env"].(string)
			n, _ := m["bytes"].(float64)
			got[src+"|"+env] = n
		}
	}
	// testSources: shop's secret is "shpss_test", internal's
	// "internal-secret"; the others are 24 bytes or more.
	want := map[string]float64{"shop|T_SHOP_SECRET": 10, "internal|T_INTERNAL_SECRET": 15}
	if !maps.Equal(got, want) {
		t.Errorf("short-secret warnings %v, want %v; log:\n%s", got, want, logs.String())
	}
	for _, secret := range []string{"shpss_test", "internal-secret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log quotes the secret %q", secret)
		}
	}
}
