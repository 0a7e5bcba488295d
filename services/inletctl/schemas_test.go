package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/schemacheck"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
)

const schemaSources = `
sources:
  pay:
    kind: stripe
    secrets_env: [T_NOT_READ]
    events:
      "payment_intent.*": {contract: stripe/payment_intent, entity_key: "pi:{/data/object/id}"}
`

func writeSources(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestSchemasCheck(t *testing.T) {
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"schemas"},
			{"schemas", "ls"},
			{"schemas", "check", "extra"},
			{"schemas", "check", "--output", "yaml"},
		} {
			if code, err := run(args, &bytes.Buffer{}); code != exitUsage {
				t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
			}
		}
	})

	env := testenv.Embedded(t)
	topics := kafka.TopicNames(env.Prefix, nil)
	flags := []string{"-schema-registry-url", env.RegistryURL, "-topic-prefix", env.Prefix}
	t.Setenv("INLET_SOURCES", "")
	sources := writeSources(t, schemaSources)
	piSubject := topics.ProcessedSubject("inlet.processed.stripe.payment_intent")

	t.Run("fits: new subjects", func(t *testing.T) {
		var out bytes.Buffer
		code, err := run(append(flags, "schemas", "check", "--sources", sources), &out)
		if code != exitOK || err != nil {
			t.Fatalf("exit %d (%v), want 0:\n%s", code, err, out.String())
		}
		for _, want := range []string{topics.RawSubject(), piSubject, "new", "the first write registers version 1"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "github") {
			t.Errorf("checked contracts the sources do not use:\n%s", out.String())
		}
	})

	t.Run("sources whose retry tiers the processor lacks", func(t *testing.T) {
		// The processor refuses to start (and --check-config fails) on a
		// source retrying after a delay it has no retry topic for; the
		// check passed it.
		odd := writeSources(t, strings.Replace(schemaSources, "    events:", "    retry: {tiers: [45s]}\n    events:", 1))
		var out bytes.Buffer
		code, _ := run(append(flags, "schemas", "check", "--sources", odd), &out)
		if code != exitProblems || !strings.Contains(out.String(), `source "pay" retries after 45s but there is no retry topic for that delay`) {
			t.Errorf("default tiers: exit %d, want %d naming the tier:\n%s", code, exitProblems, out.String())
		}
		out.Reset()
		code, err := run(append(flags, "schemas", "check", "--sources", odd, "--retry-tiers", "45s"), &out)
		if code != exitOK {
			t.Errorf("--retry-tiers 45s: exit %d (%v), want 0:\n%s", code, err, out.String())
		}
		if code, _ := run(append(flags, "schemas", "check", "--retry-tiers", "soon"), &bytes.Buffer{}); code != exitUsage {
			t.Errorf("--retry-tiers soon: exit %d, want %d", code, exitUsage)
		}
	})

	t.Run("a processed schema the subject refuses", func(t *testing.T) {
		ctx := context.Background()
		// An earlier version the current one cannot read: its fields have
		// no defaults.
		older := `{"type":"record","name":"inlet.processed.stripe.payment_intent","fields":[{"name":"only","type":"string"}]}`
		if _, _, err := env.Registry(t).Register(ctx, piSubject, older); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		code, err := run(append(flags, "schemas", "check", "--sources", sources), &out)
		if code != exitProblems || err != nil {
			t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitProblems, out.String())
		}
		for _, want := range []string{"incompatible", "refused against version 1", "problems:", piSubject + ": the registry refuses"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}

		out.Reset()
		code, _ = run(append(flags, "schemas", "check", "--sources", sources, "--output", "json"), &out)
		var rep schemasReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("json output: %v\n%s", err, out.String())
		}
		status := map[string]schemacheck.Status{}
		for _, r := range rep.Subjects {
			status[r.Name] = r.Status
		}
		if code != exitProblems || status[piSubject] != schemacheck.Incompatible || status[topics.RawSubject()] != schemacheck.New || len(rep.Problems) != 1 {
			t.Errorf("json: exit %d, statuses %v, problems %v", code, status, rep.Problems)
		}
	})

	t.Run("sources naming a contract the build lacks", func(t *testing.T) {
		bad := writeSources(t, strings.Replace(schemaSources, "stripe/payment_intent", "stripe/charge", 1))
		var out bytes.Buffer
		code, _ := run(append(flags, "schemas", "check", "--sources", bad), &out)
		if code != exitProblems || !strings.Contains(out.String(), `contract "stripe/charge" is not in this build`) {
			t.Errorf("exit %d, want %d naming the contract:\n%s", code, exitProblems, out.String())
		}
	})

	t.Run("sources with a Go handler the processor refuses", func(t *testing.T) {
		// The processor, dev and replay build their router with
		// handlers.Router, Go handlers included; the check built the
		// file's entries alone, and passed a file whose Go handler
		// clashes with an entry (or fails to build): exit 0, then a
		// processor that does not start.
		if reflect.ValueOf(buildRouter).Pointer() != reflect.ValueOf(handlers.RouterWith).Pointer() {
			t.Fatal("schemas check does not build its router with handlers.RouterWith (handlers.Router's), as the processor does")
		}
		defer func(b func(*source.File, *contract.Registry) (*router.Router, error)) { buildRouter = b }(buildRouter)
		buildRouter = func(f *source.File, reg *contract.Registry) (*router.Router, error) {
			rt, err := handlers.RouterWith(f, reg)
			if err != nil {
				return nil, err
			}
			// As pkg/handlers registers a Go handler for the entry's own route.
			noop := router.HandlerFunc(func(context.Context, *router.Event) (*router.Output, error) { return nil, nil })
			if err := rt.Handle(router.Route{Source: "pay", EventType: "payment_intent.*", Version: "*"}, noop); err != nil {
				return nil, fmt.Errorf("go handler: %w", err)
			}
			return rt, nil
		}
		var out bytes.Buffer
		code, _ := run(append(flags, "schemas", "check", "--sources", sources), &out)
		if code != exitProblems || !strings.Contains(out.String(), "registered twice") {
			t.Errorf("exit %d, want %d naming the clash:\n%s", code, exitProblems, out.String())
		}
	})

	t.Run("a Go handler's processed schema", func(t *testing.T) {
		// A Go handler registers its own processed schema on its first
		// event. The check did not see it: a new build whose handler
		// turned a time's timestamp-millis into timestamp-micros (which
		// Confluent's registry takes, and every stored time then reads
		// 1000 times off) passed with exit 0.
		ctx := context.Background()
		shipment := func(logical string) string {
			return `{"type":"record","name":"Shipment","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"at","type":{"type":"long","logicalType":"` + logical + `"}}]}`
		}
		subject := topics.ProcessedSubject("acme.Shipment")
		if _, _, err := env.Registry(t).Register(ctx, subject, shipment("timestamp-millis")); err != nil {
			t.Fatal(err)
		}
		defer func(g func() []handlers.Schema) { goSchemas = g }(goSchemas)
		goSchemas = func() []handlers.Schema {
			return []handlers.Schema{{Route: router.Route{Source: "acme", EventType: "shipment.*", Version: "v1"}, Text: shipment("timestamp-micros")}}
		}
		var out bytes.Buffer
		code, _ := run(append(flags, "schemas", "check", "--sources", sources), &out)
		if code != exitProblems || !strings.Contains(out.String(), subject+": the registry refuses go handler acme/shipment.*@v1") ||
			!strings.Contains(out.String(), "logical type timestamp-millis in the previous schema, timestamp-micros in the new one") {
			t.Errorf("exit %d, want %d naming the subject, the handler and the logical type:\n%s", code, exitProblems, out.String())
		}
		for _, want := range []string{topics.StateSubject("acme.Shipment"), "new"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})

	t.Run("sources file missing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "sources.yaml")
		code, err := run(append(flags, "schemas", "check", "--sources", missing), &bytes.Buffer{})
		// A usage error (2): exit 1 says the registry did not answer, and
		// a gate retrying on 1 retried a typo for good.
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), "--sources (INLET_SOURCES)") || !strings.Contains(err.Error(), missing) {
			t.Errorf("exit %d, %v; want %d naming --sources (INLET_SOURCES) and the path", code, err, exitUsage)
		}
	})

	t.Run("sources file refused", func(t *testing.T) {
		bad := writeSources(t, "sources:\n  s:\n    kind: none\n    retry: {max_attempts: 0}\n")
		code, err := run(append(flags, "schemas", "check", "--sources", bad), &bytes.Buffer{})
		if code != exitProblems || err == nil || !strings.Contains(err.Error(), "retry.max_attempts") {
			t.Errorf("exit %d, %v; want %d naming the setting", code, err, exitProblems)
		}
	})

	t.Run("registry unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := "http://" + ln.Addr().String()
		ln.Close()
		var out bytes.Buffer
		code, err := run([]string{"-schema-registry-url", down, "schemas", "check"}, &out)
		if code != exitError || err == nil || !strings.Contains(err.Error(), "did not answer") {
			t.Errorf("exit %d (%v), want %d saying the registry did not answer:\n%s", code, err, exitError, out.String())
		}
	})
}
