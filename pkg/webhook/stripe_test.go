package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// Stripe documents the scheme (https://docs.stripe.com/webhooks#verify-manually)
// but publishes no secret/payload/signature triple. stripeVector was computed
// independently of this package, following that description, with
//
//	printf '%s' '1492774577.{"id":"evt_test_webhook","object":"event"}' |
//	  openssl dgst -sha256 -hmac whsec_test_secret
//
// Its timestamp is the one in Stripe's documented example header,
// stripeDocHeader, which is used to check parsing: it is well formed, has a
// v0 element to ignore, and matches no secret we know.
const (
	stripeSecret    = "whsec_test_secret"
	stripeBody      = `{"id":"evt_test_webhook","object":"event"}`
	stripeTS        = 1492774577
	stripeVector    = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
	stripeDocHeader = "t=1492774577," +
		"v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd," +
		"v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
)

var stripeNow = time.Unix(stripeTS, 0)

func newStripe(t testing.TB, tolerance time.Duration, ss ...string) *webhook.Stripe {
	t.Helper()
	p, err := webhook.NewStripe(secrets(ss...), tolerance)
	if err != nil {
		t.Fatalf("NewStripe: %v", err)
	}
	return p
}

// stripeSig returns the Stripe-Signature value for body at ts under secret.
func stripeSig(t testing.TB, secret string, body []byte, ts time.Time) string {
	t.Helper()
	return signed(t, newStripe(t, 0, secret), body, ts).Get(webhook.StripeHeader)
}

// stripeV1 returns the v1 element of a Stripe-Signature value.
func stripeV1(sig string) string {
	_, v1, _ := strings.Cut(sig, ",")
	return v1
}

