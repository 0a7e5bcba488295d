package declarative

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/tidwall/gjson"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
)

// shippedSources are the sources files users start from, each with the
// key of the ConfigMap data field that holds it ("": the file is the
// sources file); their events entries must work on the payloads their
// contracts ship as fixtures.
var shippedSources = []struct{ file, configMapKey string }{
	{"../../deploy/sources.example.yaml", ""},
	{"../../deploy/k8s/configmap-sources.yaml", "sources.yaml"},
}

// notKeyed lists fixtures an events entry is expected to refuse, with why.
// Anything else that fails is a broken template or pointer in a shipped
// file; an exception no shipped file uses is stale, and fails too.
var notKeyed = map[string]string{
	// billing (an in-house producer) keys by {/data/id}; the generic Standard
	// Webhooks fixtures include data that is not an object and an object
	// keyed by another field: events without an entity there are invalid by
	// design.
	"billing standardwebhooks/event/fixtures/v1/ping.scalar_data.json": "entity_key",
	"billing standardwebhooks/event/fixtures/v1/invoice.paid.json":     "entity_key",
	// Shopify's documented example of orders/risk_assessment_changed has
	// every member but risk_level null, order_id included; an assessment
	// Shopify sends names its order, and one that did not could not be
	// told from another order's: invalid, kept on the invalid topic.
	"shop shopify/order_risk_assessment/fixtures/v2/orders.risk_assessment_changed.2025-01.json": "entity_key",
}

