package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// The Standard Webhooks reference libraries' signing vector
// (standard-webhooks/standard-webhooks, libraries/go/webhook_test.go
// TestWebhookSign and libraries/javascript/src/webhook.test.ts "sign function
// works"), and the well-formed but wrong signature their verification tests
// use.
const (
	swSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTS        = 1614265330
	swBody      = `{"test": 2432232314}`
	swSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	swWrongSig  = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
)

var swNow = time.Unix(swTS, 0)

func newStandardWebhooks(t testing.TB, tolerance time.Duration, ss ...string) *webhook.StandardWebhooks {
	t.Helper()
	p, err := webhook.NewStandardWebhooks(ss, tolerance)
	if err != nil {
		t.Fatalf("NewStandardWebhooks: %v", err)
	}
	return p
}

// swHeader returns the three Standard Webhooks headers.
func swHeader(id, ts, sig string) http.Header {
	return header(
		webhook.StandardWebhooksIDHeader, id,
		webhook.StandardWebhooksTimestampHeader, ts,
		webhook.StandardWebhooksSignatureHeader, sig,
	)
}

// swSigned signs body as msg id at ts under secret and returns the headers.
func swSigned(t testing.TB, secret, id string, body []byte, ts time.Time) http.Header {
	t.Helper()
	h := header(webhook.StandardWebhooksIDHeader, id)
	if err := newStandardWebhooks(t, 0, secret).Sign(h, body, ts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return h
}

func TestStandardWebhooksVectors(t *testing.T) {
	body := []byte(swBody)
	for _, secret := range []string{swSecret, strings.TrimPrefix(swSecret, "whsec_")} {
		p := newStandardWebhooks(t, 0, secret)
		t.Run("verify reference vector, secret "+secret[:6], func(t *testing.T) {
			checkErr(t, p.Verify(swHeader(swMsgID, "1614265330", swSignature), body, swNow), nil)
		})
		t.Run("sign reference vector, secret "+secret[:6], func(t *testing.T) {
			h := header(webhook.StandardWebhooksIDHeader, swMsgID)
			if err := p.Sign(h, body, swNow); err != nil {
				t.Fatal(err)
			}
			if got := h.Get(webhook.StandardWebhooksSignatureHeader); got != swSignature {
				t.Fatalf("Sign: signature %q, want %q", got, swSignature)
			}
			if got := h.Get(webhook.StandardWebhooksTimestampHeader); got != "1614265330" {
				t.Fatalf("Sign: timestamp %q, want 1614265330", got)
			}
			if got := h.Get(webhook.StandardWebhooksIDHeader); got != swMsgID {
				t.Fatalf("Sign: id %q, want %q", got, swMsgID)
			}
		})
	}
	t.Run("reference multi-signature header", func(t *testing.T) {
		sig := strings.Join([]string{swWrongSig, "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", swSignature, swWrongSig}, " ")
		checkErr(t, newStandardWebhooks(t, 0, swSecret).Verify(swHeader(swMsgID, "1614265330", sig), body, swNow), nil)
	})
}

func TestStandardWebhooksVerify(t *testing.T) {
	const old = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
	body := []byte(swBody)
	ts := "1614265330"
	other := swSigned(t, old, swMsgID, body, swNow).Get(webhook.StandardWebhooksSignatureHeader)
	v1a := "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="

	tests := []struct {
		name    string
		secrets []string
		tol     time.Duration
		h       http.Header
		body    []byte
		want    error
	}{
		{name: "valid", h: swHeader(swMsgID, ts, swSignature)},
		{name: "non-canonical map keys are not looked up", h: http.Header{"webhook-id": {swMsgID}, "webhook-timestamp": {ts}, "webhook-signature": {swSignature}}, want: webhook.ErrMissingSignature},
		{name: "valid, asymmetric entries ignored", h: swHeader(swMsgID, ts, v1a+" "+swSignature)},
		{name: "rotation: old secret still accepted", secrets: []string{old, swSecret}, h: swHeader(swMsgID, ts, swSignature)},
		{name: "rotation: new secret accepted", secrets: []string{swSecret, old}, h: swHeader(swMsgID, ts, swSignature)},
		{name: "rotation: sender signs with both", secrets: []string{old}, h: swHeader(swMsgID, ts, swSignature+" "+other)},
		{name: "wrong secret", secrets: []string{old}, h: swHeader(swMsgID, ts, swSignature), want: webhook.ErrSignatureMismatch},
		{name: "reference wrong signature", h: swHeader(swMsgID, ts, swWrongSig), want: webhook.ErrSignatureMismatch},
		{name: "tampered body", h: swHeader(swMsgID, ts, swSignature), body: tamper(body), want: webhook.ErrSignatureMismatch},
		{name: "changed id", h: swHeader("msg_other", ts, swSignature), want: webhook.ErrSignatureMismatch},
		{name: "changed timestamp", h: swHeader(swMsgID, "1614265331", swSignature), want: webhook.ErrSignatureMismatch},
		{name: "missing signature header", h: header(webhook.StandardWebhooksIDHeader, swMsgID, webhook.StandardWebhooksTimestampHeader, ts), want: webhook.ErrMissingSignature},
		{name: "no headers", h: header(), want: webhook.ErrMissingSignature},
		{name: "only asymmetric signatures", h: swHeader(swMsgID, ts, v1a), want: webhook.ErrMissingSignature},
		{name: "missing id", h: header(webhook.StandardWebhooksTimestampHeader, ts, webhook.StandardWebhooksSignatureHeader, swSignature), want: webhook.ErrMalformedSignature},
		{name: "missing timestamp", h: header(webhook.StandardWebhooksIDHeader, swMsgID, webhook.StandardWebhooksSignatureHeader, swSignature), want: webhook.ErrMalformedSignature},
		{name: "id with a dot", h: swHeader("msg.1", ts, swSignature), want: webhook.ErrMalformedSignature},
		{name: "garbage", h: swHeader(swMsgID, ts, "garbage"), want: webhook.ErrMalformedSignature},
		{name: "reference invalid signature", h: swHeader(swMsgID, ts, "v1,dawfeoifkpqwoekfpqoekf"), want: webhook.ErrMalformedSignature},
		{name: "reference partial signature", h: swHeader(swMsgID, ts, swSignature[:8]), want: webhook.ErrMalformedSignature},
		{name: "empty signature", h: swHeader(swMsgID, ts, "v1,"), want: webhook.ErrMalformedSignature},
		{name: "empty version", h: swHeader(swMsgID, ts, ",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), want: webhook.ErrMalformedSignature},
		{name: "empty entry", h: swHeader(swMsgID, ts, swWrongSig+"  "+swSignature), want: webhook.ErrMalformedSignature},
		{name: "comma-separated list", h: swHeader(swMsgID, ts, swWrongSig+","+swSignature), want: webhook.ErrMalformedSignature},
		{name: "unpadded base64", h: swHeader(swMsgID, ts, strings.TrimSuffix(swSignature, "=")), want: webhook.ErrMalformedSignature},
		{name: "hex signature", h: swHeader(swMsgID, ts, "v1,"+strings.Repeat("ab", 32)), want: webhook.ErrMalformedSignature},
		{name: "valid beside a malformed v1", h: swHeader(swMsgID, ts, swSignature+" v1,!!"), want: webhook.ErrMalformedSignature},
		{name: "repeated signature header", h: header(webhook.StandardWebhooksIDHeader, swMsgID, webhook.StandardWebhooksTimestampHeader, ts, webhook.StandardWebhooksSignatureHeader, swSignature, webhook.StandardWebhooksSignatureHeader, swSignature), want: webhook.ErrMalformedSignature},
		{name: "repeated id header", h: header(webhook.StandardWebhooksIDHeader, swMsgID, webhook.StandardWebhooksIDHeader, "msg_2", webhook.StandardWebhooksTimestampHeader, ts, webhook.StandardWebhooksSignatureHeader, swSignature), want: webhook.ErrMalformedSignature},
		{name: "huge signature header", h: swHeader(swMsgID, ts, swSignature+strings.Repeat(" "+swWrongSig, 100)), want: webhook.ErrMalformedSignature},
		{name: "huge id", h: swHeader(strings.Repeat("m", 4097), ts, swSignature), want: webhook.ErrMalformedSignature},
		{name: "16 signatures accepted", h: swHeader(swMsgID, ts, strings.Repeat(swWrongSig+" ", 15)+swSignature)},
		{name: "17 signatures refused", h: swHeader(swMsgID, ts, strings.Repeat(swWrongSig+" ", 16)+swSignature), want: webhook.ErrMalformedSignature},
		{name: "negative timestamp", h: swHeader(swMsgID, "-1614265330", swSignature), want: webhook.ErrMalformedSignature},
		{name: "timestamp in milliseconds overflowing", h: swHeader(swMsgID, "99999999999999999999", swSignature), want: webhook.ErrMalformedSignature},
		{name: "non-numeric timestamp", h: swHeader(swMsgID, "hello", swSignature), want: webhook.ErrMalformedSignature},
		{name: "RFC 3339 timestamp", h: swHeader(swMsgID, "2021-02-25T15:02:10Z", swSignature), want: webhook.ErrMalformedSignature},
		{name: "leading zero timestamp", h: swHeader(swMsgID, "01614265330", swSignature), want: webhook.ErrMalformedSignature},
		{name: "stale", h: swSigned(t, swSecret, swMsgID, body, swNow.Add(-5*time.Minute-time.Second)), want: webhook.ErrTimestampOutOfTolerance},
		{name: "at tolerance, past", h: swSigned(t, swSecret, swMsgID, body, swNow.Add(-5*time.Minute))},
		{name: "at tolerance, future", h: swSigned(t, swSecret, swMsgID, body, swNow.Add(5*time.Minute))},
		{name: "future", h: swSigned(t, swSecret, swMsgID, body, swNow.Add(5*time.Minute+time.Second)), want: webhook.ErrTimestampOutOfTolerance},
		{name: "reference: year 2000", h: swSigned(t, swSecret, swMsgID, body, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)), want: webhook.ErrTimestampOutOfTolerance},
		{name: "stale and forged reports the forgery", h: swSigned(t, old, swMsgID, body, swNow.Add(-time.Hour)), want: webhook.ErrSignatureMismatch},
		{name: "custom tolerance", tol: time.Minute, h: swSigned(t, swSecret, swMsgID, body, swNow.Add(-61*time.Second)), want: webhook.ErrTimestampOutOfTolerance},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := tt.secrets
			if ss == nil {
				ss = []string{swSecret}
			}
			b := tt.body
			if b == nil {
				b = body
			}
			err := newStandardWebhooks(t, tt.tol, ss...).Verify(tt.h, b, swNow)
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, swSecret, strings.TrimPrefix(swSecret, "whsec_"), strings.TrimPrefix(swSignature, "v1,"))
		})
	}
}

