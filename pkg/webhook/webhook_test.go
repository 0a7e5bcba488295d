package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

type newTest struct {
	kind    string
	secrets [][]byte
	opts    webhook.Options
	want    any // a value of the type New must return
}

// newTests are TestNew's round trips: New builds the type, Sign's headers
// verify, no headers do not. Every kind in Kinds() but none (unsigned, tested
// on its own below) needs a row: TestKindsCovered checks it.
var newTests = []newTest{
	{kind: "stripe", secrets: secrets("whsec_a"), want: &webhook.Stripe{}},
	{kind: "github", secrets: secrets("a"), want: &webhook.GitHub{}},
	{kind: "shopify", secrets: secrets("a"), want: &webhook.Shopify{}},
	{kind: "standard-webhooks", secrets: secrets(swSecret), want: &webhook.StandardWebhooks{}},
	{kind: "hmac", secrets: secrets("a"), opts: webhook.Options{HMAC: webhook.HMACConfig{Header: "X-Sig"}}, want: &webhook.HMAC{}},
	{kind: "hmac", opts: webhook.Options{HMAC: webhook.HMACConfig{Header: "X-Sig", Secrets: secrets("a")}}, want: &webhook.HMAC{}},
	{kind: "github", secrets: secrets("a"), opts: webhook.Options{Tolerance: time.Minute}, want: &webhook.GitHub{}},
}

