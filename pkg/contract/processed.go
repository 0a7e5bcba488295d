package contract

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// ProcessedSchema returns the schema of the processed records data teams
// read for this contract: the record inlet.processed.<provider>.<type>
// (characters outside [A-Za-z0-9_] replaced by "_") with the fields
//
//	event_id (the sender's event id), source, event_type, schema_version, contract_version,
//	entity_key       string
//	occurred_at      ["null", long timestamp-millis], default null
//	received_at      long timestamp-millis
//	correlation_id   string
//	data             the Canonical() record
//
// It is built once by Load from the canonical schema, so every call returns
// the same schema. Register its full JSON form (json.Marshal of the schema,
// which keeps docs, defaults and field aliases such as a renamed field's old
// name) rather than String(), which is Avro's Parsing Canonical Form and
// drops them. The same text always yields the same registry ID.
//
// Values for hamba: a *Processed, or a map with the same field names (data
// is Read's result; occurred_at is nil or a time.Time; received_at is a
// time.Time or int64 milliseconds).
func (c *Contract) ProcessedSchema() avro.Schema { return c.processed }

// ProcessedSchemaText is ProcessedSchema's full JSON form: the text to
// register, and the one the processor registers.
func (c *Contract) ProcessedSchemaText() string { return c.processedText }

// Processed is a value of any contract's ProcessedSchema. hamba encodes a
// struct about three times faster than the same map (0.75 µs against 2.1 µs
// per 1 KiB Standard Webhooks event, with half the allocations), and the
// processor encodes one per event. The JSON names match the Avro ones, for
// HTTP sinks that post the processed record as JSON.
type Processed struct {
	EventID         string     `avro:"event_id" json:"event_id"`
	Source          string     `avro:"source" json:"source"`
	EventType       string     `avro:"event_type" json:"event_type"`
	SchemaVersion   string     `avro:"schema_version" json:"schema_version"`
	ContractVersion string     `avro:"contract_version" json:"contract_version"`
	EntityKey       string     `avro:"entity_key" json:"entity_key"`
	OccurredAt      *time.Time `avro:"occurred_at" json:"occurred_at"` // nil: none
	ReceivedAt      time.Time  `avro:"received_at" json:"received_at"`
	CorrelationID   string     `avro:"correlation_id" json:"correlation_id"`
	Data            any        `avro:"data" json:"data"` // Read's result
}

const processedDoc = "A processed Inlet event: the validated payload upcast to the contract's canonical version, with its envelope metadata."

// buildProcessed builds ProcessedSchema from the canonical schema's full JSON.
func buildProcessed(c *Contract) (avro.Schema, error) {
	data, err := json.Marshal(c.canonical.schema)
	if err != nil {
		return nil, err
	}
	str := json.RawMessage(`"string"`)
	ts := json.RawMessage(`{"type":"long","logicalType":"timestamp-millis"}`)
	null := json.RawMessage(`null`)
	fields := []map[string]any{
		{"name": "event_id", "type": str, "doc": "The sender's id for the event (Stripe evt_…, GitHub delivery, Shopify webhook id), or sha256:<body hash> when it sends none."},
		{"name": "source", "type": str, "doc": "Configured source name, e.g. stripe."},
		{"name": "event_type", "type": str, "doc": "Provider event type, e.g. payment_intent.succeeded."},
		{"name": "schema_version", "type": str, "doc": "Envelope schema_version: the provider API version the payload was sent with."},
		{"name": "contract_version", "type": str, "doc": "Contract version that validated the payload before the upcast, e.g. v1."},
		{"name": "entity_key", "type": str, "doc": "Entity the event is about; the Kafka record key."},
		{"name": "occurred_at", "type": json.RawMessage(`["null",` + string(ts) + `]`), "default": null, "doc": "Business time from the payload, if any."},
		{"name": "received_at", "type": ts, "doc": "When ingest received the event."},
		{"name": "correlation_id", "type": str, "doc": "Correlation ID carried from the first byte received."},
		{"name": "data", "type": json.RawMessage(data), "doc": "The payload as the canonical version of contract " + c.name + "."},
	}
	text, err := json.Marshal(map[string]any{
		"type":      "record",
		"name":      sanitizeName(c.typ),
		"namespace": "inlet.processed." + sanitizeName(c.provider),
		"doc":       processedDoc,
		"fields":    fields,
	})
	if err != nil {
		return nil, err
	}
	return avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
}

// sanitizeName makes s a valid Avro name: characters outside [A-Za-z0-9_]
// become "_", and a leading digit gets a "_" before it.
func sanitizeName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
		default:
			r = '_'
		}
		b.WriteRune(r)
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