func TestStripeVectors(t *testing.T) {
	body := []byte(stripeBody)
	p := newStripe(t, 0, stripeSecret)

	t.Run("verify known answer", func(t *testing.T) {
		h := header(webhook.StripeHeader, "t=1492774577,v1="+stripeVector)
		checkErr(t, p.Verify(h, body, stripeNow.Add(10*time.Second)), nil)
	})
	t.Run("sign known answer", func(t *testing.T) {
		got := signed(t, p, body, stripeNow).Get(webhook.StripeHeader)
		if want := "t=1492774577,v1=" + stripeVector; got != want {
			t.Fatalf("Sign = %q, want %q", got, want)
		}
	})
	t.Run("documented header parses and does not match", func(t *testing.T) {
		h := header(webhook.StripeHeader, stripeDocHeader)
		checkErr(t, p.Verify(h, body, stripeNow), webhook.ErrSignatureMismatch)
	})
	t.Run("documented header without v1 is unsigned", func(t *testing.T) {
		h := header(webhook.StripeHeader, "t=1492774577,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
		checkErr(t, p.Verify(h, body, stripeNow), webhook.ErrMissingSignature)
	})
	t.Run("v0 carrying the right MAC is still ignored", func(t *testing.T) {
		h := header(webhook.StripeHeader, "t=1492774577,v0="+stripeVector)
		checkErr(t, p.Verify(h, body, stripeNow), webhook.ErrMissingSignature)
	})
}

func TestStripeVerify(t *testing.T) {
	const (
		secret = "whsec_current"
		old    = "whsec_previous"
	)
	body := []byte(`{"id":"evt_1","type":"payment_intent.succeeded"}`)
	now := time.Unix(1_700_000_000, 0)
	good := stripeSig(t, secret, body, now)
	goodV1 := stripeV1(good)
	ts := "t=1700000000"
	other := stripeV1(stripeSig(t, "whsec_other", body, now))

	tests := []struct {
		name    string
		secrets []string
		tol     time.Duration
		h       http.Header
		body    []byte
		want    error
	}{
		{name: "valid", h: header(webhook.StripeHeader, good)},
		{name: "valid, elements reordered", h: header(webhook.StripeHeader, goodV1+","+ts)},
		{name: "valid, unknown schemes ignored", h: header(webhook.StripeHeader, ts+",v0=abc,"+goodV1+",v2=zz==,x=y")},
		{name: "valid among several v1", h: header(webhook.StripeHeader, ts+","+other+","+goodV1)},
		{name: "valid, upper-case hex", h: header(webhook.StripeHeader, ts+",v1="+strings.ToUpper(strings.TrimPrefix(goodV1, "v1=")))},
		{name: "valid, header name in any case", h: http.Header{"Stripe-Signature": {good}}},
		{name: "rotation: old secret still accepted", secrets: []string{"whsec_new", secret}, h: header(webhook.StripeHeader, good)},
		{name: "rotation: new secret accepted", secrets: []string{secret, old}, h: header(webhook.StripeHeader, good)},
		{name: "rotated-out secret refused", secrets: []string{old}, h: header(webhook.StripeHeader, good), want: webhook.ErrSignatureMismatch},
		{name: "wrong secret", h: header(webhook.StripeHeader, stripeSig(t, "whsec_wrong", body, now)), want: webhook.ErrSignatureMismatch},
		{name: "tampered body", h: header(webhook.StripeHeader, good), body: tamper(body), want: webhook.ErrSignatureMismatch},
		{name: "empty body", h: header(webhook.StripeHeader, good), body: []byte{}, want: webhook.ErrSignatureMismatch},
		{name: "timestamp changed", h: header(webhook.StripeHeader, "t=1700000001,"+goodV1), want: webhook.ErrSignatureMismatch},
		{name: "missing header", h: header(), want: webhook.ErrMissingSignature},
		{name: "nil header", h: nil, want: webhook.ErrMissingSignature},
		{name: "empty header", h: header(webhook.StripeHeader, ""), want: webhook.ErrMissingSignature},
		{name: "only unknown schemes", h: header(webhook.StripeHeader, ts+",v0="+strings.TrimPrefix(goodV1, "v1=")), want: webhook.ErrMissingSignature},
		{name: "garbage", h: header(webhook.StripeHeader, "garbage"), want: webhook.ErrMalformedSignature},
		{name: "empty element", h: header(webhook.StripeHeader, ts+",,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "trailing comma", h: header(webhook.StripeHeader, good+","), want: webhook.ErrMalformedSignature},
		{name: "empty value", h: header(webhook.StripeHeader, ts+",v1="), want: webhook.ErrMalformedSignature},
		{name: "empty key", h: header(webhook.StripeHeader, good+",=x"), want: webhook.ErrMalformedSignature},
		{name: "spaces around elements", h: header(webhook.StripeHeader, ts+", "+goodV1), want: webhook.ErrMalformedSignature},
		{name: "duplicate t", h: header(webhook.StripeHeader, ts+","+ts+","+goodV1), want: webhook.ErrMalformedSignature},
		{name: "conflicting t", h: header(webhook.StripeHeader, "t=1,"+good), want: webhook.ErrMalformedSignature},
		{name: "no t", h: header(webhook.StripeHeader, goodV1), want: webhook.ErrMalformedSignature},
		{name: "negative t", h: header(webhook.StripeHeader, "t=-1700000000,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "signed t", h: header(webhook.StripeHeader, "t=+1700000000,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "leading zero t", h: header(webhook.StripeHeader, "t=01700000000,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "fractional t", h: header(webhook.StripeHeader, "t=1700000000.5,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "overflowing t", h: header(webhook.StripeHeader, "t=9223372036854775808,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "too many digits in t", h: header(webhook.StripeHeader, "t=00000000000000000001700000000,"+goodV1), want: webhook.ErrMalformedSignature},
		{name: "non-hex v1", h: header(webhook.StripeHeader, ts+",v1="+strings.Repeat("zz", 32)), want: webhook.ErrMalformedSignature},
		{name: "short v1", h: header(webhook.StripeHeader, ts+",v1=abcdef"), want: webhook.ErrMalformedSignature},
		{name: "long v1", h: header(webhook.StripeHeader, good+"00"), want: webhook.ErrMalformedSignature},
		{name: "valid v1 beside a malformed one", h: header(webhook.StripeHeader, good+",v1=bad"), want: webhook.ErrMalformedSignature},
		{name: "repeated header", h: header(webhook.StripeHeader, good, webhook.StripeHeader, good), want: webhook.ErrMalformedSignature},
		{name: "huge header", h: header(webhook.StripeHeader, good+",x="+strings.Repeat("a", 4096)), want: webhook.ErrMalformedSignature},
		{name: "16 elements accepted", h: header(webhook.StripeHeader, ts+strings.Repeat(","+other, 14)+","+goodV1)},
		{name: "17 elements refused", h: header(webhook.StripeHeader, ts+strings.Repeat(","+other, 15)+","+goodV1), want: webhook.ErrMalformedSignature},
		{name: "stale", h: header(webhook.StripeHeader, stripeSig(t, secret, body, now.Add(-301*time.Second))), want: webhook.ErrTimestampOutOfTolerance},
		{name: "at tolerance", h: header(webhook.StripeHeader, stripeSig(t, secret, body, now.Add(-300*time.Second)))},
		{name: "future", h: header(webhook.StripeHeader, stripeSig(t, secret, body, now.Add(301*time.Second))), want: webhook.ErrTimestampOutOfTolerance},
		{name: "far future", h: header(webhook.StripeHeader, "t=9223372036854775807,"+goodV1), want: webhook.ErrSignatureMismatch},
		{name: "epoch", h: header(webhook.StripeHeader, stripeSig(t, secret, body, time.Unix(0, 0))), want: webhook.ErrTimestampOutOfTolerance},
		{name: "stale and forged reports the forgery", h: header(webhook.StripeHeader, stripeSig(t, "whsec_wrong", body, now.Add(-time.Hour))), want: webhook.ErrSignatureMismatch},
		{name: "custom tolerance", tol: 10 * time.Second, h: header(webhook.StripeHeader, stripeSig(t, secret, body, now.Add(-11*time.Second))), want: webhook.ErrTimestampOutOfTolerance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := tt.secrets
			if ss == nil {
				ss = []string{secret}
			}
			b := tt.body
			if b == nil {
				b = body
			}
			err := newStripe(t, tt.tol, ss...).Verify(tt.h, b, now)
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, secret, old, strings.TrimPrefix(goodV1, "v1="))
		})
	}
}

func TestStripeSign(t *testing.T) {
	body := []byte(`{"id":"evt_2"}`)
	now := time.Unix(1_700_000_000, 123)

	t.Run("round trip", func(t *testing.T) {
		p := newStripe(t, 0, "whsec_a")
		checkErr(t, p.Verify(signed(t, p, body, now), body, now), nil)
	})
	t.Run("uses the first secret", func(t *testing.T) {
		h := signed(t, newStripe(t, 0, "whsec_new", "whsec_old"), body, now)
		checkErr(t, newStripe(t, 0, "whsec_new").Verify(h, body, now), nil)
		checkErr(t, newStripe(t, 0, "whsec_old").Verify(h, body, now), webhook.ErrSignatureMismatch)
	})
	t.Run("replaces an existing header", func(t *testing.T) {
		p := newStripe(t, 0, "whsec_a")
		h := header(webhook.StripeHeader, "t=1,v1=00")
		if err := p.Sign(h, body, now); err != nil {
			t.Fatal(err)
		}
		checkErr(t, p.Verify(h, body, now), nil)
	})
	t.Run("before the epoch", func(t *testing.T) {
		if err := newStripe(t, 0, "whsec_a").Sign(http.Header{}, body, time.Unix(-1, 0)); err == nil {
			t.Fatal("Sign before the epoch: want error")
		}
	})
	t.Run("zero value refuses", func(t *testing.T) {
		var p webhook.Stripe
		if err := p.Sign(http.Header{}, body, now); err == nil {
			t.Fatal("Sign on zero Stripe: want error")
		}
		h := signed(t, newStripe(t, 0, "whsec_a"), body, now)
		checkErr(t, p.Verify(h, body, now), webhook.ErrSignatureMismatch)
	})
}

func TestNewStripe(t *testing.T) {
	body := []byte("{}")
	now := time.Unix(1_700_000_000, 0)

	t.Run("default tolerance is 5 minutes", func(t *testing.T) {
		p := newStripe(t, 0, "whsec_a")
		checkErr(t, p.Verify(signed(t, p, body, now.Add(-5*time.Minute)), body, now), nil)
		checkErr(t, p.Verify(signed(t, p, body, now.Add(-5*time.Minute-time.Second)), body, now), webhook.ErrTimestampOutOfTolerance)
	})
	for _, tt := range []struct {
		name    string
		secrets [][]byte
		tol     time.Duration
	}{
		{name: "no secrets", secrets: nil},
		{name: "empty secret", secrets: [][]byte{[]byte("whsec_a"), {}}},
		{name: "negative tolerance", secrets: secrets("whsec_a"), tol: -time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewStripe(tt.secrets, tt.tol); err == nil {
				t.Fatal("NewStripe: want error")
			}
		})
	}
	t.Run("secrets are copied", func(t *testing.T) {
		s := []byte("whsec_a")
		p, err := webhook.NewStripe([][]byte{s}, 0)
		if err != nil {
			t.Fatal(err)
		}
		h := signed(t, p, body, now)
		copy(s, "XXXXXXX")
		checkErr(t, p.Verify(h, body, now), nil)
	})
}
