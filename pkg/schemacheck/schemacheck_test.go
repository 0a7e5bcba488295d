package schemacheck

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

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
// enforces BACKWARD compatibility as a real one does: registered, new,
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
	older := withFields(t, order, func(fs []any) []any {
		return append(fs, map[string]any{"name": "legacy_note", "type": "string"})
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
