package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
)

// Inlet's rule: secrets come only from the environment or files and are
// never logged. TestIngestLeaksNoSecret proves it end to end: every secret
// ingest takes gets a canary value (URL-special characters included, each
// form: VAR and VAR_FILE), ingest runs and is driven through its answers
// (good, tampered, unsigned, stale, not JSON, batches with good and wrong
// tokens, unknown source), and everything it emits — its log from start to
// shutdown, -h and -check-config, HTTP answers and their headers, /metrics,
// /readyz, OTLP exports (span attributes, metrics), every record it wrote
// to Kafka (values, keys, headers) — is searched for the canaries and for
// the signatures the requests carried (a signature kept on the compacted
// raw topic is a credential at rest).

const leakSources = `sources:
  stripe:
    kind: stripe
    secrets_env: [STRIPE_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET_PREVIOUS]
    events:
      "payment_intent.*": {contract: stripe/payment_intent, entity_key: "stripe:pi:{/data/object/id}", natural_key: "{/id}", occurred_at: /created}
  github:
    kind: github
    secrets_env: [GITHUB_WEBHOOK_SECRET]
    keep_headers: [Authorization, Cookie, X-Hub-Signature, X-Hub-Signature-256]
    events:
      ping: {contract: github/ping, entity_key: "github:hook:{/hook_id}", natural_key: "{$event_id}"}
  shop:
    kind: shopify
    secrets_env: [SHOPIFY_WEBHOOK_SECRET]
    events:
      "orders/*": {contract: shopify/order, entity_key: "shopify:order:{/id}", natural_key: "{/id}:{/updated_at}", occurred_at: /updated_at}
  billing:
    kind: standard-webhooks
    secrets_env: [BILLING_WHSEC]
    keep_headers: [Webhook-Signature]
    batch:
      tokens_env: [BILLING_EVENTS_TOKEN]
    events:
      "*": {contract: standardwebhooks/event, entity_key: "billing:{/type}:{/data/id}", occurred_at: /timestamp}
  gen:
    kind: hmac
    secrets_env: [GEN_SECRET]
    hmac: {header: X-Sig, algorithm: sha256, encoding: hex}
    keep_headers: [Authorization, Cookie, X-Sig, X-Request-Id]
    batch:
      tokens_env: [GEN_TOKEN]
    events:
      "*": {contract: standardwebhooks/event, entity_key: "gen:{/id}"}
`

// setLeakCanaries gives every secret ingest reads a canary, half of them
// through VAR_FILE, and returns the sources file naming them.
func setLeakCanaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for k, v := range map[string]string{
		"STRIPE_WEBHOOK_SECRET":               "whsec_CANARY-stripe/?#@:%-7f3a",
		"STRIPE_WEBHOOK_SECRET_PREVIOUS_FILE": file("stripe-prev", "whsec_CANARY-stripeprev-7f3a"),
		"GITHUB_WEBHOOK_SECRET":               "CANARY-github/?#@:%-7f3a",
		"SHOPIFY_WEBHOOK_SECRET_FILE":         file("shopify", "CANARY-shopify?#@:%-7f3a"),
		"BILLING_WHSEC":                       "whsec_" + base64.StdEncoding.EncodeToString([]byte("CANARY-billing-whsec-7f3a")),
		"BILLING_EVENTS_TOKEN":                "CANARY-billtok/?#@:%-7f3a",
		"GEN_SECRET_FILE":                     file("gen", "CANARY-gen%40:/#?-7f3a"),
		"GEN_TOKEN_FILE":                      file("gentok", "CANARY-gentok-7f3a"),
		"INLET_ADMIN_TOKEN":                   "CANARY-adminw-7f3a",
		"INLET_ADMIN_READ_TOKEN_FILE":         file("adminr", "CANARY-adminr-7f3a"),
		"INLET_SCHEMA_REGISTRY_TOKEN_FILE":    file("srtoken", "CANARY-srtoken/?#@:%-7f3a"),
		"REDIS_PASSWORD":                      "CANARY-redispw-7f3a",
		"INLET_ALERT_WEBHOOK_URL":             "http://127.0.0.1:1/hooks/CANARY-alert-7f3a?key=CANARY-alertq-7f3a",
	} {
		t.Setenv(k, v)
	}
	return file("sources.yaml", leakSources)
}

