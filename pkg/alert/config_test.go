package alert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
)

// TestValidate: a mistyped format (Slack answers a json body with 400, so
// every alert failed) and a webhook URL that cannot be posted to are
// refused, naming the flag and variable and never quoting the URL.
func TestValidate(t *testing.T) {
	const slack = "https://hooks.slack.com/services/T0001/B0002/SECRET"
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // in the error; none: valid
	}{
		{"defaults", Config{}, nil},
		{"json", Config{Format: "json", WebhookURL: "http://alerts.internal:8080/inlet"}, nil},
		{"slack", Config{Format: "slack", WebhookURL: slack}, nil},
		{"mistyped format", Config{Format: "slak", WebhookURL: slack}, []string{"-alert-format", "INLET_ALERT_FORMAT", `"slak"`}},
		{"no scheme", Config{WebhookURL: "hooks.slack.com/services/T0001/B0002/SECRET"}, []string{"-alert-webhook-url", "INLET_ALERT_WEBHOOK_URL", "https://"}},
		{"not http", Config{WebhookURL: "ftp://hooks.example.com/SECRET"}, []string{"-alert-webhook-url", "https://"}},
		{"no host", Config{WebhookURL: "https:///services/SECRET"}, []string{"-alert-webhook-url", "no host"}},
		{"unparsable", Config{WebhookURL: "https://hooks.slack.com/SECRET\x7f"}, []string{"-alert-webhook-url", "does not parse"}},
		{"both", Config{Format: "Slack", WebhookURL: "SECRET"}, []string{"-alert-format", "-alert-webhook-url"}},
		// url.Parse takes it: alerts went to "/services/SECRET%20extra".
		{"two words", Config{WebhookURL: slack + " extra"}, []string{"-alert-webhook-url", "white space"}},
		// Taken as the defaults without a word.
		{"negative window", Config{Window: -time.Second}, []string{"-alert-window", "INLET_ALERT_WINDOW", "-1s"}},
		{"negative cap", Config{MaxPerMinute: -5}, []string{"-alert-max-per-minute", "INLET_ALERT_MAX_PER_MINUTE", "-5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q quotes the URL", err)
			}
		})
	}
}

// TestWebhookURLFromFile: with neither -alert-webhook-url nor
// INLET_ALERT_WEBHOOK_URL, LoadSecrets reads the URL from the file named
// by INLET_ALERT_WEBHOOK_URL_FILE; the flag or variable wins over it.
func TestWebhookURLFromFile(t *testing.T) {
	const inFile = "https://hooks.slack.com/services/T0001/B0002/FROMFILE"
	file := filepath.Join(t.TempDir(), "webhook")
	if err := os.WriteFile(file, []byte(inFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, args ...string) (Config, error) {
		t.Helper()
		var c Config
		fs := flagenv.New("test")
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return c, c.LoadSecrets()
	}
	t.Run("file", func(t *testing.T) {
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", file)
		c, err := load(t)
		if err != nil || c.WebhookURL != inFile {
			t.Fatalf("WebhookURL %q, %v; want %q", c.WebhookURL, err, inFile)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("flag wins", func(t *testing.T) {
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", file)
		c, err := load(t, "-alert-webhook-url", "https://flag.example.com/x")
		if err != nil || c.WebhookURL != "https://flag.example.com/x" {
			t.Fatalf("WebhookURL %q, %v; want the flag's", c.WebhookURL, err)
		}
	})
	t.Run("variable wins", func(t *testing.T) {
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "https://env.example.com/x")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", file)
		c, err := load(t)
		if err != nil || c.WebhookURL != "https://env.example.com/x" {
			t.Fatalf("WebhookURL %q, %v; want the variable's", c.WebhookURL, err)
		}
	})
	t.Run("neither", func(t *testing.T) {
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", "")
		c, err := load(t)
		if err != nil || c.WebhookURL != "" {
			t.Fatalf("WebhookURL %q, %v; want none", c.WebhookURL, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", filepath.Join(t.TempDir(), "absent"))
		if _, err := load(t); err == nil || !strings.Contains(err.Error(), "INLET_ALERT_WEBHOOK_URL_FILE") {
			t.Fatalf("LoadSecrets: %v, want an error naming INLET_ALERT_WEBHOOK_URL_FILE", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty")
		if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("INLET_ALERT_WEBHOOK_URL", "")
		t.Setenv("INLET_ALERT_WEBHOOK_URL_FILE", empty)
		if _, err := load(t); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("LoadSecrets: %v, want an error: empty file", err)
		}
	})
}
