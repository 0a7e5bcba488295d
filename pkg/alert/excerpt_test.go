package alert

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestExcerptRedactsWholeValues: a secret-looking member's value goes
// whole, whatever its type, and names match whatever their case and
// separators. The old redaction masked string and number values only, and
// names made of letters and underscores only.
func TestExcerptRedactsWholeValues(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		leaks         []string
	}{
		{"card object", `{"id":"ch_1","card":{"number":"4242424242424242","cvc":"123","exp":"12/30"}}`, []string{"4242424242424242", `"123"`, "12/30"}},
		{"array of keys", `{"api_key":["k1-LEAK","k2-LEAK"]}`, []string{"LEAK"}},
		{"hyphenated", `{"x-api-key":"abc-LEAK"}`, []string{"LEAK"}},
		{"mixed case and underscores", `{"X_Api_Key":"abc-LEAK"}`, []string{"LEAK"}},
		{"camel case", `{"apiKey":"abc-LEAK"}`, []string{"LEAK"}},
		{"private key", `{"private_key":"-----BEGIN LEAK"}`, []string{"LEAK"}},
		{"private key camel", `{"privateKey":"-----BEGIN LEAK"}`, []string{"LEAK"}},
		{"credentials object", `{"credentials":{"user":"u-LEAK","pass":"p-LEAK"}}`, []string{"LEAK"}},
		{"authorization header", `{"headers":{"Authorization":"Bearer LEAK"}}`, []string{"LEAK"}},
		{"cookie", `{"Set-Cookie":["sid=LEAK"]}`, []string{"LEAK"}},
		{"cvv number", `{"cvv":987}`, []string{"987"}},
		{"iban", `{"IBAN":"DE89LEAK"}`, []string{"LEAK"}},
		{"account number", `{"bank":{"account-number":"LEAK1234"}}`, []string{"LEAK"}},
		{"client secret", `{"client_secret":{"v":"LEAK"}}`, []string{"LEAK"}},
		{"ssn word", `{"userSSN":"LEAK-1","ssn_last4":"LEAK-2"}`, []string{"LEAK"}},
		{"nested arrays of objects", `{"items":[{"id":"i1","token":"t-LEAK"},{"meta":[[{"secret":{"a":"s-LEAK"}}]]}]}`, []string{"LEAK"}},
		{"null and bool values", `{"password":null,"token":true}`, []string{"null", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Excerpt([]byte(tc.payload), 512)
			if !json.Valid([]byte(e)) {
				t.Fatalf("excerpt is not JSON: %s", e)
			}
			for _, leak := range tc.leaks {
				if strings.Contains(e, leak) {
					t.Errorf("excerpt leaks %s: %s", leak, e)
				}
			}
			if !strings.Contains(e, `"[redacted]"`) {
				t.Errorf("nothing redacted: %s", e)
			}
		})
	}
}

// TestExcerptKeepsOrdinaryMembers: members that are not secrets stay,
// in order, including names that merely contain a secret word's letters.
func TestExcerptKeepsOrdinaryMembers(t *testing.T) {
	p := `{"id":"o1","amount":4200,"currency":"eur","status":"paid","paid":true,"refund":null,"businessName":"Acme","address_number":"12","lines":[{"sku":"a","qty":2}]}`
	if e := Excerpt([]byte(p), 512); e != p {
		t.Fatalf("excerpt\n%s\nwant\n%s", e, p)
	}
	want := `{"id":"o1","card":"[redacted]","amount":4200}`
	if e := Excerpt([]byte(`{"id":"o1", "card": {"number":"4242"}, "amount":4200}`), 512); e != want {
		t.Fatalf("excerpt %s, want %s", e, want)
	}
}

// TestExcerptStaysJSONWhenCut: cut for room or by a payload that stops
// being JSON, the excerpt is still valid JSON within the bound, and a
// secret cut off mid-value does not leak.
func TestExcerptStaysJSONWhenCut(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name, payload string
		n             int
		want          string
	}{
		{"long string", `{"id":"o1","note":"` + long + `"}`, 48, `{"id":"o1","note":"` + strings.Repeat("x", 24) + `…"}`},
		{"long array", `[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]`, 40, `[1,2,3,4,5,6,7,8,9,10,11,"…"]`},
		{"deep nesting", strings.Repeat("[", 100) + strings.Repeat("]", 100), 40, ""},
		{"payload cut off", `{"id":"o1","lines":[{"sku":"a"`, 512, `{"id":"o1","lines":[{"sku":"a","…":"…"}]}`},
		{"cut inside a secret", `{"id":"o1","card":{"number":"4242424242424242`, 512, `{"id":"o1","…":"…"}`},
		{"not JSON", `card_number=4242424242424242&cvc=123`, 512, `"[not JSON: 36 bytes]"`},
		{"empty", ``, 512, `"[not JSON: 0 bytes]"`},
		{"multibyte", `"` + strings.Repeat("é", 100) + `"`, 40, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Excerpt([]byte(tc.payload), tc.n)
			if !json.Valid([]byte(e)) || len(e) > tc.n {
				t.Fatalf("excerpt (%d bytes, bound %d) %s", len(e), tc.n, e)
			}
			if tc.want != "" && e != tc.want {
				t.Fatalf("excerpt %s, want %s", e, tc.want)
			}
			if strings.Contains(e, "4242") {
				t.Fatalf("excerpt leaks the card number: %s", e)
			}
		})
	}
}

// FuzzExcerpt checks Excerpt's invariants: whatever the payload and bound,
// the excerpt is valid JSON of at most max(n, minExcerpt) bytes.
func FuzzExcerpt(f *testing.F) {
	for _, s := range []string{
		`{"id":"o1","password":"LEAKED","items":[{"token":["LEAKED"]}]}`,
		`[1,"two",{"three":3.0e1},null,true]`,
		`{"a":{"b":{"c":"` + strings.Repeat("é", 40) + `"}}}`,
		`{"a":`, `nope`, `"\u00e9\n"`, `{"password":{"x":"LEAKED"}} {"y":1}`,
	} {
		f.Add([]byte(s), uint16(64))
	}
	f.Fuzz(func(t *testing.T, payload []byte, n uint16) {
		e := Excerpt(payload, int(n))
		if !json.Valid([]byte(e)) {
			t.Fatalf("excerpt is not JSON: %q", e)
		}
		if len(e) > max(int(n), minExcerpt) {
			t.Fatalf("excerpt of %d bytes, bound %d", len(e), n)
		}
	})
}
