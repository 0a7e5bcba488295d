package schemacheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/schemas/contracts"
)

func shipped(t *testing.T) *contract.Registry {
	t.Helper()
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func mustContract(t *testing.T, reg *contract.Registry, name string) *contract.Contract {
	t.Helper()
	c, ok := reg.Contract(name)
	if !ok {
		t.Fatalf("no contract %s", name)
	}
	return c
}

// withFields returns c's processed schema text with its fields replaced by
// edit's result: an earlier version of the subject, as a test writes it.
func withFields(t *testing.T, c *contract.Contract, edit func([]any) []any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(c.ProcessedSchemaText()), &m); err != nil {
		t.Fatal(err)
	}
	m["fields"] = edit(m["fields"].([]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func byName(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

// The check tells each subject's fate on the embedded registry, which
// enforces the subject's level as a real one does: registered, new,
// compatible (registers a new version) or incompatible (refused), and a
// warning for a level new contract versions may not pass.
func TestCheck(t *testing.T) {
	env := testenv.Embedded(t)
	topics := env.Topics(kafka.DefaultRetryTiers)
	reg := shipped(t)
	pi, order, sw := mustContract(t, reg, "stripe/payment_intent"), mustContract(t, reg, "shopify/order"), mustContract(t, reg, "standardwebhooks/event")
	subjects, err := Subjects(topics, []*contract.Contract{pi, order, sw})
	if err != nil {
		t.Fatal(err)
	}
	if len(subjects) != 7 || subjects[0].Name != topics.RawSubject() ||
		subjects[1].Name != topics.ProcessedSubject("inlet.processed.stripe.payment_intent") ||
		subjects[2].Name != topics.StateSubject("inlet.processed.stripe.payment_intent") || subjects[2].Text != subjects[1].Text {
		t.Fatalf("subjects %+v: want the raw subject and, per contract, its processed and state subjects", subjects)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := env.Registry(t).SR()

	for _, r := range Check(ctx, cl, subjects) {
		if r.Status != New || r.Problem() {
			t.Errorf("empty registry: %s is %s (%v), want new", r.Name, r.Status, r.Messages)
		}
	}

	// The envelope as ingest registers it; stripe's processed schema as
	// the processor does; shopify's subject holding an earlier version the
	// current one reads (it had one more field); the Standard Webhooks
	// subject holding one it cannot read (no field of it has a default).
	codec, err := envelope.NewCodec(ctx, env.Registry(t), topics.RawSubject())
	if err != nil {
		t.Fatal(err)
	}
	piSubject, piState, orderSubject, swSubject := subjects[1].Name, subjects[2].Name, subjects[3].Name, subjects[5].Name
	rc := registry.New(cl)
	piID, _, err := rc.Register(ctx, piSubject, pi.ProcessedSchemaText())
	if err != nil {
		t.Fatal(err)
	}
	// Its default lets the older schema read what the current one
	// writes too: at FULL (set below) it is compatible, with a warning.
	older := withFields(t, order, func(fs []any) []any {
		return append(fs, map[string]any{"name": "legacy_note", "type": "string", "default": ""})
	})
	if _, _, err := rc.Register(ctx, orderSubject, older); err != nil {
		t.Fatal(err)
	}
	unreadable := withFields(t, sw, func([]any) []any {
		return []any{map[string]any{"name": "only", "type": "string"}}
	})
	if _, _, err := rc.Register(ctx, swSubject, unreadable); err != nil {
		t.Fatal(err)
	}
	// shopify's state subject holding an earlier version whose received_at
	// was in microseconds: the same fields, each time read 1000 times off.
	orderState := subjects[4].Name
	inMicros := withFields(t, order, func(fs []any) []any {
		for _, f := range fs {
			if f := f.(map[string]any); f["name"] == "received_at" {
				f["type"] = map[string]any{"type": "long", "logicalType": "timestamp-micros"}
			}
		}
		return fs
	})
	if _, _, err := rc.Register(ctx, orderState, inMicros); err != nil {
		t.Fatal(err)
	}
	if res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, orderSubject); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}

	got := byName(Check(ctx, cl, subjects))
	if r := got[topics.RawSubject()]; r.Status != Registered || r.ID != codec.SchemaID() || r.Version != 1 || r.Problem() {
		t.Errorf("envelope: %+v, want registered as id %d, version 1", r, codec.SchemaID())
	}
	if r := got[piSubject]; r.Status != Registered || r.ID != piID || r.Warning != "" {
		t.Errorf("payment_intent: %+v, want registered as id %d, no warning", r, piID)
	}
	if r := got[piState]; r.Status != New {
		t.Errorf("payment_intent's state subject: %+v, want new (only the processed one was registered)", r)
	}
	if r := got[orderSubject]; r.Status != Compatible || r.Latest != 1 || r.Problem() {
		t.Errorf("order: %+v, want compatible with version 1", r)
	} else if r.Level != "FULL" || !strings.Contains(r.Warning, "FULL") {
		t.Errorf("order at level FULL: level %q, warning %q; want a warning naming it", r.Level, r.Warning)
	}
	if r := got[orderState]; r.Status != Incompatible || !r.Problem() || !strings.Contains(strings.Join(r.Messages, " "), "/received_at: logical type timestamp-micros in the previous schema, timestamp-millis in the new one") {
		t.Errorf("order's state subject: %+v, want incompatible naming received_at's logical types", r)
	}
	if r := got[swSubject]; r.Status != Incompatible || r.Latest != 1 || !r.Problem() || len(r.Messages) == 0 {
		t.Errorf("standardwebhooks: %+v, want incompatible with version 1, with the registry's reasons", r)
	}

	// The check registered nothing.
	if vs, err := cl.SubjectVersions(ctx, orderSubject); err != nil || !slices.Equal(vs, []int{1}) {
		t.Errorf("order subject versions after the check: %v, %v; want [1]", vs, err)
	}
}

// A registry that does not answer makes every subject unknown, a problem
// with the reason, not a pass.
func TestCheckRegistryDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cl, err := sr.NewClient(sr.URLs("http://" + addr))
	if err != nil {
		t.Fatal(err)
	}
	subjects, err := Subjects(kafka.TopicNames("inlet", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range Check(ctx, cl, subjects) {
		if r.Status != Unknown || !r.Problem() || len(r.Messages) == 0 || !strings.Contains(r.Messages[0], "lookup") {
			t.Errorf("%s: %+v, want unknown with the lookup's error", r.Name, r)
		}
	}
}

// TestCheckRefusalQuotesNoCredential: a registry (or a proxy in front of
// it) refusing the credential and quoting it in its answer put the token
// in inletctl schemas check's output: an unknown subject's message was
// the client's error, whose text is the answer. Refused at the lookup, or
// at a later call once the lookup said the schema is new.
func TestCheckRefusalQuotesNoCredential(t *testing.T) {
	const token = "CANARY-srtoken-7f3a"
	subjects, err := Subjects(kafka.TopicNames("inlet", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, lookupFinds := range map[string]bool{"lookup refused": false, "later call refused": true} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if lookupFinds && r.Method == http.MethodPost && !strings.Contains(r.URL.Path, "/versions") {
					w.WriteHeader(http.StatusNotFound)
					_, _ = w.Write([]byte(`{"error_code":40403,"message":"Schema not found"}`))
					return
				}
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error_code":401,"message":"invalid credentials: ` + r.Header.Get("Authorization") + `"}`))
			}))
			defer srv.Close()
			cl, err := sr.NewClient(sr.URLs(srv.URL), sr.BearerToken(token))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, r := range Check(ctx, cl, subjects) {
				msg := strings.Join(r.Messages, "; ")
				if r.Status != Unknown || strings.Contains(msg, token) || !strings.Contains(msg, "HTTP 401") {
					t.Errorf("%s: %s %q, want unknown with the refusal's status and not the registry's answer", r.Name, r.Status, msg)
				}
			}
		})
	}
}

