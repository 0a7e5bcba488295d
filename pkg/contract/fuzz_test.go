package contract_test

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/contract"
)

// FuzzRead feeds arbitrary payloads to every shipped contract version and to
// the test widget. Invariants:
//
//   - Read never panics;
//   - it returns either a value that encodes with Canonical() and as the data
//     of ProcessedSchema(), or a *ValidationError with at least one field
//     error and at most MaxFieldErrors of them — never another error.
//
// The corpus is seeded with every fixture and with hostile inputs.
func FuzzRead(f *testing.F) {
	versions := fuzzVersions(f)
	contract.SeedCorpus(f, len(versions),
		"", "null", "{}", "[]", `"x"`, "1e999", "{} {}", widgetOK,
		`{"id": 1.0}`, `{"id": -0}`, `{"id": 9223372036854775808}`,
		`{"data": {"object": {"status": "\u0000"}}}`,
		`{"type": "\xff\xfe", "timestamp": "t", "data": {"a": "\ud800"}}`,
		strings.Repeat("[", 70), strings.Repeat(`{"a":`, 70)+"1"+strings.Repeat("}", 70),
		`{"commits": [{"id": "a", "message": "m", "timestamp": "t"}, 3, null]}`,
	)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		v := versions[int(which)%len(versions)]
		got, err := v.Read(payload)
		if err != nil {
			var ve *contract.ValidationError
			if !contract.IsValidation(err) {
				t.Fatalf("%s %s: non-validation error: %v", v.Contract().Name(), v.Name(), err)
			}
			ve = err.(*contract.ValidationError)
			if len(ve.Fields) == 0 || len(ve.Fields) > contract.MaxFieldErrors {
				t.Fatalf("%d field errors", len(ve.Fields))
			}
			return
		}
		c := v.Contract()
		if _, err := avro.Marshal(c.Canonical(), got); err != nil {
			t.Fatalf("%s %s: Read value does not encode with Canonical(): %v\n%#v", c.Name(), v.Name(), err, got)
		}
		rec := map[string]any{
			"event_id": "e", "source": "s", "event_type": "t", "schema_version": "v", "contract_version": v.Name(),
			"entity_key": "k", "occurred_at": nil, "received_at": int64(0), "correlation_id": "c", "data": got,
		}
		if _, err := avro.Marshal(c.ProcessedSchema(), rec); err != nil {
			t.Fatalf("%s %s: does not encode with ProcessedSchema(): %v", c.Name(), v.Name(), err)
		}
	})
}

func fuzzVersions(tb testing.TB) []*contract.Version {
	var out []*contract.Version
	for _, r := range []*contract.Registry{shipped(tb), testRegistry(tb)} {
		for _, c := range r.Contracts() {
			out = append(out, c.Versions()...)
		}
	}
	return out
}
