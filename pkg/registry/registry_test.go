package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/registry/registrytest"
)

const testSchema = `{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}`

// TestUnavailableOrVerdict: a registry that cannot be reached or fails is
// ErrUnavailable (wait and try again); one refusing our credentials is
// ErrDenied, which waits too but says what it is; an answer about the
// schema is neither.
func TestUnavailableOrVerdict(t *testing.T) {
	for _, tt := range []struct {
		name        string
		status      int
		body        string
		unavailable bool // IsUnavailable: wait, no verdict
		unknown     bool // WriterSchema's ErrUnknownSchema
		denied      bool // ErrDenied, and not ErrUnavailable
	}{
		{"schema not found", http.StatusNotFound, `{"error_code":40403,"message":"Schema 7 not found"}`, false, true, false},
		{"incompatible", http.StatusConflict, `{"error_code":409,"message":"incompatible"}`, false, true, false},
		// Expired or wrong credentials: nothing is known about the schema.
		{"unauthorized", http.StatusUnauthorized, `{"error_code":401,"message":"no"}`, true, false, true},
		{"forbidden", http.StatusForbidden, `{"error_code":40301,"message":"User is denied operation Write on Subject"}`, true, false, true},
		{"proxy authentication", http.StatusProxyAuthRequired, ``, true, false, true},
		{"bad request", http.StatusBadRequest, `{"error_code":400,"message":"bad"}`, false, true, false},
		{"server error", http.StatusInternalServerError, `{"error_code":50001,"message":"store error"}`, true, false, false},
		{"unavailable", http.StatusServiceUnavailable, ``, true, false, false},
		{"bad gateway from a proxy", http.StatusBadGateway, `<html>bad gateway</html>`, true, false, false},
		{"rate limited", http.StatusTooManyRequests, ``, true, false, false},
		{"request timeout", http.StatusRequestTimeout, ``, true, false, false},
		{"ok with a body that is not JSON", http.StatusOK, `<html>login</html>`, true, false, false},
		// A 4xx without the registry's error_code is not the registry's
		// verdict: a proxy or web server at the URL (a path routed
		// elsewhere during a deploy) answered. Taken as a verdict, every
		// event of a schema not yet cached went to the invalid topic.
		{"not found from something else", http.StatusNotFound, `<html>404 Not Found</html>`, true, false, false},
		{"not found as JSON without a code", http.StatusNotFound, `{"message":"no route"}`, true, false, false},
		{"method not allowed from something else", http.StatusMethodNotAllowed, ``, true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := client(t, srv.URL)
			_, err := c.WriterSchema(context.Background(), 7)
			if err == nil || IsUnavailable(err) != tt.unavailable || errors.Is(err, ErrUnknownSchema) != tt.unknown {
				t.Errorf("WriterSchema: %v; want unavailable %v, unknown schema %v", err, tt.unavailable, tt.unknown)
			}
			_, _, err = c.Register(context.Background(), "s-value", testSchema)
			if err == nil || IsUnavailable(err) != tt.unavailable {
				t.Errorf("Register: %v; want unavailable %v", err, tt.unavailable)
			}
			var re *sr.ResponseError
			if tt.status >= 300 && !errors.As(err, &re) {
				t.Errorf("Register: %v does not carry the registry's answer", err)
			}
			_, _, lerr := c.Lookup(context.Background(), "s-value", testSchema)
			if lerr == nil || IsUnavailable(lerr) != tt.unavailable {
				t.Errorf("Lookup: %v; want unavailable %v", lerr, tt.unavailable)
			}
			for name, err := range map[string]error{"Register": err, "Lookup": lerr} {
				// Said as what it is: "unavailable" sends an operator
				// looking for an outage instead of at the credentials.
				if IsDenied(err) != tt.denied || tt.denied && (errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "unavailable")) {
					t.Errorf("%s: %v; want denied %v (and then not unavailable)", name, err, tt.denied)
				}
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		c := client(t, url)
		if _, err := c.WriterSchema(context.Background(), 7); !IsUnavailable(err) || errors.Is(err, ErrUnknownSchema) {
			t.Errorf("WriterSchema: %v; want ErrUnavailable only", err)
		}
		if _, _, err := c.Register(context.Background(), "s-value", testSchema); !IsUnavailable(err) {
			t.Errorf("Register: %v; want ErrUnavailable", err)
		}
	})
}

// TestLookupRegistersNothing: Lookup finds a registered schema's ID with
// read access only, and says ErrNotRegistered when the subject does not
// hold it, without ever writing to the registry.
func TestLookupRegistersNothing(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	ro, writes := registrytest.ReadOnly(t, reg.URL())
	ctx := context.Background()
	id, _, err := client(t, reg.URL()).Register(ctx, "s-value", testSchema)
	if err != nil {
		t.Fatal(err)
	}

	c := client(t, ro)
	t.Run("registered", func(t *testing.T) {
		got, schema, err := c.Lookup(ctx, "s-value", testSchema)
		if err != nil || got != id || schema == nil {
			t.Fatalf("Lookup = %d, %v; want id %d", got, err, id)
		}
	})
	t.Run("subject without the schema", func(t *testing.T) {
		other := `{"type":"record","name":"T","fields":[{"name":"b","type":"long"}]}`
		if _, _, err := c.Lookup(ctx, "s-value", other); !errors.Is(err, ErrNotRegistered) || IsUnavailable(err) {
			t.Fatalf("Lookup: %v; want ErrNotRegistered", err)
		}
	})
	t.Run("no such subject", func(t *testing.T) {
		if _, _, err := c.Lookup(ctx, "nothing-value", testSchema); !errors.Is(err, ErrNotRegistered) || IsUnavailable(err) {
			t.Fatalf("Lookup: %v; want ErrNotRegistered", err)
		}
	})
	t.Run("register through the read-only user is denied", func(t *testing.T) {
		// The proxy above must be able to refuse, or the check below
		// proves nothing.
		if _, _, err := c.Register(ctx, "s-value", testSchema); !IsDenied(err) {
			t.Fatalf("Register: %v; want ErrDenied", err)
		}
		if w := writes(); len(w) != 1 {
			t.Fatalf("writes = %v; want only the Register", w)
		}
	})
}

