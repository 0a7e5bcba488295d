package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/telemetry"
	"github.com/inletdev/inlet/pkg/testenv"
)

const testSources = `
sources:
  stripe:
    kind: stripe
    secrets_env: [T_STRIPE_SECRET, T_STRIPE_SECRET_OLD]
    max_body: 4KiB
  gh:
    kind: github
    secrets_env: [T_GH_SECRET]
  shop:
    kind: shopify
    secrets_env: [T_SHOP_SECRET]
  billing:
    kind: standard-webhooks
    secrets_env: [T_BILLING_WHSEC]
    batch:
      tokens_env: [T_BILLING_TOKEN]
      max_lines: 5
      max_body: 4MiB
  internal:
    kind: hmac
    secrets_env: [T_INTERNAL_SECRET]
    hmac: {header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512="}
    json: false
    event_type: {header: X-Event-Type, default: blob}
    batch: {signed: true}
  open:
    kind: none
  keep:
    kind: none
    max_body: 3968KiB
    keep_headers: [X-Blob]
`

func setSecrets(t testing.TB) {
	t.Setenv("T_STRIPE_SECRET", "whsec_stripe_test_secret")
	t.Setenv("T_STRIPE_SECRET_OLD", "")
	t.Setenv("T_GH_SECRET", "It's a Secret to Everybody")
	t.Setenv("T_SHOP_SECRET", "shpss_test")
	t.Setenv("T_BILLING_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	t.Setenv("T_BILLING_TOKEN", "batch-token-1-0123456789")
	t.Setenv("T_INTERNAL_SECRET", "internal-secret")
}

// harness is an ingest server on real TCP in front of an Env.
type harness struct {
	env     *testenv.Env
	topics  kafka.Topics
	sources *source.File
	srv     *Server
	url     string
	codec   *envelope.Codec
	done    chan error
}

func newHarness(t testing.TB, env *testenv.Env, mod func(*Config), tel ...*telemetry.Telemetry) *harness {
	t.Helper()
	return newHarnessSources(t, env, testSources, mod, tel...)
}

// newHarnessSources is newHarness with its own sources file.
func newHarnessSources(t testing.TB, env *testenv.Env, sourcesYAML string, mod func(*Config), tel ...*telemetry.Telemetry) *harness {
	t.Helper()
	return newHarnessDeps(t, env, sourcesYAML, mod, func(d *Deps) {
		if len(tel) > 0 {
			d.Telemetry = tel[0]
		}
	})
}

// newHarnessDeps is newHarnessSources with the server's Deps changed by
// deps (a logger, telemetry) before it is built.
func newHarnessDeps(t testing.TB, env *testenv.Env, sourcesYAML string, mod func(*Config), deps func(*Deps)) *harness {
	t.Helper()
	setSecrets(t)
	sources, err := source.Parse([]byte(sourcesYAML))
	if err != nil {
		t.Fatal(err)
	}
	topics := env.CreateTopics(t, nil)
	codec := env.Codec(t, topics)
	cfg := DefaultConfig()
	cfg.AckTimeout = 2 * time.Second
	cfg.RetryAfter = 3 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	producers, err := NewProducers(cfg.Producers, kgo.SeedBrokers(env.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producers.Close)
	d := Deps{Sources: sources, Codec: codec, RawTopic: topics.Raw, Kafka: producers, SR: env.Registry(t).SR()}
	if deps != nil {
		deps(&d)
	}
	srv, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{env: env, topics: topics, sources: sources, srv: srv, url: "http://" + ln.Addr().String(), codec: codec, done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-h.done
	})
	return h
}

// signed builds a request to /webhooks/{src} signed the way the provider
// signs.
func (h *harness) signed(t testing.TB, src string, body []byte, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+"/webhooks/"+src, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if s, ok := h.sources.Get(src); ok {
		if err := s.Provider().Sign(req.Header, body, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

type answer struct {
	status int
	header http.Header
	body   Response
	raw    []byte
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r Response
	_ = json.Unmarshal(raw, &r)
	return answer{status: resp.StatusCode, header: resp.Header, body: r, raw: raw}
}

// rawEnvelopes decodes everything on the raw topic: at least min records,
// and every record written to it so far (its end offsets: ingest writes
// no transactions, so each offset is a record). Waiting only for min and
// then for a quiet spell missed a partition's records under load.
func (h *harness) rawEnvelopes(t testing.TB, min int) []*envelope.Envelope {
	t.Helper()
	ends, err := kadm.NewClient(h.env.Client(t)).ListEndOffsets(context.Background(), h.topics.Raw)
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	ends.Each(func(o kadm.ListedOffset) { written += int(o.Offset) })
	recs := h.env.ReadAll(t, h.topics.Raw, max(min, written), 500*time.Millisecond, 20*time.Second)
	out := make([]*envelope.Envelope, 0, len(recs))
	for _, r := range recs {
		e, err := h.codec.Decode(context.Background(), r.Value)
		if err != nil {
			t.Fatalf("raw record at offset %d does not decode: %v", r.Offset, err)
		}
		if string(r.Key) != e.IdempotencyKey {
			t.Fatalf("record key %q != idempotency key %q", r.Key, e.IdempotencyKey)
		}
		out = append(out, e)
	}
	return out
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}
