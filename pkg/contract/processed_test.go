package contract_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/contract"
)

func TestProcessedSchema(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"my-co/order-v2/manifest.yaml": "name: my-co/order-v2\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"v1\"]\n",
		"my-co/order-v2/v1.avsc":       recV1,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("my-co/order-v2")
	s, ok := c.ProcessedSchema().(*avro.RecordSchema)
	if !ok {
		t.Fatalf("ProcessedSchema is %T", c.ProcessedSchema())
	}
	if s.FullName() != "inlet.processed.my_co.order_v2" {
		t.Errorf("name = %s", s.FullName())
	}
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name())
	}
	want := []string{"event_id", "source", "event_type", "schema_version", "contract_version", "entity_key", "occurred_at", "received_at", "correlation_id", "data"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("fields = %v, want %v", names, want)
	}
	data := s.Fields()[len(s.Fields())-1].Type()
	if data.Fingerprint() != c.Canonical().Fingerprint() {
		t.Error("data is not the canonical record")
	}
	if c.ProcessedSchema() != c.ProcessedSchema() {
		t.Error("ProcessedSchema is rebuilt per call")
	}

	v, _ := c.VersionFor("v1")
	got, err := v.Read([]byte(`{"id": 42}`))
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{
		"event_id": "e", "source": "my-co", "event_type": "order.created", "schema_version": "v1",
		"contract_version": "v1", "entity_key": "order:42", "correlation_id": "c",
		"occurred_at": nil, "received_at": int64(1719411024123), "data": got,
	}
	b, err := avro.Marshal(s, rec)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var back map[string]any
	if err := avro.Unmarshal(s, b, &back); err != nil {
		t.Fatal(err)
	}
	if back["occurred_at"] != nil || !back["received_at"].(time.Time).Equal(time.UnixMilli(1719411024123)) {
		t.Errorf("times = %v, %v", back["occurred_at"], back["received_at"])
	}
	if !reflect.DeepEqual(back["data"], map[string]any{"id": int64(42)}) {
		t.Errorf("data = %#v", back["data"])
	}

	// The full JSON form keeps docs and defaults; it re-parses to the same schema.
	text, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if again.Fingerprint() != s.Fingerprint() {
		t.Error("re-parsed schema differs")
	}
}

// TestProcessedSchemaKeepsAliases: the renamed field's alias reaches data
// teams through the processed schema's JSON, so their readers can resolve
// records written before the rename.
func TestProcessedSchemaKeepsAliases(t *testing.T) {
	c, _ := shipped(t).Contract("shopify/order")
	text, err := json.Marshal(c.ProcessedSchema())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	var data struct {
		Fields []struct {
			Name    string   `json:"name"`
			Aliases []string `json:"aliases"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(doc.Fields[len(doc.Fields)-1].Type, &data); err != nil {
		t.Fatal(err)
	}
	for _, f := range data.Fields {
		if f.Name == "payment_status" {
			if !reflect.DeepEqual(f.Aliases, []string{"financial_status"}) {
				t.Errorf("aliases = %v", f.Aliases)
			}
			return
		}
	}
	t.Errorf("no payment_status in %s", text)
}