func client(t *testing.T, url string) *Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return New(cl)
}

// fakeClient is a Client on a fresh fake registry.
func fakeClient(t *testing.T) *Client {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	return client(t, reg.URL())
}

func parseReader(t *testing.T, s string) avro.Schema {
	t.Helper()
	sch, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestResolvedCacheDistinguishesReaderDefaults: two readers differing only
// in a default resolve each with its own. The cache was keyed by the
// reader's fingerprint, its canonical form, which leaves defaults out, and
// the second reader got the first's default for a field the writer lacks.
func TestResolvedCacheDistinguishesReaderDefaults(t *testing.T) {
	c := fakeClient(t)
	ctx := context.Background()
	writerText := `{"type":"record","name":"T","namespace":"review","fields":[{"name":"a","type":"string"}]}`
	id, writer, err := c.Register(ctx, "t-value", writerText)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode(nil, id, writer, map[string]any{"a": "x"})
	if err != nil {
		t.Fatal(err)
	}
	readerA := parseReader(t, `{"type":"record","name":"T","namespace":"review","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"from-A"}]}`)
	readerB := parseReader(t, `{"type":"record","name":"T","namespace":"review","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"from-B"}]}`)

	var va struct {
		A string `avro:"a"`
		B string `avro:"b"`
	}
	if err := c.Decode(ctx, b, readerA, &va); err != nil || va.B != "from-A" {
		t.Fatalf("reader A: %+v, %v", va, err)
	}
	var vb struct {
		A string `avro:"a"`
		B string `avro:"b"`
	}
	if err := c.Decode(ctx, b, readerB, &vb); err != nil {
		t.Fatal(err)
	}
	if vb.B != "from-B" {
		t.Fatalf("reader B decoded b = %q, want its own default %q (the cache handed back reader A's resolution)", vb.B, "from-B")
	}
}

// TestResolvedCacheDistinguishesReaderAliases: likewise for an alias: a
// reader that cannot read the writer (no default, no alias to the
// writer's name) decoded anyway once one with the alias had been used.
func TestResolvedCacheDistinguishesReaderAliases(t *testing.T) {
	c := fakeClient(t)
	ctx := context.Background()
	id, writer, err := c.Register(ctx, "t-value", `{"type":"record","name":"T","namespace":"review","fields":[{"name":"old","type":"string"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode(nil, id, writer, map[string]any{"old": "x"})
	if err != nil {
		t.Fatal(err)
	}
	withAlias := parseReader(t, `{"type":"record","name":"T","namespace":"review","fields":[{"name":"new","type":"string","aliases":["old"]}]}`)
	without := parseReader(t, `{"type":"record","name":"T","namespace":"review","fields":[{"name":"new","type":"string"}]}`)
	var v map[string]any
	if err := c.Decode(ctx, b, withAlias, &v); err != nil {
		t.Fatal(err)
	}
	v = nil
	if err := c.Decode(ctx, b, without, &v); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("reader without the alias: %v, %v; want ErrIncompatible", v, err)
	}
}

// TestDecodeUnnamedIncompatibleReaderDoesNotPanic: a reader that is not a
// named schema and cannot read the writer gets an error; the message
// asserted a named schema and panicked.
func TestDecodeUnnamedIncompatibleReaderDoesNotPanic(t *testing.T) {
	c := fakeClient(t)
	ctx := context.Background()
	id, writer, err := c.Register(ctx, "s-value", `"string"`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode(nil, id, writer, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Decode panicked: %v", r)
		}
	}()
	var n int64
	if err := c.Decode(ctx, b, parseReader(t, `"long"`), &n); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("err = %v, want ErrIncompatible", err)
	}
}

// TestDeniedQuotesNoCredential: a refusal's error quoted the registry's
// answer, and it is the services' exit message and inletctl's: a registry
// or proxy echoing the credential it refused put the token or the basic
// auth password on stderr.
func TestDeniedQuotesNoCredential(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error_code":401,"message":"invalid credentials: ` + r.Header.Get("Authorization") + `"}`))
	}))
	defer srv.Close()
	for name, opt := range map[string]sr.ClientOpt{
		"token": sr.BearerToken("CANARY-srtoken-7f3a"),
		"basic": sr.BasicAuth("inlet", "CANARY-srpass-7f3a"),
	} {
		cl, err := sr.NewClient(sr.URLs(srv.URL), opt)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = New(cl).Register(context.Background(), "s-value", `"string"`)
		basic := base64.StdEncoding.EncodeToString([]byte("inlet:CANARY-srpass-7f3a"))
		if !IsDenied(err) || strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), basic) {
			t.Errorf("%s: %v, want ErrDenied not quoting the credential", name, err)
		}
	}
}
