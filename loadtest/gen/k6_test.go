package gen

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// signVector is one signature computed by Go, for loadtest/k6/lib/sign.js.
type signVector struct {
	Kind    string            `json:"kind"`
	Secret  string            `json:"secret"`
	Body    string            `json:"body"`
	ID      string            `json:"id"`
	TS      int64             `json:"ts"`
	Headers map[string]string `json:"headers"`
}

func signVectors(t *testing.T) []signVector {
	t.Helper()
	dev := DevSecrets()
	body := `{"id":"evt_1","type":"payment_intent.succeeded","note":"ünïcödé"}`
	var out []signVector
	for _, v := range []signVector{
		{Kind: KindStripe, Secret: dev.Stripe},
		{Kind: KindGitHub, Secret: dev.GitHub},
		{Kind: KindGitHub, Secret: "It's a Secret to Everybody", Body: "Hello, World!"},
		{Kind: KindShopify, Secret: dev.Shopify},
		{Kind: KindStandardWebhooks, Secret: dev.Billing},
		{Kind: KindStandardWebhooks, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Body: `{"test": 2432232314}`, ID: "msg_p5jXN8AQM9LWM0D4loKWxJek"},
	} {
		if v.Body == "" {
			v.Body = body
		}
		if v.ID == "" {
			v.ID = "msg_loadtest_1"
		}
		v.TS = 1614265330
		h := http.Header{}
		if err := Sign(v.Kind, v.Secret, h, []byte(v.Body), v.ID, time.Unix(v.TS, 0)); err != nil {
			t.Fatal(err)
		}
		v.Headers = map[string]string{}
		for k := range h {
			v.Headers[k] = h.Get(k)
		}
		out = append(out, v)
	}
	return out
}

func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	return path
}

// TestK6SignVectors: lib/sign.js computes the same signatures as Go, for
// the committed vectors (kept equal to Go's here; UPDATE_K6_VECTORS=1
// rewrites them) and for fresh ones passed in the environment.
func TestK6SignVectors(t *testing.T) {
	vectors := signVectors(t)
	js, err := json.MarshalIndent(vectors, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	js = append(js, '\n')
	file := filepath.Join("..", "k6", "test", "vectors.json")
	if os.Getenv("UPDATE_K6_VECTORS") != "" {
		if err := os.WriteFile(file, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, js) {
		t.Errorf("%s differs from Go's signatures: run UPDATE_K6_VECTORS=1 go test ./loadtest/gen -run K6SignVectors", file)
	}
	cmd := exec.Command(node(t), filepath.Join("..", "k6", "test", "sign.test.mjs"))
	cmd.Env = append(os.Environ(), "INLET_SIGN_VECTORS="+string(js))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node sign.test.mjs: %v\n%s", err, out)
	}
}

// TestK6Scripts imports every k6 script under Node with k6's modules
// stubbed (options, thresholds, a few iterations), then verifies the
// requests the scripts made with pkg/webhook's verifiers: the k6 scripts
// sign exactly like the providers.
func TestK6Scripts(t *testing.T) {
	bin := node(t)
	capture := filepath.Join(t.TempDir(), "capture.json")
	cmd := exec.Command(bin, "--import", "./test/register.mjs", "test/scripts.test.mjs")
	cmd.Dir = filepath.Join("..", "k6")
	cmd.Env = append(os.Environ(), "K6_CAPTURE="+capture)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node scripts.test.mjs: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(capture)
	if err != nil {
		t.Fatal(err)
	}
	var captured map[string][]struct {
		URL     string            `json:"url"`
		Body    string            `json:"body"`
		Headers map[string]string `json:"headers"`
		Tags    map[string]string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &captured); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{"stripe": KindStripe, "github": KindGitHub, "shop": KindShopify, "billing": KindStandardWebhooks}
	for script, reqs := range captured {
		verified := 0
		for _, r := range reqs {
			h := http.Header{}
			for k, v := range r.Headers {
				h.Set(k, v)
			}
			if strings.HasSuffix(r.URL, "/events/billing") {
				if h.Get("Authorization") != "Bearer "+DevSecrets().BillingToken {
					t.Errorf("%s: batch without the dev token", script)
				}
				continue
			}
			src := r.URL[strings.LastIndex(r.URL, "/")+1:]
			kind, ok := kinds[src]
			if !ok {
				t.Fatalf("%s: request to %s", script, r.URL)
			}
			err := verifier(t, kind).Verify(h, []byte(r.Body), time.Now())
			if bad := r.Tags["expect"] == "401"; bad != (err != nil) {
				t.Errorf("%s: %s delivery (expect %s): verify error %v", script, kind, r.Tags["expect"], err)
			}
			if err == nil && !json.Valid([]byte(r.Body)) {
				t.Errorf("%s: body is not JSON", script)
			}
			verified++
		}
		if verified == 0 {
			t.Errorf("%s: no webhook request verified", script)
		}
	}
	if len(captured) < 7 {
		t.Errorf("captured %d scripts, want 7", len(captured))
	}
}