// TestShippedEntriesKeyEveryFixture: every events entry of the shipped
// sources files, given each fixture of its contract, validates it, renders
// its entity and natural keys, and finds the business time where its
// occurred_at points. The contract tests check fixtures against schemas
// only; a key template or occurred_at pointer naming a field the provider
// does not send would make every such event invalid (or, for occurred_at,
// silently turn newest-wins off) in production, and nothing else notices.
func TestShippedEntriesKeyEveryFixture(t *testing.T) {
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	used := map[string]bool{} // the notKeyed entries met
	for _, shipped := range shippedSources {
		file := shipped.file
		t.Run(path.Base(file), func(t *testing.T) {
			b, err := sourcesText(file, shipped.configMapKey)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			sources, err := source.Parse(b, source.WithoutSecrets())
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			// The router picks one entry per event (an exact event type
			// over a glob): a fixture another entry takes is not this one's.
			rt := router.New()
			if err := Register(rt, sources, reg); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, name := range sources.Names() {
				src, _ := sources.Get(name)
				for pattern, spec := range src.Events {
					h, err := newHandler(src, pattern, spec, reg)
					if err != nil {
						t.Fatalf("%s: %s events[%q]: %v", file, name, pattern, err)
					}
					entryChecked := 0
					for _, v := range h.contract.Versions() {
						if len(v.SourceVersions()) == 0 {
							continue // retired: nothing routes to it (its fixtures upcast in schemas/contracts' tests)
						}
						fixtures, err := fs.Glob(contracts.FS, h.contract.Name()+"/fixtures/"+v.Name()+"/*.json")
						if err != nil || len(fixtures) == 0 {
							t.Fatalf("%s: no fixtures for %s (%v)", h.contract.Name(), v.Name(), err)
						}
						for _, fx := range fixtures {
							payload, err := fs.ReadFile(contracts.FS, fx)
							if err != nil {
								t.Fatal(err)
							}
							et := eventType(pattern, payload)
							if et == "" {
								continue // the payload names an event type this entry does not take
							}
							if _, route, err := rt.Lookup(name, et, sourceVersion(v)); err != nil || route.EventType != pattern {
								continue // routed to another entry (say "invoice.upcoming" before "invoice.*")
							}
							checked++
							entryChecked++
							key := name + " " + fx
							why, ok := notKeyed[key]
							if ok {
								used[key] = true
							}
							checkFixture(t, h, spec, name, pattern, et, sourceVersion(v), fx, why)
						}
					}
					if entryChecked == 0 {
						t.Errorf("%s: %s events[%q]: no fixture of %s is routed to it", file, name, pattern, h.contract.Name())
					}
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no fixture was checked")
	}
	for k := range notKeyed {
		if !used[k] {
			t.Errorf("notKeyed[%q]: no shipped events entry checks that fixture; drop the stale exception", k)
		}
	}
}

// sourcesText reads the sources file in file: the file itself, or, with
// a configMapKey, the text of that key of the ConfigMap's data field.
func sourcesText(file, configMapKey string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil || configMapKey == "" {
		return b, err
	}
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return nil, err
	}
	text, ok := cm.Data[configMapKey]
	if cm.Kind != "ConfigMap" || !ok {
		return nil, fmt.Errorf("not a ConfigMap with data key %q", configMapKey)
	}
	return []byte(text), nil
}

func checkFixture(t *testing.T, h *Handler, spec source.EventSpec, name, pattern, eventType, version, fixture, refusedFor string) {
	t.Helper()
	payload, err := fs.ReadFile(contracts.FS, fixture)
	if err != nil {
		t.Fatal(err)
	}
	occurred := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // the envelope's: must not be what a pointer yields
	env := &envelope.Envelope{
		Source: name, EventType: eventType, EventID: "fixture-delivery-1",
		SchemaVersion: version, Channel: envelope.ChannelWebhook, Payload: payload, OccurredAt: &occurred,
	}
	out, err := h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
	where := name + " events[" + pattern + "] on " + fixture
	if refusedFor != "" {
		if err == nil || !router.IsValidation(err) || !strings.Contains(err.Error(), refusedFor) {
			t.Errorf("%s: %v, want a validation error naming %s", where, err, refusedFor)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if out.EntityKey == "" {
		t.Errorf("%s: empty entity key", where)
	}
	if spec.NaturalKey != "" && out.NaturalKey == "" {
		t.Errorf("%s: empty natural key", where)
	}
	if spec.OccurredAt != "" && out.OccurredAt.Equal(occurred) {
		t.Errorf("%s: occurred_at %s found no time in the payload; newest-wins would compare delivery times", where, spec.OccurredAt)
	}
}

// sourceVersion is a schema version v reads: its first source version, with
// a wildcard filled in.
func sourceVersion(v *contract.Version) string {
	sv := v.SourceVersions()[0]
	if sv == "*" {
		return "v1"
	}
	return strings.Replace(sv, "*", "01", 1)
}

// eventType is a concrete type for an events pattern: the payload's own
// "type" when it has one (Stripe, Standard Webhooks), "" when that type does
// not match the pattern (the entry never sees such a payload), else the
// pattern with its wildcard filled in.
func eventType(pattern string, payload []byte) string {
	if t := gjson.GetBytes(payload, "type").String(); t != "" {
		if router.Match(pattern, t) {
			return t
		}
		return ""
	}
	return strings.Replace(pattern, "*", "fixture", 1)
}

// entryHandler builds the handler of events[pattern] of source name in the
// sources file yml, with the shipped contracts.
func entryHandler(t *testing.T, yml, name, pattern string) *Handler {
	t.Helper()
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	f, err := source.Parse([]byte(yml), source.WithoutSecrets())
	if err != nil {
		t.Fatal(err)
	}
	src, ok := f.Get(name)
	if !ok {
		t.Fatalf("no source %q", name)
	}
	h, err := newHandler(src, pattern, src.Events[pattern], reg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// billingEntry is the shipped billing source (deploy/sources.example.yaml),
// with occurred_at as given.
func billingEntry(occurredAt string) string {
	return "sources:\n  billing:\n    kind: standard-webhooks\n    secrets_env: [X]\n    events:\n      \"*\":\n" +
		"        contract: standardwebhooks/event\n        entity_key: \"billing:{/type}:{/data/id}\"\n        occurred_at: " + occurredAt + "\n"
}

// TestHandleRefusesDuplicateKeyMember: a payload naming the member a key
// template reads twice is invalid. The template reads the first (gjson);
// the processed record's raw data text kept the last, so billing's
// "billing:{/type}:{/data/id}" filed {"id":"inv_A","id":"inv_B"} under
// inv_A with a record saying inv_B: one entity's state overwritten with
// another's.
func TestHandleRefusesDuplicateKeyMember(t *testing.T) {
	h := entryHandler(t, billingEntry("/timestamp"), "billing", "*")
	for name, data := range map[string]string{
		"plain":   `{"id":"inv_A","id":"inv_B"}`,
		"escaped": `{"id":"inv_A","i\u0064":"inv_B"}`,
	} {
		t.Run(name, func(t *testing.T) {
			payload := []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":` + data + `}`)
			env := &envelope.Envelope{Source: "billing", EventType: "invoice.paid", EventID: "msg_1", SchemaVersion: "v1", Channel: envelope.ChannelWebhook, Payload: payload}
			out, err := h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
			var ve *contract.ValidationError
			if !errors.As(err, &ve) || !router.IsValidation(err) {
				t.Fatalf("err %v, output %+v; want a validation error", err, out)
			}
			want := []contract.FieldError{{Path: "/data/id", Expected: `one member "id"`, Actual: "a duplicate member"}}
			if !reflect.DeepEqual(ve.Fields, want) {
				t.Errorf("Fields = %+v, want %+v", ve.Fields, want)
			}
		})
	}
}

// TestHandleBusinessTime: where an events entry configures occurred_at,
// its value is the business time; missing or null, the envelope's time is;
// anything else is invalid, naming the pointer. An unparseable value (and a
// missing one without an envelope time) gave a zero time, which
// newest-wins always applies: an old event overwrote newer state. Zero
// stays only for an events line sent without occurred_at (documented
// optional) to an entry reading /timestamp.
func TestHandleBusinessTime(t *testing.T) {
	issues, err := fs.ReadFile(contracts.FS, "github/issues/fixtures/v1/issues.opened.json")
	if err != nil {
		t.Fatal(err)
	}
	github := entryHandler(t, "sources:\n  github:\n    kind: github\n    secrets_env: [X]\n    events:\n      issues:\n"+
		"        contract: github/issues\n        entity_key: \"github:issue:{/repository/full_name}:{/issue/number}\"\n        occurred_at: /issue/updated_at\n", "github", "issues")
	billing := entryHandler(t, billingEntry("/data/updated_at"), "billing", "*")
	line := entryHandler(t, billingEntry("/timestamp"), "billing", "*")
	envTime := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	billingWith := func(updatedAt string) []byte {
		data := `{"id":"inv_1"}`
		if updatedAt != "" {
			data = `{"id":"inv_1","updated_at":` + updatedAt + `}`
		}
		return []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":` + data + `}`)
	}
	const expected = "an RFC 3339 or Unix time (1971 to 9999)"
	for _, tc := range []struct {
		name    string
		h       *Handler
		channel string
		payload []byte
		envTime *time.Time
		want    time.Time            // with no error
		problem *router.FieldProblem // the error's one field
	}{
		{name: "unparseable", h: github, payload: regexp.MustCompile(`"updated_at": *"[^"]*"`).ReplaceAll(issues, []byte(`"updated_at": "last tuesday"`)),
			problem: &router.FieldProblem{Path: "/issue/updated_at", Expected: expected, Actual: `string "last tuesday"`}},
		{name: "unparseable, envelope time not taken instead", h: billing, payload: billingWith(`"2025-13-01T00:00:00Z"`), envTime: &envTime,
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: `string "2025-13-01T00:00:00Z"`}},
		{name: "empty string", h: billing, payload: billingWith(`""`), envTime: &envTime,
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: `string ""`}},
		{name: "out of range", h: billing, payload: billingWith(`0`),
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: "number 0"}},
		{name: "not a scalar", h: billing, payload: billingWith(`{"at":1735689600}`),
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: "object"}},
		{name: "missing, no envelope time", h: billing, payload: billingWith(""),
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: "missing"}},
		{name: "null, no envelope time", h: billing, payload: billingWith("null"),
			problem: &router.FieldProblem{Path: "/data/updated_at", Expected: expected, Actual: "null"}},
		{name: "Unix seconds", h: billing, payload: billingWith("1735689600"), envTime: &envTime, want: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "missing: the envelope's", h: billing, payload: billingWith(""), envTime: &envTime, want: envTime},
		{name: "null: the envelope's", h: billing, payload: billingWith("null"), envTime: &envTime, want: envTime},
		{name: "events line without occurred_at", h: line, channel: envelope.ChannelEvents, payload: []byte(`{"id":"l1","type":"invoice.paid","data":{"id":"inv_1"}}`)},
		{name: "events line with occurred_at", h: line, channel: envelope.ChannelEvents, payload: []byte(`{"id":"l1","type":"invoice.paid","data":{"id":"inv_1"}}`), envTime: &envTime, want: envTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := tc.channel
			if ch == "" {
				ch = envelope.ChannelWebhook
			}
			et := tc.h.pattern
			if et == "*" {
				et = "invoice.paid"
			}
			env := &envelope.Envelope{Source: tc.h.source, EventType: et, EventID: "d-1", SchemaVersion: "v1", Channel: ch, Payload: tc.payload, ReceivedAt: time.Now(), OccurredAt: tc.envTime}
			out, err := tc.h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
			if tc.problem != nil {
				var ve *router.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err %v (output time %v), want a *router.ValidationError", err, out)
				}
				if len(ve.Fields) != 1 || ve.Fields[0] != *tc.problem {
					t.Errorf("Fields = %+v, want [%+v]", ve.Fields, *tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !out.OccurredAt.Equal(tc.want) {
				t.Errorf("OccurredAt = %v, want %v", out.OccurredAt, tc.want)
			}
		})
	}
}

// TestShippedShopifyTopicsReachTheirContracts: Shopify's example body of
// each orders/* topic, sent as that topic through a shipped sources file,
// is read and keyed by the entry it reaches. "orders/*" alone took
// orders/delete, orders/edited and orders/shopify_protect_eligibility_changed
// too, and shopify/order refused each of them (all to inlet.invalid).
func TestShippedShopifyTopicsReachTheirContracts(t *testing.T) {
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	examples := map[string]string{ // topic → Shopify's example body
		"orders/create": "shopify/order/fixtures/v2/orders.create.2025-01.json",
		"orders/delete": "shopify/order_deleted/fixtures/v1/orders.delete.2025-01.json",
		"orders/edited": "shopify/order_edit/fixtures/v1/orders.edited.2025-01.json",
		"orders/shopify_protect_eligibility_changed": "shopify/order_protect_eligibility/fixtures/v1/orders.shopify_protect_eligibility_changed.2025-01.json",
	}
	for _, shipped := range shippedSources {
		b, err := sourcesText(shipped.file, shipped.configMapKey)
		if err != nil {
			t.Fatalf("%s: %v", shipped.file, err)
		}
		sources, err := source.Parse(b, source.WithoutSecrets())
		if err != nil {
			t.Fatalf("%s: %v", shipped.file, err)
		}
		rt := router.New()
		if err := Register(rt, sources, reg); err != nil {
			t.Fatalf("%s: %v", shipped.file, err)
		}
		src, _ := sources.Get("shop")
		for topic, fx := range examples {
			h, route, err := rt.Lookup("shop", topic, "2025-01")
			if err != nil {
				t.Errorf("%s: %s: %v", shipped.file, topic, err)
				continue
			}
			checkFixture(t, h.(*Handler), src.Events[route.EventType], "shop", route.EventType, topic, "2025-01", fx, "")
		}
	}
}

// TestHandleSaysWhatAKeyFound: a key template value that is there but no
// key part (null, an object, an array, an empty string) is named as it
// is. Every such event said "got missing", so an operator reading
// "/order_id: expected a string or number, got missing" beside a payload
// holding "order_id": null (Shopify's own risk assessment example) looked
// for a field that was there.
func TestHandleSaysWhatAKeyFound(t *testing.T) {
	h := entryHandler(t, billingEntry("/timestamp"), "billing", "*")
	for data, actual := range map[string]string{
		`{"id":null}`:    "null",
		`{"id":{"a":1}}`: "object",
		`{"id":[1]}`:     "array",
		`{"id":""}`:      `string ""`,
		`{}`:             "missing",
	} {
		payload := []byte(`{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":` + data + `}`)
		env := &envelope.Envelope{Source: "billing", EventType: "invoice.paid", EventID: "msg_1", SchemaVersion: "v1", Channel: envelope.ChannelWebhook, Payload: payload}
		_, err := h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
		var ve *router.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: err %v, want a *router.ValidationError", data, err)
		}
		want := []router.FieldProblem{{Path: "/data/id", Expected: "a string or number", Actual: actual}}
		if ve.Reason != "entity_key cannot be built" || !reflect.DeepEqual(ve.Fields, want) {
			t.Errorf("%s: %q %+v, want entity_key cannot be built %+v", data, ve.Reason, ve.Fields, want)
		}
	}
}

// TestHandleRefusesSourceTimeThatIsNoTime: an entry without its own
// occurred_at takes the envelope's time, which ingest reads with the
// source's occurred_at field; a value there that is no time left the
// envelope without one, and the event was processed as one with no
// business time: always applied, over the entity's newer state, where an
// entry's own pointer holding the same value sends it to inlet.invalid.
func TestHandleRefusesSourceTimeThatIsNoTime(t *testing.T) {
	h := entryHandler(t, "sources:\n  billing:\n    kind: hmac\n    secrets_env: [X]\n    hmac: {header: X-Sig}\n    occurred_at: {pointer: /ts}\n    events:\n      \"*\":\n"+
		"        contract: standardwebhooks/event\n        entity_key: \"billing:{/type}:{/data/id}\"\n", "billing", "*")
	shop := entryHandler(t, "sources:\n  shop:\n    kind: shopify\n    secrets_env: [X]\n    events:\n      \"orders/delete\":\n"+
		"        contract: shopify/order_deleted\n        entity_key: \"shopify:order:{/id}\"\n", "shop", "orders/delete")
	body := func(ts string) []byte {
		b := `{"type":"invoice.paid","timestamp":"2025-01-01T00:00:00Z","data":{"id":"inv_1"}`
		if ts != "" {
			b += `,"ts":` + ts
		}
		return []byte(b + "}")
	}
	const expected = "an RFC 3339 or Unix time (1971 to 9999)"
	envTime := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		h       *Handler
		payload []byte
		headers map[string]string
		envTime *time.Time
		want    time.Time
		problem *router.FieldProblem
	}{
		{name: "not a time", h: h, payload: body(`"2025-01-01 10:00:00"`),
			problem: &router.FieldProblem{Path: "/ts", Expected: expected, Actual: `string "2025-01-01 10:00:00"`}},
		{name: "zero", h: h, payload: body(`0`), problem: &router.FieldProblem{Path: "/ts", Expected: expected, Actual: "number 0"}},
		{name: "header not a time", h: shop, payload: []byte(`{"id":1}`), headers: map[string]string{"X-Shopify-Triggered-At": "yesterday"},
			problem: &router.FieldProblem{Path: "/updated_at, header X-Shopify-Triggered-At", Expected: expected, Actual: `string "yesterday"`}},
		{name: "a time: the envelope's", h: h, payload: body(`"2025-03-04T05:06:07Z"`), envTime: &envTime, want: envTime},
		{name: "missing: no time", h: h, payload: body("")},
		{name: "null: no time", h: h, payload: body("null")},
		{name: "header missing: no time", h: shop, payload: []byte(`{"id":1}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &envelope.Envelope{Source: tc.h.source, EventType: "invoice.paid", EventID: "d-1", SchemaVersion: "v1", Channel: envelope.ChannelWebhook,
				Payload: tc.payload, Headers: tc.headers, ReceivedAt: time.Now(), OccurredAt: tc.envTime}
			if tc.h == shop {
				env.EventType, env.SchemaVersion = "orders/delete", "2025-01"
			}
			out, err := tc.h.Handle(context.Background(), &router.Event{Envelope: env, Attempt: 1})
			if tc.problem != nil {
				var ve *router.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err %v (business time %v), want a *router.ValidationError", err, out.OccurredAt)
				}
				if len(ve.Fields) != 1 || ve.Fields[0] != *tc.problem {
					t.Errorf("Fields = %+v, want [%+v]", ve.Fields, *tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !out.OccurredAt.Equal(tc.want) {
				t.Errorf("OccurredAt = %v, want %v", out.OccurredAt, tc.want)
			}
		})
	}
}
