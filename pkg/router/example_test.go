package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/router"
)

// The processed record a custom handler writes. Registered under
// "<processed topic>-acme.Shipment" and "<state topic>-acme.Shipment" by
// the processor; listed in the handler's Registration.Schemas
// (pkg/handlers) so that `inletctl schemas check` checks it first.
const shipmentSchema = `{"type":"record","name":"Shipment","namespace":"acme","fields":[
  {"name":"shipment_id","type":"string"},
  {"name":"status","type":"string"},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

// shipments is a custom handler: decode → validate → keys. It has no side
// effects; the processor deduplicates, applies newest-wins and writes.
type shipments struct{ schema avro.Schema }

func (h shipments) Handle(_ context.Context, ev *router.Event) (*router.Output, error) {
	var p struct {
		ID     string    `json:"id"`
		Status string    `json:"status"`
		At     time.Time `json:"at"`
	}
	if err := json.Unmarshal(ev.Envelope.Payload, &p); err != nil {
		return nil, &router.ValidationError{Reason: "not JSON"}
	}
	var missing []router.FieldProblem
	if p.ID == "" {
		missing = append(missing, router.FieldProblem{Path: "/id", Expected: "string", Actual: "missing"})
	}
	if p.At.IsZero() {
		missing = append(missing, router.FieldProblem{Path: "/at", Expected: "RFC 3339 time", Actual: "missing"})
	}
	if len(missing) > 0 {
		return nil, &router.ValidationError{Fields: missing} // → the invalid topic
	}
	return &router.Output{
		NaturalKey: p.ID + ":" + p.Status, // the same status change twice is a duplicate
		EntityKey:  "acme:shipment:" + p.ID,
		OccurredAt: p.At, // newest wins per shipment
		Value:      map[string]any{"shipment_id": p.ID, "status": p.Status, "at": p.At},
		Schema:     h.schema,
		SchemaText: shipmentSchema,
	}, nil
}

// Adding a handler for an in-house source: register it for (source, event
// type, version), wrapped in middleware; the processor takes it from there.
func Example_customHandler() {
	r := router.New()
	h := router.Wrap(shipments{schema: avro.MustParse(shipmentSchema)}, router.Recover(), router.Timeout(5*time.Second))
	if err := r.Handle(router.Route{Source: "acme", EventType: "shipment.*", Version: "v1"}, h); err != nil {
		panic(err)
	}

	found, route, _ := r.Lookup("acme", "shipment.delivered", "v1")
	out, err := found.Handle(context.Background(), &router.Event{Envelope: &envelope.Envelope{
		Payload: []byte(`{"id":"s-1","status":"delivered","at":"2025-03-01T10:00:00Z","carrier":"ignored"}`),
	}})
	fmt.Println(route, out.EntityKey, out.NaturalKey, err)

	_, err = found.Handle(context.Background(), &router.Event{Envelope: &envelope.Envelope{Payload: []byte(`{"status":"lost"}`)}})
	fmt.Println(router.IsValidation(err), err)

	_, _, err = r.Lookup("acme", "shipment.delivered", "v2")
	fmt.Println(err)
	// Output:
	// acme/shipment.*@v1 acme:shipment:s-1 s-1:delivered <nil>
	// true validation failed; /id: expected string, got missing; /at: expected RFC 3339 time, got missing
	// no handler for version "v2" of acme/shipment.delivered
}