// confluentLike serves srfake holding versions (1, 2, …) of subject, and
// answers compatibility checks as Confluent's registry does at level:
// with Avro's checker, which ignores logical types (as hamba's does),
// against the version asked for, or, asked without one, against the
// versions level names, every one for a _TRANSITIVE level.
func confluentLike(t *testing.T, level sr.CompatibilityLevel, subject string, versions ...string) *sr.Client {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	for i, v := range versions {
		reg.SeedSchema(subject, i+1, i+1, sr.Schema{Schema: v, Type: sr.TypeAvro})
	}
	if err := reg.SetCompat(subject, level); err != nil {
		t.Fatal(err)
	}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		rest, ok := strings.CutPrefix(r.URL.Path, "/compatibility/subjects/"+subject+"/versions")
		if !ok || r.Method != http.MethodPost {
			return false
		}
		var body struct{ Schema string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Error(err)
		}
		against := versions[len(versions)-1:]
		if rest == "" && strings.HasSuffix(level.String(), "_TRANSITIVE") {
			against = versions
		}
		var msgs []string
		next := parse(t, body.Schema)
		for _, v := range against {
			prev := parse(t, v)
			if l := level.String(); strings.HasPrefix(l, "BACKWARD") || strings.HasPrefix(l, "FULL") {
				if err := avro.NewSchemaCompatibility().Compatible(next, prev); err != nil {
					msgs = append(msgs, err.Error())
				}
			}
			if l := level.String(); strings.HasPrefix(l, "FORWARD") || strings.HasPrefix(l, "FULL") {
				if err := avro.NewSchemaCompatibility().Compatible(prev, next); err != nil {
					msgs = append(msgs, err.Error())
				}
			}
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"is_compatible": len(msgs) == 0, "messages": msgs})
		return true
	})
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func parse(t *testing.T, s string) avro.Schema {
	t.Helper()
	sc, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func record(fields string) string {
	return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
}

// A change of logical type passes Confluent's check (Avro's ignores
// logical types), and the check called it compatible: deployed, every
// stored time reads 1000 times off.
func TestCheckLogicalTypeChange(t *testing.T) {
	const subject = "s-value"
	millis := record(`{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}`)
	micros := record(`{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, level := range []sr.CompatibilityLevel{sr.CompatBackward, sr.CompatFull, sr.CompatForwardTransitive} {
		t.Run(level.String(), func(t *testing.T) {
			cl := confluentLike(t, level, subject, millis)
			r := Check(ctx, cl, []Subject{{Name: subject, Text: micros}})[0]
			if r.Status != Incompatible || !r.Problem() || len(r.Messages) != 1 ||
				!strings.Contains(r.Messages[0], "/at") || !strings.Contains(r.Messages[0], "timestamp-millis") || !strings.Contains(r.Messages[0], "timestamp-micros") {
				t.Errorf("%+v, want incompatible naming the field and both logical types", r)
			}
		})
	}
	t.Run("NONE", func(t *testing.T) {
		cl := confluentLike(t, sr.CompatNone, subject, millis)
		if r := Check(ctx, cl, []Subject{{Name: subject, Text: micros}})[0]; r.Status != Compatible {
			t.Errorf("%+v, want compatible: level NONE allows anything", r)
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		cl := confluentLike(t, sr.CompatBackward, subject, millis)
		next := record(`{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"n","type":"int","default":0}`)
		if r := Check(ctx, cl, []Subject{{Name: subject, Text: next}})[0]; r.Status != Compatible {
			t.Errorf("%+v, want compatible", r)
		}
	})
	// Under a _TRANSITIVE level every version's data must read right.
	t.Run("transitive, an earlier version", func(t *testing.T) {
		v2 := record(`{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}}`)
		cl := confluentLike(t, sr.CompatNone, subject, millis, v2)
		if err := setLevel(ctx, cl, subject, sr.CompatBackwardTransitive); err != nil {
			t.Fatal(err)
		}
		next := record(`{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},{"name":"n","type":"int","default":0}`)
		if r := Check(ctx, cl, []Subject{{Name: subject, Text: next}})[0]; r.Status != Incompatible || !strings.Contains(fmt.Sprint(r.Messages), "timestamp-millis") {
			t.Errorf("%+v, want incompatible with version 1", r)
		}
	})
}

func setLevel(ctx context.Context, cl *sr.Client, subject string, l sr.CompatibilityLevel) error {
	return cl.SetCompatibility(ctx, sr.SetCompatibility{Level: l}, subject)[0].Err
}

// At a _TRANSITIVE level, registering checks the schema against every
// version; the check asked about the latest only, and called compatible
// a schema the registry then refuses (ingest answering 503 until fixed).
func TestCheckTransitiveLevel(t *testing.T) {
	const subject = "s-value"
	v1 := record(`{"name":"a","type":"int"}`)
	v2 := record(`{"name":"a","type":"int"},{"name":"b","type":"string","default":""}`)
	next := record(`{"name":"a","type":"int"},{"name":"b","type":"string"}`) // reads v2's data, not v1's
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := confluentLike(t, sr.CompatBackwardTransitive, subject, v1, v2)
	r := Check(ctx, cl, []Subject{{Name: subject, Text: next}})[0]
	if r.Status != Incompatible || !r.Problem() || r.Latest != 2 || len(r.Messages) == 0 {
		t.Errorf("%+v, want incompatible (version 1's data lacks b)", r)
	}
	cl = confluentLike(t, sr.CompatBackward, subject, v1, v2)
	if r := Check(ctx, cl, []Subject{{Name: subject, Text: next}})[0]; r.Status != Compatible {
		t.Errorf("BACKWARD: %+v, want compatible (it reads the latest version's data)", r)
	}
}

func TestUsed(t *testing.T) {
	t.Setenv("T_SECRET", "s")
	f, err := source.Parse([]byte(`
sources:
  a:
    kind: stripe
    secrets_env: [T_SECRET]
    events:
      "payment_intent.*": {contract: stripe/payment_intent}
      "invoice.*": {contract: stripe/invoice}
  b:
    kind: stripe
    secrets_env: [T_SECRET]
    events:
      "payment_intent.*": {contract: stripe/payment_intent}
      "charge.*": {contract: stripe/charge}
      "refund.*": {contract: stripe/charge}
`))
	if err != nil {
		t.Fatal(err)
	}
	used, missing := Used(f, shipped(t))
	var names []string
	for _, c := range used {
		names = append(names, c.Name())
	}
	if !slices.Equal(names, []string{"stripe/invoice", "stripe/payment_intent"}) {
		t.Errorf("used %v, want each contract once, sorted", names)
	}
	if !slices.Equal(missing, []string{"stripe/charge"}) {
		t.Errorf("missing %v, want [stripe/charge] once", missing)
	}
}

// Fixtures reads the shipped ones cleanly, and reports a fixture that
// breaks its contract and a version without any.
func TestFixtures(t *testing.T) {
	reg := shipped(t)
	n, problems := Fixtures(contracts.FS, reg)
	if n == 0 || len(problems) != 0 {
		t.Fatalf("shipped fixtures: %d read, problems %v; want all read", n, problems)
	}

	fsys := fstest.MapFS{}
	var brokenFile string
	for _, c := range reg.Contracts() {
		if c.Name() != "stripe/payment_intent" {
			continue
		}
		for i, v := range c.Versions() {
			if i > 0 {
				break // the others have none
			}
			brokenFile = c.Name() + "/fixtures/" + v.Name() + "/broken.json"
			fsys[brokenFile] = &fstest.MapFile{Data: []byte(`{"id": 42}`)}
		}
	}
	_, problems = Fixtures(fsys, reg)
	joined := strings.Join(problems, "\n")
	if !strings.Contains(joined, brokenFile+": ") {
		t.Errorf("problems:\n%s\nwant one for %s", joined, brokenFile)
	}
	if !strings.Contains(joined, "github/push") || !strings.Contains(joined, "no fixtures") {
		t.Errorf("problems:\n%s\nwant versions without fixtures reported", joined)
	}
}

func TestHandlerSubjects(t *testing.T) {
	topics := kafka.TopicNames("inlet", nil)
	v1 := `{"type":"record","name":"Shipment","namespace":"acme","fields":[{"name":"id","type":"string"}]}`
	v2 := `{"type":"record","name":"Shipment","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"carrier","type":["null","string"],"default":null}]}`
	t.Run("processed and state subjects, or the handler's own", func(t *testing.T) {
		subjects, problems := HandlerSubjects(topics, []HandlerSchema{
			{Route: "acme/shipment.*@v1", Text: v1},
			{Route: "acme/parcel.*@v1", Text: v1, Subject: "parcels-value"},
		})
		var names []string
		for _, s := range subjects {
			names = append(names, s.Name+" "+s.Schema)
		}
		want := []string{"inlet.processed-acme.Shipment go handler acme/shipment.*@v1", "inlet.state-acme.Shipment go handler acme/shipment.*@v1", "parcels-value go handler acme/parcel.*@v1"}
		if !slices.Equal(names, want) || len(problems) != 0 {
			t.Errorf("subjects %q, problems %q; want %q", names, problems, want)
		}
	})
	t.Run("two versions' handlers writing different schemas", func(t *testing.T) {
		// DESIGN: an older version is upcast to the canonical schema.
		_, problems := HandlerSubjects(topics, []HandlerSchema{
			{Route: "acme/shipment.*@v1", Text: v1},
			{Route: "acme/shipment.*@v2", Text: v2},
		})
		if len(problems) != 2 || !strings.Contains(problems[0], "inlet.processed-acme.Shipment: go handlers acme/shipment.*@v1 and acme/shipment.*@v2 write different schemas") {
			t.Errorf("problems %q", problems)
		}
	})
	t.Run("a schema that is no named record", func(t *testing.T) {
		_, problems := HandlerSubjects(topics, []HandlerSchema{{Route: "acme/x@v1", Text: `"string"`}, {Route: "acme/y@v1", Text: `{`}})
		if len(problems) != 2 || !strings.Contains(problems[0], "not a named record") {
			t.Errorf("problems %q", problems)
		}
	})
}
