package redact

import (
	"net/url"
	"strings"
	"testing"
)

// TestFormsBlotOutQuotedCredentials: a credential is blotted out however
// a server quotes it back, and route words stay readable.
func TestFormsBlotOutQuotedCredentials(t *testing.T) {
	u, err := url.Parse("https://svc:hunter22@sink.example.com/hooks/T0K3N-abc?api_key=k3y/42")
	if err != nil {
		t.Fatal(err)
	}
	s := Forms([]string{"Bearer sk_live_0123", "Basic " + "dXNlcjpwYXNzd29yZA=="}, u, nil) // user:password
	text := `401 for sk_live_0123; user "password" at /hooks/T0K3N-abc: unknown T0K3N-abc, {"key":"k3y\/42"}, svc/hunter22`
	got := s.Apply(text)
	for _, secret := range []string{"sk_live_0123", "password", "T0K3N-abc", `k3y\/42`, "hunter22"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q left in %q", secret, got)
		}
	}
	if !strings.Contains(got, "401 for") || !strings.Contains(got, "unknown") {
		t.Errorf("more than the credentials blotted out: %q", got)
	}
	if s.Longest() != len(s[0]) || (Set{}).Longest() != 0 {
		t.Errorf("Longest %d, want %d (and 0 for none)", s.Longest(), len(s[0]))
	}
}
