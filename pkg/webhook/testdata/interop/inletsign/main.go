// Command inletsign signs requests the way Inlet's own code does, for
// generate.mjs: it reads a JSON array of requests on standard input and
// writes, for each, the headers every Inlet signer sets. The signers are
// pkg/webhook's Sign (used by the package's tests, `make run`'s sample curl
// and loadtest/benchingest) and loadtest/gen's (the load generator's own
// implementation of each scheme).
//
// It lives under testdata so that `go build ./...`, `go vet ./...` and
// `go test ./...` skip it; run it from the module root:
//
//	go run ./pkg/webhook/testdata/interop/inletsign < requests.json
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/inletdev/inlet/loadtest/gen"
	"github.com/inletdev/inlet/pkg/webhook"
)

// request is one thing to sign. Secret is the secret's text (for
// standard-webhooks, the whsec_ string); Body is base64.
type request struct {
	Kind   string `json:"kind"`
	Secret string `json:"secret"`
	Body   string `json:"body_base64"`
	Unix   int64  `json:"unix"`
	ID     string `json:"id,omitempty"`
}

// signed is one request's headers, per signer ("webhook" or "gen").
type signed map[string]map[string]string

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		fail(err)
	}
	out := make([]signed, len(reqs))
	for i, r := range reqs {
		body, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			fail(err)
		}
		now := time.Unix(r.Unix, 0)
		p, err := webhook.New(r.Kind, [][]byte{[]byte(r.Secret)}, webhook.Options{})
		if err != nil {
			fail(err)
		}
		h := http.Header{}
		if r.ID != "" {
			h.Set(webhook.StandardWebhooksIDHeader, r.ID)
		}
		if err := p.Sign(h, body, now); err != nil {
			fail(err)
		}
		g := http.Header{}
		if err := gen.Sign(r.Kind, r.Secret, g, body, r.ID, now); err != nil {
			fail(err)
		}
		out[i] = signed{"webhook": flat(h), "gen": flat(g)}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func flat(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k := range h {
		m[k] = h.Get(k)
	}
	return m
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "inletsign:", err)
	os.Exit(1)
}
