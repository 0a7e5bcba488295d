package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

// GitHub's test values, from "Validating webhook deliveries"
// (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries,
// section "Testing the webhook payload validation").
const (
	githubSecret    = "It's a Secret to Everybody"
	githubBody      = "Hello, World!"
	githubSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func newGitHub(t testing.TB, ss ...string) *webhook.GitHub {
	t.Helper()
	p, err := webhook.NewGitHub(secrets(ss...))
	if err != nil {
		t.Fatalf("NewGitHub: %v", err)
	}
	return p
}

func TestGitHubVectors(t *testing.T) {
	p := newGitHub(t, githubSecret)
	t.Run("verify documented vector", func(t *testing.T) {
		checkErr(t, p.Verify(header(webhook.GitHubHeader, githubSignature), []byte(githubBody), time.Time{}), nil)
	})
	t.Run("sign documented vector", func(t *testing.T) {
		if got := signed(t, p, []byte(githubBody), time.Time{}).Get(webhook.GitHubHeader); got != githubSignature {
			t.Fatalf("Sign = %q, want %q", got, githubSignature)
		}
	})
}

func TestGitHubVerify(t *testing.T) {
	body := []byte(githubBody)
	hexSig := strings.TrimPrefix(githubSignature, "sha256=")
	tests := []struct {
		name    string
		secrets []string
		h       http.Header
		body    []byte
		want    error
	}{
		{name: "valid", h: header(webhook.GitHubHeader, githubSignature)},
		{name: "valid, upper-case hex", h: header(webhook.GitHubHeader, "sha256="+strings.ToUpper(hexSig))},
		{name: "rotation: old secret still accepted", secrets: []string{"new secret", githubSecret}, h: header(webhook.GitHubHeader, githubSignature)},
		{name: "rotation: new secret accepted", secrets: []string{githubSecret, "old secret"}, h: header(webhook.GitHubHeader, githubSignature)},
		{name: "wrong secret", secrets: []string{"It's a Secret to Nobody"}, h: header(webhook.GitHubHeader, githubSignature), want: webhook.ErrSignatureMismatch},
		{name: "tampered body", body: tamper(body), h: header(webhook.GitHubHeader, githubSignature), want: webhook.ErrSignatureMismatch},
		{name: "missing header", h: header(), want: webhook.ErrMissingSignature},
		{name: "legacy sha1 header only", h: header("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), want: webhook.ErrMissingSignature},
		{name: "empty header", h: header(webhook.GitHubHeader, ""), want: webhook.ErrMissingSignature},
		{name: "garbage", h: header(webhook.GitHubHeader, "garbage"), want: webhook.ErrMalformedSignature},
		{name: "no prefix", h: header(webhook.GitHubHeader, hexSig), want: webhook.ErrMalformedSignature},
		{name: "wrong prefix", h: header(webhook.GitHubHeader, "sha1="+hexSig), want: webhook.ErrMalformedSignature},
		{name: "prefix only", h: header(webhook.GitHubHeader, "sha256="), want: webhook.ErrMalformedSignature},
		{name: "non-hex", h: header(webhook.GitHubHeader, "sha256="+strings.Repeat("g", 64)), want: webhook.ErrMalformedSignature},
		{name: "truncated", h: header(webhook.GitHubHeader, githubSignature[:len(githubSignature)-2]), want: webhook.ErrMalformedSignature},
		{name: "trailing data", h: header(webhook.GitHubHeader, githubSignature+",sha256="+hexSig), want: webhook.ErrMalformedSignature},
		{name: "repeated header", h: header(webhook.GitHubHeader, githubSignature, webhook.GitHubHeader, githubSignature), want: webhook.ErrMalformedSignature},
		{name: "huge header", h: header(webhook.GitHubHeader, githubSignature+strings.Repeat("0", 4096)), want: webhook.ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := tt.secrets
			if ss == nil {
				ss = []string{githubSecret}
			}
			b := tt.body
			if b == nil {
				b = body
			}
			err := newGitHub(t, ss...).Verify(tt.h, b, time.Now())
			checkErr(t, err, tt.want)
			checkNoLeak(t, err, githubSecret, hexSig)
		})
	}
}

func TestGitHubSign(t *testing.T) {
	body := []byte(`{"action":"opened"}`)
	t.Run("round trip", func(t *testing.T) {
		p := newGitHub(t, "s3cret")
		checkErr(t, p.Verify(signed(t, p, body, time.Now()), body, time.Now()), nil)
	})
	t.Run("uses the first secret", func(t *testing.T) {
		h := signed(t, newGitHub(t, "new", "old"), body, time.Now())
		checkErr(t, newGitHub(t, "old").Verify(h, body, time.Now()), webhook.ErrSignatureMismatch)
	})
	t.Run("zero value refuses", func(t *testing.T) {
		var p webhook.GitHub
		if err := p.Sign(http.Header{}, body, time.Now()); err == nil {
			t.Fatal("Sign on zero GitHub: want error")
		}
		checkErr(t, p.Verify(header(webhook.GitHubHeader, githubSignature), []byte(githubBody), time.Now()), webhook.ErrSignatureMismatch)
	})
}

func TestNewGitHub(t *testing.T) {
	for _, tt := range []struct {
		name    string
		secrets [][]byte
	}{
		{name: "no secrets"},
		{name: "empty secret", secrets: [][]byte{{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := webhook.NewGitHub(tt.secrets); err == nil {
				t.Fatal("NewGitHub: want error")
			}
		})
	}
}
