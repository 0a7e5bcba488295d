package contract_test

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/schemas/contracts"
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

// releasedWrapper is test/thing's processed record as released: the fields
// around data that every processed subject in production already holds.
const releasedWrapper = `{"name":"inlet.processed.test.thing","type":"record","fields":[
  {"name":"event_id","type":"string"},{"name":"source","type":"string"},{"name":"event_type","type":"string"},
  {"name":"schema_version","type":"string"},{"name":"contract_version","type":"string"},{"name":"entity_key","type":"string"},
  {"name":"occurred_at","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null},
  {"name":"received_at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"correlation_id","type":"string"},
  {"name":"data","type":{"name":"t.R","type":"record","fields":[{"name":"id","type":"long"}]}}]}`

// TestProcessedWrapperStaysBackward guards the wrapper fields: a change the
// registries' BACKWARD check refuses (a new field without a default, a
// retyped one) would send every processed event to the DLQ after a deploy.
func TestProcessedWrapperStaysBackward(t *testing.T) {
	r, err := contract.Load(mapFS(map[string]string{
		"test/thing/manifest.yaml": "name: test/thing\ncanonical: v1\nversions:\n  - name: v1\n    source_versions: [\"1\"]\n",
		"test/thing/v1.avsc":       recV1,
	}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.Contract("test/thing")
	released, err := avro.ParseWithCache(releasedWrapper, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	if err := avro.NewSchemaCompatibility().Compatible(c.ProcessedSchema(), released); err != nil {
		t.Fatalf("the processed record (ProcessedSchema) cannot read records written with the released one: "+
			"every processed and state subject would refuse it (409) and every event would go to the DLQ; "+
			"give a new field a default and never retype one: %v", err)
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
		if f.Name == "financial_status" {
			if !reflect.DeepEqual(f.Aliases, []string{"payment_status"}) {
				t.Errorf("aliases = %v", f.Aliases)
			}
			return
		}
	}
	t.Errorf("no financial_status in %s", text)
}

// TestProcessedStructEncodesLikeMap: the struct the declarative handler
// encodes gives the same record as the map form, with and without a business
// time, for every shipped contract (each has its own data record).
func TestProcessedStructEncodesLikeMap(t *testing.T) {
	r := shipped(t)
	received := time.UnixMilli(1719411024123).UTC()
	occurred := time.UnixMilli(1719411000000).UTC()
	for _, c := range r.Contracts() {
		name := c.Name()
		data := fixtureData(t, c)
		for _, occ := range []*time.Time{nil, &occurred} {
			st := &contract.Processed{EventID: "evt_1", Source: "src", EventType: "thing.happened", SchemaVersion: "v1",
				ContractVersion: "v1", EntityKey: "thing:1", OccurredAt: occ, ReceivedAt: received, CorrelationID: "corr", Data: data}
			m := map[string]any{"event_id": "evt_1", "source": "src", "event_type": "thing.happened", "schema_version": "v1",
				"contract_version": "v1", "entity_key": "thing:1", "occurred_at": nil, "received_at": received, "correlation_id": "corr", "data": data}
			if occ != nil {
				m["occurred_at"] = *occ
			}
			fromStruct, err := avro.Marshal(c.ProcessedSchema(), st)
			if err != nil {
				t.Fatalf("%s: struct: %v", name, err)
			}
			fromMap, err := avro.Marshal(c.ProcessedSchema(), m)
			if err != nil {
				t.Fatalf("%s: map: %v", name, err)
			}
			// Compared decoded: Avro maps in data encode in Go's random
			// map order, so equal values need not give equal bytes.
			var a, b map[string]any
			if err := avro.Unmarshal(c.ProcessedSchema(), fromStruct, &a); err != nil {
				t.Fatalf("%s: decode struct form: %v", name, err)
			}
			if err := avro.Unmarshal(c.ProcessedSchema(), fromMap, &b); err != nil {
				t.Fatalf("%s: decode map form: %v", name, err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s (occurred_at %v): struct form decodes to\n%v\nmap form to\n%v", name, occ, a, b)
			}
		}
	}
}

// fixtureData is Read's result for the first fixture of c's first version.
func fixtureData(t *testing.T, c *contract.Contract) any {
	t.Helper()
	v := c.Versions()[0]
	files, err := fs.Glob(contracts.FS, c.Name()+"/fixtures/"+v.Name()+"/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no fixtures for %s (%v)", c.Name(), v.Name(), err)
	}
	payload, err := fs.ReadFile(contracts.FS, files[0])
	if err != nil {
		t.Fatal(err)
	}
	data, err := v.Read(payload)
	if err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return data
}