// leakRequest is one request sent to ingest.
type leakRequest struct {
	name, path string
	header     http.Header
	body       []byte
}

func leakRequests(t *testing.T, sourcesPath string) (reqs []leakRequest, signatures []string) {
	t.Helper()
	f, err := source.Load(sourcesPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ghPing, err := os.ReadFile("../../schemas/contracts/github/ping/fixtures/v1/ping.repository.json")
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string]struct {
		body   string
		header http.Header
	}{
		"stripe":  {`{"id":"evt_leak1","type":"payment_intent.succeeded","created":` + now.Format("20060102") + `,"data":{"object":{"id":"pi_1"}}}`, nil},
		"github":  {string(ghPing), http.Header{"X-Github-Event": {"ping"}, "X-Github-Delivery": {"leak-delivery-1"}}},
		"shop":    {`{"id":1,"updated_at":"2026-01-01T00:00:00Z"}`, http.Header{"X-Shopify-Topic": {"orders/updated"}, "X-Shopify-Webhook-Id": {"leak-shop-1"}}},
		"billing": {`{"type":"x.y","timestamp":"2026-01-01T00:00:00Z","data":{"id":"1"}}`, http.Header{"Webhook-Id": {"msg_leak1"}}},
		"gen":     {`{"id":"gen-leak-1","type":"x"}`, http.Header{"X-Request-Id": {"leak-req-1"}}},
	}
	// A sender's own credentials ride along: a kept header must not copy
	// them into the envelope.
	senderCreds := http.Header{
		"Authorization":       {"Bearer CANARY-sender-auth-7f3a"},
		"Cookie":              {"session=CANARY-sender-cookie-7f3a"},
		"Proxy-Authorization": {"Basic CANARY-sender-proxy-7f3a"},
	}
	sign := func(name string, body []byte, at time.Time) http.Header {
		src, _ := f.Get(name)
		h := http.Header{"Content-Type": {"application/json"}}
		for k, v := range bodies[name].header {
			h[k] = v
		}
		if err := src.Provider().Sign(h, body, at); err != nil {
			t.Fatalf("%s: sign: %v", name, err)
		}
		for _, k := range []string{"Stripe-Signature", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256", "Webhook-Signature", "X-Sig"} {
			for _, v := range h.Values(k) {
				signatures = append(signatures, v)
				for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '=' }) {
					if len(part) >= 16 {
						signatures = append(signatures, part)
					}
				}
			}
		}
		return h
	}
	for name, b := range bodies {
		body := []byte(b.body)
		good := sign(name, body, now)
		for k, v := range senderCreds {
			good[k] = v
		}
		tampered := append([]byte(`{"tampered":1,`), body[1:]...)
		sign(name, tampered, now) // the signature ingest expects: never to be shown
		unsigned := http.Header{"Content-Type": {"application/json"}}
		for k, v := range b.header {
			unsigned[k] = v
		}
		reqs = append(reqs,
			leakRequest{name + " good", "/webhooks/" + name, good, body},
			leakRequest{name + " tampered", "/webhooks/" + name, good.Clone(), tampered},
			leakRequest{name + " unsigned", "/webhooks/" + name, unsigned, body},
			leakRequest{name + " stale", "/webhooks/" + name, sign(name, body, now.Add(-2*time.Hour)), body},
			leakRequest{name + " not JSON", "/webhooks/" + name, sign(name, []byte("not json"), now), []byte("not json")},
		)
	}
	line := `{"id":"batch-leak-1","type":"x.y","occurred_at":"2026-01-01T00:00:00Z","data":{"id":"2","type":"x.y","timestamp":"2026-01-01T00:00:00Z"}}` + "\n" + "not json\n"
	for _, c := range []struct{ name, src, auth string }{
		{"billing batch token", "billing", "Bearer CANARY-billtok/?#@:%-7f3a"},
		{"billing batch near-miss token", "billing", "Bearer CANARY-billtok/?#@:%-7f3b"},
		{"billing batch no token", "billing", ""},
		{"gen batch token", "gen", "Bearer CANARY-gentok-7f3a"},
		{"gen batch basic", "gen", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:CANARY-gentok-7f3a"))},
		{"stripe batch (off)", "stripe", "Bearer CANARY-billtok/?#@:%-7f3a"},
		{"unknown source batch", "nope", "Bearer CANARY-gentok-7f3a"},
	} {
		h := http.Header{"Content-Type": {"application/x-ndjson"}}
		if c.auth != "" {
			h.Set("Authorization", c.auth)
		}
		reqs = append(reqs, leakRequest{c.name, "/events/" + c.src, h, []byte(line)})
	}
	reqs = append(reqs, leakRequest{"unknown source", "/webhooks/nope", senderCreds.Clone(), []byte(`{}`)})
	return reqs, signatures
}

