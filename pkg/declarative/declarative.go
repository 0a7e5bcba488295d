// Package declarative builds processor handlers from the sources file: for
// each source's `events:` entry, a payload contract (versioned Avro schemas
// in schemas/contracts) validates and upcasts the payload, and key
// templates name the natural key, the entity key and the business time.
// Most integrations need no Go code at all.
package declarative

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/tidwall/gjson"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/sink"
	"github.com/inletdev/inlet/pkg/source"
)

// Register adds a handler to r for every events entry of every source.
// It fails when an entry names a contract that does not exist.
func Register(r *router.Router, sources *source.File, contracts *contract.Registry) error {
	for _, name := range sources.Names() {
		src, _ := sources.Get(name)
		for pattern, spec := range src.Events {
			base, err := newHandler(src, pattern, spec, contracts)
			if err != nil {
				return fmt.Errorf("source %q events[%q]: %w", name, pattern, err)
			}
			var h router.Handler = base
			if spec.Sink != nil {
				if h, err = withSink(base, spec.Sink); err != nil {
					return fmt.Errorf("source %q events[%q]: %w", name, pattern, err)
				}
			}
			// The contract routes versions itself (its manifest lists the
			// source versions each contract version reads), so the route
			// takes every version; an unknown one is ErrNoHandler.
			if err := r.Handle(router.Route{Source: name, EventType: pattern, Version: "*"}, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// Handler is one declarative events entry.
type Handler struct {
	src               *source.Source
	source            string
	pattern           string
	contract          *contract.Contract
	schemaText        string
	entityKey         *source.Template
	naturalKey        *source.Template        // nil: the idempotency key
	occurredAt        *source.CompiledPointer // nil: the envelope's occurred_at
	occurredAtPointer string                  // occurredAt as configured, for errors
}

func newHandler(src *source.Source, pattern string, spec source.EventSpec, contracts *contract.Registry) (*Handler, error) {
	if spec.Contract == "" {
		return nil, fmt.Errorf("no contract named")
	}
	c, ok := contracts.Contract(spec.Contract)
	if !ok {
		return nil, fmt.Errorf("contract %q does not exist (schemas/contracts/%s/manifest.yaml)", spec.Contract, spec.Contract)
	}
	h := &Handler{src: src, source: src.Name, pattern: pattern, contract: c, schemaText: c.ProcessedSchemaText()}
	if spec.OccurredAt != "" {
		p := source.CompilePointer(spec.OccurredAt)
		h.occurredAt, h.occurredAtPointer = &p, spec.OccurredAt
	}
	ek := spec.EntityKey
	if ek == "" {
		ek = source.DefaultEntityKey
	}
	var err error
	if h.entityKey, err = source.ParseTemplate(ek); err != nil {
		return nil, err
	}
	if spec.NaturalKey != "" {
		if h.naturalKey, err = source.ParseTemplate(spec.NaturalKey); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Handle validates the payload against the contract version for the
// envelope's schema version, upcasts it to the canonical version and keys
// it.
func (h *Handler) Handle(_ context.Context, ev *router.Event) (*router.Output, error) {
	env := ev.Envelope
	v, ok := h.contract.VersionFor(env.SchemaVersion)
	if !ok {
		return nil, fmt.Errorf("%w for version %q of %s/%s (contract %s)", router.ErrNoHandler, env.SchemaVersion, env.Source, env.EventType, h.contract.Name())
	}
	payload := env.Payload
	if env.Channel == envelope.ChannelEvents {
		var err error
		if payload, err = normalizeLine(env); err != nil {
			return nil, &router.ValidationError{Reason: err.Error()}
		}
	}
	data, err := v.Read(payload)
	if err != nil {
		return nil, err // a *contract.ValidationError: IsValidation is true
	}
	fields := &source.TemplateFields{Source: env.Source, EventType: env.EventType, EventID: env.EventID, SchemaVersion: env.SchemaVersion}
	entity, err := h.entityKey.Render(payload, fields)
	if err != nil {
		return nil, templateProblem("entity_key", err, payload)
	}
	var natural string
	if h.naturalKey != nil {
		if natural, err = h.naturalKey.Render(payload, fields); err != nil {
			return nil, templateProblem("natural_key", err, payload)
		}
	}
	occurred, err := h.businessTime(payload, env)
	if err != nil {
		return nil, err
	}
	value := &contract.Processed{
		EventID:         env.EventID,
		Source:          env.Source,
		EventType:       env.EventType,
		SchemaVersion:   env.SchemaVersion,
		ContractVersion: v.Name(),
		EntityKey:       entity,
		ReceivedAt:      env.ReceivedAt,
		CorrelationID:   env.CorrelationID,
		Data:            data,
	}
	if !occurred.IsZero() {
		value.OccurredAt = &occurred
	}
	return &router.Output{
		NaturalKey:      natural,
		EntityKey:       entity,
		OccurredAt:      occurred,
		Value:           value,
		Schema:          h.contract.ProcessedSchema(),
		SchemaText:      h.schemaText,
		ContractVersion: h.contract.Name() + "@" + v.Name(),
	}, nil
}

// businessTime is the time newest-wins compares: the payload's time at the
// configured occurred_at pointer, else (the value missing or null) the
// envelope's occurred_at. Zero, which newest-wins always applies, is only
// for an entry without the pointer and an envelope without a time (its
// source's occurred_at field finding no value), and for an events line
// sent without occurred_at to an entry reading /timestamp (the line's
// occurred_at, empty without one: README, "Handlers from the sources
// file"). Any other value that is no time, and a missing or null one with
// no envelope time, is a *router.ValidationError naming the pointer (or
// the source's field): taken as zero, an old event would overwrite newer
// state.
func (h *Handler) businessTime(payload []byte, env *envelope.Envelope) (time.Time, error) {
	if h.occurredAt == nil {
		if env.OccurredAt != nil {
			return *env.OccurredAt, nil
		}
		return h.sourceTime(payload, env)
	}
	if t := h.occurredAt.PeekTime(payload); t != nil {
		return *t, nil
	}
	if env.OccurredAt == nil && env.Channel == envelope.ChannelEvents && h.occurredAtPointer == "/timestamp" {
		return time.Time{}, nil // normalizeLine's "": the line has no occurred_at
	}
	v := h.occurredAt.Get(payload)
	if !v.Exists() || v.Type == gjson.Null {
		if env.OccurredAt != nil {
			return *env.OccurredAt, nil
		}
	}
	return time.Time{}, &router.ValidationError{
		Reason: "occurred_at has no time",
		Fields: []router.FieldProblem{{Path: h.occurredAtPointer, Expected: "an RFC 3339 or Unix time (1971 to 9999)", Actual: describe(v)}},
	}
}

// sourceTime is the business time of a webhook whose envelope has none,
// for an entry without its own pointer: ingest reads the time with the
// source's occurred_at field and leaves a value that is no time out (it
// never refuses an event for its time), and an event without a time
// always applies, so a sender's "2025-01-01 10:00:00" or 0 there put an
// older state over a newer one where the entry's own pointer would have
// sent the event to inlet.invalid. The field is read again (the body, and
// the headers the envelope kept): a value that is no time is a
// *router.ValidationError; none (missing or null) is no time.
func (h *Handler) sourceTime(payload []byte, env *envelope.Envelope) (time.Time, error) {
	if h.src == nil || env.Channel == envelope.ChannelEvents {
		return time.Time{}, nil // a line's occurred_at is its own, read by ingest
	}
	var hdr http.Header
	if len(env.Headers) > 0 {
		hdr = make(http.Header, len(env.Headers))
		for k, v := range env.Headers {
			hdr.Set(k, v)
		}
	}
	v, where := h.src.OccurredAtValue(hdr, payload)
	if !v.Exists() || v.Type == gjson.Null {
		return time.Time{}, nil
	}
	if t := source.ParseTime(v); t != nil {
		return *t, nil // an envelope written by an ingest that could not read it
	}
	return time.Time{}, &router.ValidationError{
		Reason: "occurred_at has no time",
		Fields: []router.FieldProblem{{Path: where, Expected: "an RFC 3339 or Unix time (1971 to 9999)", Actual: describe(v)}},
	}
}

// describe says what a JSON value is for a FieldProblem's Actual, as the
// contract's errors do: "missing", "null", a kind and its value (cut to
// 40 bytes).
func describe(v gjson.Result) string {
	switch {
	case !v.Exists():
		return "missing"
	case v.Type == gjson.Null:
		return "null"
	case v.Type == gjson.String:
		return "string " + strconv.Quote(cut(v.Str))
	case v.Type == gjson.Number:
		return "number " + cut(v.Raw)
	case v.IsObject():
		return "object"
	case v.IsArray():
		return "array"
	}
	return "boolean " + v.Raw
}

// cut shortens s to 40 bytes, not splitting a UTF-8 sequence.
func cut(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// templateProblem is the validation error for a key that payload cannot
// fill, saying what the value is: "missing" beside a payload holding
// null, an object or "" sent operators looking for a field that is there.
func templateProblem(which string, err error, payload []byte) error {
	path, actual := "", "missing"
	if te, ok := err.(*source.TemplateError); ok {
		path = te.Pointer
		switch {
		case te.Err != nil:
			actual = te.Err.Error()
		case strings.HasPrefix(path, "/"):
			actual = describe(source.Pointer(payload, path))
		}
	}
	return &router.ValidationError{
		Reason: which + " cannot be built",
		Fields: []router.FieldProblem{{Path: path, Expected: "a string or number", Actual: actual}},
	}
}

// normalizeLine turns an events-endpoint line ({"id","type","occurred_at",
// "data"}) into the Standard Webhooks shape ({"type","timestamp","data"}),
// so one contract and one set of key templates serve both channels and the
// same business event sent both ways has the same natural key.
func normalizeLine(env *envelope.Envelope) ([]byte, error) {
	var line struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(env.Payload, &line); err != nil {
		return nil, fmt.Errorf("events line is not a JSON object")
	}
	ts := ""
	if env.OccurredAt != nil {
		ts = env.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(map[string]any{"id": line.ID, "type": line.Type, "timestamp": ts, "data": line.Data})
}

// Schema returns the processed schema of the handler's contract.
func (h *Handler) Schema() avro.Schema { return h.contract.ProcessedSchema() }

// sinkHandler is a declarative handler that also delivers each processed
// event to an HTTP sink.
type sinkHandler struct {
	*Handler
	sink *sink.HTTP
}

func withSink(h *Handler, spec *source.SinkSpec) (*sinkHandler, error) {
	hdrs, err := spec.Headers()
	if err != nil {
		return nil, err
	}
	s, err := sink.NewHTTP(sink.HTTPConfig{URL: spec.URL, Method: spec.Method, Headers: hdrs, Timeout: spec.Timeout.D(), RetryableStatus: spec.RetryableStatus})
	if err != nil {
		return nil, err
	}
	return &sinkHandler{Handler: h, sink: s}, nil
}

// Deliver posts the processed record as plain JSON (contract.Plain: no Avro
// union wrappers, raw fields as the JSON they hold), keyed for the
// downstream's own deduplication by the event's idempotency key.
func (h *sinkHandler) Deliver(ctx context.Context, ev *router.Event, out *router.Output) error {
	rec := *out.Value.(*contract.Processed) // Handle's
	rec.Data = contract.Plain(h.contract.Canonical(), rec.Data)
	body, err := json.Marshal(&rec)
	if err != nil {
		return retry.Permanent(fmt.Errorf("encode sink body: %w", err))
	}
	return h.sink.Send(ctx, body, "application/json", ev.Envelope.IdempotencyKey, ev.Envelope.CorrelationID)
}