func TestStandardWebhooksSign(t *testing.T) {
	body := []byte(`{"type":"invoice.paid"}`)
	now := time.Unix(1_700_000_000, 0)

	t.Run("round trip with a generated id", func(t *testing.T) {
		p := newStandardWebhooks(t, 0, swSecret)
		h := signed(t, p, body, now)
		id := h.Get(webhook.StandardWebhooksIDHeader)
		if !strings.HasPrefix(id, "msg_") || strings.Contains(id, ".") {
			t.Fatalf("Sign: generated id %q, want msg_ and no '.'", id)
		}
		checkErr(t, p.Verify(h, body, now), nil)
		if id2 := signed(t, p, body, now).Get(webhook.StandardWebhooksIDHeader); id2 == id {
			t.Fatalf("Sign: two calls generated the same id %q", id)
		}
	})
	t.Run("uses the first secret", func(t *testing.T) {
		h := signed(t, newStandardWebhooks(t, 0, swSecret, "whsec_b2xk"), body, now)
		checkErr(t, newStandardWebhooks(t, 0, "whsec_b2xk").Verify(h, body, now), webhook.ErrSignatureMismatch)
	})
	t.Run("refuses an id with a dot", func(t *testing.T) {
		h := header(webhook.StandardWebhooksIDHeader, "msg.1")
		if err := newStandardWebhooks(t, 0, swSecret).Sign(h, body, now); err == nil {
			t.Fatal("Sign with id msg.1: want error")
		}
	})
	t.Run("before the epoch", func(t *testing.T) {
		if err := newStandardWebhooks(t, 0, swSecret).Sign(http.Header{}, body, time.Unix(-1, 0)); err == nil {
			t.Fatal("Sign before the epoch: want error")
		}
	})
	t.Run("zero value refuses", func(t *testing.T) {
		var p webhook.StandardWebhooks
		if err := p.Sign(http.Header{}, body, now); err == nil {
			t.Fatal("Sign on zero StandardWebhooks: want error")
		}
		checkErr(t, p.Verify(swHeader(swMsgID, "1614265330", swSignature), []byte(swBody), swNow), webhook.ErrSignatureMismatch)
	})
}

func TestNewStandardWebhooks(t *testing.T) {
	body := []byte(swBody)
	t.Run("padded and unpadded secrets are the same key", func(t *testing.T) {
		for _, s := range []string{"whsec_c2Vjb24=", "whsec_c2Vjb24", "c2Vjb24="} {
			p := newStandardWebhooks(t, 0, s)
			h := swSigned(t, "whsec_c2Vjb24=", swMsgID, body, swNow)
			checkErr(t, p.Verify(h, body, swNow), nil)
		}
	})
	for _, tt := range []struct {
		name    string
		secrets []string
		tol     time.Duration
	}{
		{name: "no secrets"},
		{name: "empty secret", secrets: []string{""}},
		{name: "prefix only", secrets: []string{"whsec_"}},
		{name: "padding only", secrets: []string{"whsec_=="}},
		{name: "not base64", secrets: []string{"whsec_not*base64"}},
		{name: "negative tolerance", secrets: []string{swSecret}, tol: -time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.NewStandardWebhooks(tt.secrets, tt.tol)
			if err == nil {
				t.Fatal("NewStandardWebhooks: want error")
			}
			checkNoLeak(t, err, "not*base64")
		})
	}
}