func TestIngestLeaksNoSecret(t *testing.T) {
	env := testenv.Embedded(t)
	sourcesPath := setLeakCanaries(t)
	otlp := servicetest.CaptureOTLP(t)
	var emitted bytes.Buffer // everything ingest emits, searched at the end

	for _, args := range [][]string{{"-h"}, {"-check-config", "-sources", sourcesPath}} {
		var out bytes.Buffer
		err := run(args, &out)
		emitted.WriteString(out.String())
		if err != nil {
			emitted.WriteString(err.Error())
		}
	}

	reqs, signatures := leakRequests(t, sourcesPath)
	s := servicetest.Start(t, "ingest", func(stderr io.Writer) error {
		return run([]string{"-sources", sourcesPath, "-log-format", "json", "-log-level", "debug",
			"-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
			"-schema-registry-url", env.RegistryURL, "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort}, stderr)
	})
	adminAddr, ingestAddr := s.Addr(t, "ingest listening", "admin"), s.Addr(t, "ingest listening", "addr")
	servicetest.ReadyWithin(t, adminAddr, 20*time.Second)

	accepted := 0
	for _, r := range reqs {
		req, err := http.NewRequest(http.MethodPost, "http://"+ingestAddr+r.path, bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = r.header
		res, err := leakClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			accepted++
		}
		emitted.WriteString(r.name + ": " + res.Status + "\n")
		_ = res.Header.Write(&emitted)
		emitted.Write(b)
		emitted.WriteString("\n")
	}
	if accepted < 5 {
		t.Fatalf("%d requests accepted, want at least the 5 good ones: the test exercises too little:\n%s", accepted, emitted.String())
	}
	for _, u := range []string{"/metrics", "/readyz", "/healthz"} {
		_, body := servicetest.Get(t, "http://"+adminAddr+u)
		emitted.WriteString(body)
	}

	// Every record of every topic of this test, written or aborted.
	cl := env.Client(t, kgo.ConsumeRegex(), kgo.ConsumeTopics("^"+strings.ReplaceAll(env.Prefix, ".", `\.`)+`\..*`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.MetadataMinAge(50*time.Millisecond))
	emitted.WriteString(servicetest.DumpRecords(t, cl, 5))

	servicetest.SIGTERM(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		emitted.WriteString(err.Error())
	}
	emitted.WriteString(s.Log.String())
	emitted.WriteString(otlp.Spans(t))

	if found := servicetest.Leaks(emitted.String(), signatures...); len(found) > 0 {
		t.Errorf("ingest emitted secrets %q; everything it emitted:\n%s", found, emitted.String())
	}
}

var leakClient = &http.Client{Timeout: 5 * time.Second}