func TestNew(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	for _, tt := range newTests {
		t.Run(tt.kind+" round trip", func(t *testing.T) {
			p, err := webhook.New(tt.kind, tt.secrets, tt.opts)
			if err != nil {
				t.Fatalf("New(%q): %v", tt.kind, err)
			}
			if got, want := fmt.Sprintf("%T", p), fmt.Sprintf("%T", tt.want); got != want {
				t.Fatalf("New(%q) = %s, want %s", tt.kind, got, want)
			}
			checkErr(t, p.Verify(signed(t, p, body, now), body, now), nil)
			checkErr(t, p.Verify(http.Header{}, body, now), webhook.ErrMissingSignature)
		})
	}

	t.Run("tolerance is passed on", func(t *testing.T) {
		for _, kind := range []string{"stripe", "standard-webhooks"} {
			p, err := webhook.New(kind, secrets(swSecret), webhook.Options{Tolerance: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			h := signed(t, p, body, now.Add(-11*time.Second))
			checkErr(t, p.Verify(h, body, now), webhook.ErrTimestampOutOfTolerance)
		}
	})
	t.Run("standard-webhooks secrets are whsec text", func(t *testing.T) {
		p, err := webhook.New("standard-webhooks", secrets(swSecret), webhook.Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkErr(t, p.Verify(swHeader(swMsgID, "1614265330", swSignature), []byte(swBody), swNow), nil)
	})
	t.Run("none", func(t *testing.T) {
		p, err := webhook.New("none", nil, webhook.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		checkErr(t, p.Verify(h, body, now), nil)
		if err := p.Sign(h, body, now); err != nil || len(h) != 0 {
			t.Fatalf("none Sign: err %v, headers %v; want nil and none", err, h)
		}
	})

	for _, tt := range []struct {
		name    string
		kind    string
		secrets [][]byte
		opts    webhook.Options
	}{
		{name: "unknown kind", kind: "paypal", secrets: secrets("a")},
		{name: "kind is case-sensitive", kind: "Stripe", secrets: secrets("a")},
		{name: "empty kind", kind: "", secrets: secrets("a")},
		{name: "none with secrets", kind: "none", secrets: secrets("a")},
		{name: "stripe without secrets", kind: "stripe"},
		{name: "github with an empty secret", kind: "github", secrets: [][]byte{{}}},
		{name: "shopify without secrets", kind: "shopify"},
		{name: "standard-webhooks with a bad secret", kind: "standard-webhooks", secrets: secrets("whsec_*")},
		{name: "hmac without header", kind: "hmac", secrets: secrets("a")},
		{name: "hmac with secrets twice", kind: "hmac", secrets: secrets("a"), opts: webhook.Options{HMAC: webhook.HMACConfig{Header: "X-Sig", Secrets: secrets("b")}}},
		{name: "negative tolerance", kind: "stripe", secrets: secrets("a"), opts: webhook.Options{Tolerance: -1}},
	} {
		t.Run("error: "+tt.name, func(t *testing.T) {
			p, err := webhook.New(tt.kind, tt.secrets, tt.opts)
			if err == nil {
				t.Fatalf("New(%q) = %T, want error", tt.kind, p)
			}
			if webhook.IsUnauthorized(err) {
				t.Fatalf("New error %v is reported as unauthorized", err)
			}
		})
	}
}

func TestNone(t *testing.T) {
	p := webhook.None()
	for _, h := range []http.Header{nil, {}, header(webhook.StripeHeader, "garbage")} {
		checkErr(t, p.Verify(h, nil, time.Time{}), nil)
	}
}

func TestIsUnauthorized(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"other error", io.EOF, false},
		{"error with the same text", errors.New(webhook.ErrSignatureMismatch.Error()), false},
		{"missing", webhook.ErrMissingSignature, true},
		{"malformed", webhook.ErrMalformedSignature, true},
		{"mismatch", webhook.ErrSignatureMismatch, true},
		{"out of tolerance", webhook.ErrTimestampOutOfTolerance, true},
		{"wrapped", fmt.Errorf("source stripe: %w", webhook.ErrSignatureMismatch), true},
		{"joined", errors.Join(io.EOF, webhook.ErrMalformedSignature), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webhook.IsUnauthorized(tt.err); got != tt.want {
				t.Fatalf("IsUnauthorized(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// concurrentKinds are the New arguments TestConcurrentVerify uses for each
// kind: every kind in Kinds() but none, which accepts every request
// (TestKindsCovered checks it).
var concurrentKinds = map[string]struct {
	secrets [][]byte
	opts    webhook.Options
}{
	"stripe":            {secrets: secrets("whsec_a", "whsec_b")},
	"github":            {secrets: secrets("a", "b")},
	"shopify":           {secrets: secrets("a", "b")},
	"standard-webhooks": {secrets: secrets(swSecret)},
	"hmac":              {secrets: secrets("a", "b"), opts: webhook.Options{HMAC: webhook.HMACConfig{Header: "X-Sig"}}},
}

// TestConcurrentVerify runs every provider from several goroutines at once;
// run it with -race.
func TestConcurrentVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	for kind, args := range concurrentKinds {
		t.Run(kind, func(t *testing.T) {
			p, err := webhook.New(kind, args.secrets, args.opts)
			if err != nil {
				t.Fatal(err)
			}
			good := signed(t, p, body, now)
			errs := make(chan error, 8)
			for g := range 8 {
				go func() {
					var err error
					for i := range 200 {
						b := body
						if (g+i)%2 == 1 {
							b = tamper(body)
						}
						got := p.Verify(good, b, now)
						if (got == nil) != ((g+i)%2 == 0) {
							err = fmt.Errorf("goroutine %d, iteration %d: Verify = %v", g, i, got)
							break
						}
					}
					errs <- err
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestKindsCovered guards the wiring of a new kind: every kind Kinds()
// lists must have a case in New that builds a working provider (Sign's
// headers verify, a changed body does not, no headers are missing), a row
// in TestNew's table (newTests) and an entry in TestConcurrentVerify's map
// (concurrentKinds), and, if it refuses an old signed timestamp, take
// Options.Tolerance from New. Kinds the tables name must be in Kinds().
func TestKindsCovered(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	kinds := webhook.Kinds()
	for _, tt := range newTests {
		if !slices.Contains(kinds, tt.kind) {
			t.Errorf("TestNew's table has kind %q, which Kinds() does not list", tt.kind)
		}
	}
	for kind := range concurrentKinds {
		if !slices.Contains(kinds, kind) {
			t.Errorf("TestConcurrentVerify's map has kind %q, which Kinds() does not list", kind)
		}
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			if kind == webhook.KindNone {
				p, err := webhook.New(kind, nil, webhook.Options{})
				if err != nil {
					t.Fatalf("New(%q): %v; does New have a case for it?", kind, err)
				}
				checkErr(t, p.Verify(http.Header{}, body, now), nil)
				return
			}
			i := slices.IndexFunc(newTests, func(tt newTest) bool { return tt.kind == kind })
			if i < 0 {
				t.Fatalf("kind %q has no row in TestNew's table (newTests in webhook_test.go)", kind)
			}
			if _, ok := concurrentKinds[kind]; !ok {
				t.Errorf("kind %q has no entry in TestConcurrentVerify's map (concurrentKinds in webhook_test.go)", kind)
			}
			tt := newTests[i]
			p, err := webhook.New(kind, tt.secrets, tt.opts)
			if err != nil {
				t.Fatalf("New(%q): %v; does New have a case for it?", kind, err)
			}
			good := signed(t, p, body, now)
			if len(good) == 0 {
				t.Fatalf("%s: Sign set no header", kind)
			}
			checkErr(t, p.Verify(good, body, now), nil)
			checkErr(t, p.Verify(good, tamper(body), now), webhook.ErrSignatureMismatch)
			checkErr(t, p.Verify(http.Header{}, body, now), webhook.ErrMissingSignature)

			// A kind that refuses a signature made a month ago checks a
			// signed timestamp: New must pass it Options.Tolerance.
			then := now.Add(-30 * 24 * time.Hour)
			err = p.Verify(signed(t, p, body, then), body, now)
			if !errors.Is(err, webhook.ErrTimestampOutOfTolerance) {
				checkErr(t, err, nil) // no timestamp: a month-old signature is as good
				return
			}
			opts := tt.opts
			opts.Tolerance = 31 * 24 * time.Hour
			p, err = webhook.New(kind, tt.secrets, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(signed(t, p, body, then), body, now); err != nil {
				t.Fatalf("%s checks a signed timestamp but ignores Options.Tolerance (a case in New that does not pass opts.Tolerance?): %v", kind, err)
			}
		})
	}
}

// TestHeaderNames: Verify reads signature headers by their canonical name
// straight from the map, so it must find exactly what http.Header.Values
// finds: the value under the canonical key whatever spelling the header was
// set with, and nothing under a key net/http would not have canonicalised.
func TestHeaderNames(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	for _, name := range []string{webhook.StripeHeader, webhook.GitHubHeader, webhook.ShopifyHeader,
		webhook.StandardWebhooksIDHeader, webhook.StandardWebhooksTimestampHeader, webhook.StandardWebhooksSignatureHeader} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("header constant %q is not canonical (%q)", name, c)
		}
	}
	for _, tt := range []struct {
		name, kind string
		secrets    [][]byte
		opts       webhook.Options
	}{
		{name: "stripe", kind: "stripe", secrets: secrets("whsec_a")},
		{name: "github", kind: "github", secrets: secrets("a")},
		{name: "shopify", kind: "shopify", secrets: secrets("a")},
		{name: "standard-webhooks", kind: "standard-webhooks", secrets: secrets(swSecret)},
		{name: "hmac with a lower-case header name", kind: "hmac", secrets: secrets("a"),
			opts: webhook.Options{HMAC: webhook.HMACConfig{Header: "x-my-SIGNATURE"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := webhook.New(tt.kind, tt.secrets, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			good := signed(t, p, body, now)
			checkErr(t, p.Verify(good, body, now), nil)

			// The same headers set through Set with upper-case names.
			upper := http.Header{}
			for k, vs := range good {
				upper.Set(strings.ToUpper(k), vs[0])
			}
			checkErr(t, p.Verify(upper, body, now), nil)

			// Keys left non-canonical in the map are invisible to
			// Header.Values, hence to Verify.
			raw := http.Header{}
			for k, vs := range good {
				raw[strings.ToLower(k)] = vs
				if got := raw.Values(k); got != nil {
					t.Fatalf("Header.Values(%q) found a lower-case key: %v", k, got)
				}
			}
			checkErr(t, p.Verify(raw, body, now), webhook.ErrMissingSignature)
		})
	}
}
