package gen

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/ingest"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/webhook"
)

// verifier is pkg/webhook's verifier for kind with the dev secret.
func verifier(t *testing.T, kind string) webhook.Verifier {
	t.Helper()
	v, err := webhook.New(kind, [][]byte{[]byte(DevSecrets().For(kind))}, webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSignRoundTrip(t *testing.T) {
	now := time.Now()
	p := &planner{runID: "t", orderBase: 1000, start: now}
	for _, kind := range validKinds {
		t.Run(kind, func(t *testing.T) {
			e := p.newEvent(kind, now)
			body := e.Body()
			v := verifier(t, kind)

			h := http.Header{}
			e.Headers(h)
			if err := Sign(kind, DevSecrets().For(kind), h, body, e.ID, now); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(h, body, now); err != nil {
				t.Fatalf("pkg/webhook rejects the generator's signature: %v", err)
			}
			if err := v.Verify(h, append(body, ' '), now); err == nil {
				t.Fatal("a changed body still verifies")
			}

			bad := http.Header{}
			e.Headers(bad)
			if err := Sign(kind, wrongSecret(kind), bad, body, e.ID, now); err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(bad, body, now); err == nil {
				t.Fatal("a wrong secret verifies")
			}
		})
	}
}

// devSources loads the sources file `make run` uses, with the dev secrets.
func devSources(t *testing.T) *source.File {
	t.Helper()
	s := DevSecrets()
	for k, v := range map[string]string{"STRIPE_WEBHOOK_SECRET": s.Stripe, "STRIPE_WEBHOOK_SECRET_PREVIOUS": "",
		"GITHUB_WEBHOOK_SECRET": s.GitHub, "SHOPIFY_WEBHOOK_SECRET": s.Shopify, "BILLING_WHSEC": s.Billing,
		"BILLING_EVENTS_TOKEN": s.BillingToken} {
		t.Setenv(k, v)
	}
	src, err := source.Load(filepath.Join("..", "..", "deploy", "sources.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestAgainstIngest sends the mix and large scenarios to a real ingest
// server on the embedded stack: every answer must be the expected one
// (202/200, 401 for bad signatures, 413 over the limit), every 2xx'd event
// must be on the raw topic, and no rejected one.
func TestAgainstIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded stack")
	}
	env := testenv.Embedded(t)
	sources := devSources(t)
	topics := env.CreateTopics(t, nil)
	ctx := context.Background()
	codec := env.Codec(t, topics)
	srv, err := ingest.New(ingest.DefaultConfig(), ingest.Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw,
		Kafka: ingest.Producers{env.Client(t, ingest.ProducerOpts()...)}, SR: env.Registry(t).SR()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	})

	for _, sc := range []struct {
		name string
		rate float64
	}{{"mix", 200}, {"large", 10}, {"dupstorm", 110}} {
		t.Run(sc.name, func(t *testing.T) {
			cfg := Config{Target: "http://" + ln.Addr().String(), Scenario: sc.name, Rate: sc.rate,
				Duration: 2 * time.Second, RunID: "it" + sc.name, Seed: 7, MaxInFlight: 64}
			r, err := NewRunner(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Summary())
			if res.Unexpected != 0 || res.Retryable != 0 {
				for _, d := range res.Deliveries {
					if !d.expects(d.Status) || d.Refused > 0 {
						t.Errorf("delivery of %v: got %d %s (%d valid lines refused), want %d", d.Event, d.Status, d.Err, d.Refused, d.Expect)
						break
					}
				}
				t.Fatalf("answers %v: %d unexpected, %d retryable", res.Codes, res.Unexpected, res.Retryable)
			}
			if sc.name == "mix" && (res.Codes[401] == 0 || res.Codes[200] == 0) {
				t.Errorf("mix sent no bad signature or no batch: %v", res.Codes)
			}
			if sc.name == "large" && res.Codes[413] == 0 {
				t.Errorf("large sent nothing over the limit: %v", res.Codes)
			}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			obs, err := ReadTopics(rctx, env.KafkaConfig().Brokers, Topics{Raw: topics.Raw, Processed: topics.Processed, State: topics.State},
				res.Events, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			v := CheckOutcome(res.Events, res.Unexpected, Observed{RawKeys: obs.RawKeys})
			if v.Lost != 0 || v.WrittenRejected != 0 || v.AcceptedEvents == 0 {
				t.Fatalf("outcome:\n%s", v)
			}
		})
	}
}

func TestSecretsFromEnv(t *testing.T) {
	env := map[string]string{"SHOPIFY_WEBHOOK_SECRET": "other"}
	s := SecretsFromEnv(func(k string) string { return env[k] })
	if s.Shopify != "other" || s.Stripe != DevSecrets().Stripe {
		t.Fatalf("got %+v", s)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://[::1]:8080", false, true},
		{"http://10.0.0.1:8080", false, false},
		{"https://inlet.example.com", false, false},
		{"https://inlet.example.com", true, true},
		{"ftp://127.0.0.1", false, false},
	} {
		cfg := Config{Target: tc.url, AllowRemote: tc.allow}
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s allow=%t: err %v", tc.url, tc.allow, err)
		}
	}
}

// TestValidateRefusesNegative guards Validate's bounds on -timeout and
// -body-limit. Before, a negative timeout passed, and RunPlan then
// panicked making its per-second windows with a negative length.
func TestValidateRefusesNegative(t *testing.T) {
	for name, cfg := range map[string]Config{
		"timeout":    {Timeout: -time.Hour},
		"body limit": {BodyLimit: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if err := cfg.Validate(); err == nil {
				t.Errorf("%+v passed Validate", cfg)
			}
		})
	}
}
