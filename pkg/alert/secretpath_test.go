package alert

import "testing"

// TestSecretPath: a pointer is secret when any member it passes through has
// a name Excerpt would redact, with ~1 and ~0 read as / and ~.
func TestSecretPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/payment_method/card/number": true,
		"/data/apiKey":                true,
		"/headers/x-api-key":          true,
		"/a~1password":                true, // member "a/password"
		"/amount":                     false,
		"/data/object/id":             false,
		"/items/0/sku":                false,
		"":                            false,
		"/":                           false,
		"/businessName":               false,
		"/user/ssn":                   true,
	} {
		if got := SecretPath(p); got != want {
			t.Errorf("SecretPath(%q) = %v, want %v", p, got, want)
		}
	}
}
