package declarative

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
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
			for _, name := range sources.Names() {
				src, _ := sources.Get(name)
				for pattern, spec := range src.Events {
					h, err := newHandler(src, pattern, spec, reg)
					if err != nil {
						t.Fatalf("%s: %s events[%q]: %v", file, name, pattern, err)
					}
					for _, v := range h.contract.Versions() {
						fixtures, err := fs.Glob(contracts.FS, h.contract.Name()+"/fixtures/"+v.Name()+"/*.json")
						if err != nil || len(fixtures) == 0 {
							t.Fatalf("%s: no fixtures for %s (%v)", h.contract.Name(), v.Name(), err)
						}
						for _, fx := range fixtures {
							checked++
							key := name + " " + fx
							why, ok := notKeyed[key]
							if ok {
								used[key] = true
							}
							checkFixture(t, h, spec, name, pattern, sourceVersion(v), fx, why)
						}
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

func checkFixture(t *testing.T, h *Handler, spec source.EventSpec, name, pattern, version, fixture, refusedFor string) {
	t.Helper()
	payload, err := fs.ReadFile(contracts.FS, fixture)
	if err != nil {
		t.Fatal(err)
	}
	occurred := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // the envelope's: must not be what a pointer yields
	env := &envelope.Envelope{
		Source: name, EventType: eventType(pattern, payload), EventID: "fixture-delivery-1",
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
// "type" when it matches (Stripe, Standard Webhooks), else the pattern with
// its wildcard filled in.
func eventType(pattern string, payload []byte) string {
	if t := gjson.GetBytes(payload, "type").String(); t != "" {
		if ok, _ := path.Match(pattern, t); ok {
			return t
		}
	}
	return strings.Replace(pattern, "*", "fixture", 1)
}
