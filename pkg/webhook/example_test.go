package webhook_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/inletdev/inlet/pkg/webhook"
)

func ExampleNew() {
	// Two secrets while rotating: the new one first, the old one still
	// accepted until every sender has switched.
	p, err := webhook.New("github", [][]byte{[]byte("new secret"), []byte("It's a Secret to Everybody")}, webhook.Options{})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")

	fmt.Println(p.Verify(h, []byte("Hello, World!"), time.Now()))
	err = p.Verify(h, []byte("Hello, World?"), time.Now())
	fmt.Println(webhook.IsUnauthorized(err))
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// webhook: signature mismatch: github X-Hub-Signature-256: signature does not match
}

func ExampleStripe_Sign() {
	p, err := webhook.NewStripe([][]byte{[]byte("whsec_test_secret")}, 0)
	if err != nil {
		panic(err)
	}
	body := []byte(`{"id":"evt_test_webhook","object":"event"}`)
	h := http.Header{}
	if err := p.Sign(h, body, time.Unix(1492774577, 0)); err != nil {
		panic(err)
	}
	fmt.Println(h.Get("Stripe-Signature"))
	// Output:
	// t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a
}
