// Package envelope defines the record Inlet writes to the raw topic for every
// delivery, and its codec in the Confluent wire format.
package envelope

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/schemas"
)

// Channels an envelope can arrive on.
const (
	ChannelWebhook = "webhook"
	ChannelEvents  = "events"
)

// Envelope is one delivery exactly as received. Field meanings are documented
// in schemas/envelope/*.avsc.
type Envelope struct {
	ID             string            `avro:"id"`
	Source         string            `avro:"source"`
	EventType      string            `avro:"event_type"`
	EventID        string            `avro:"event_id"`
	IdempotencyKey string            `avro:"idempotency_key"`
	SchemaVersion  string            `avro:"schema_version"`
	ReceivedAt     time.Time         `avro:"received_at"`
	OccurredAt     *time.Time        `avro:"occurred_at"`
	CorrelationID  string            `avro:"correlation_id"`
	Channel        string            `avro:"channel"`
	Headers        map[string]string `avro:"headers"`
	Payload        []byte            `avro:"payload"`
	ContentType    string            `avro:"content_type"`
}

// IdempotencyKey builds the raw topic key for a source's event id.
func IdempotencyKey(source, eventID string) string { return source + ":" + eventID }

// Version is one published envelope schema.
type Version struct {
	N      int
	Text   string // as published; register this, not Schema.String()
	Schema avro.Schema
}

// Versions parses every schemas/envelope/v<N>.avsc, oldest first. Each is
// parsed with its own cache because they share a full name.
func Versions() ([]Version, error) { return versionsFrom(schemas.Envelope, "envelope") }

func versionsFrom(fsys fs.FS, dir string) ([]Version, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, e := range entries {
		name := e.Name()
		num, ok := strings.CutSuffix(strings.TrimPrefix(name, "v"), ".avsc")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasPrefix(name, "v") {
			return nil, fmt.Errorf("envelope schema %s: want v<N>.avsc", name)
		}
		text, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		s, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("envelope schema %s: %w", name, err)
		}
		out = append(out, Version{N: n, Text: string(text), Schema: s})
	}
	slices.SortFunc(out, func(a, b Version) int { return a.N - b.N })
	if len(out) == 0 {
		return nil, fmt.Errorf("no envelope schema in %s", dir)
	}
	return out, nil
}

// Latest returns the newest envelope schema, the one Inlet writes with.
func Latest() (Version, error) {
	vs, err := Versions()
	if err != nil {
		return Version{}, err
	}
	return vs[len(vs)-1], nil
}

// Codec encodes and decodes envelopes for one raw topic subject.
type Codec struct {
	reg    *registry.Client
	schema avro.Schema
	id     int
}

// NewCodec registers the latest envelope schema under subject (normally
// "<raw topic>-value") and returns a codec writing with it.
func NewCodec(ctx context.Context, reg *registry.Client, subject string) (*Codec, error) {
	return codec(ctx, reg, subject, reg.Register)
}

// LookupCodec is NewCodec for a process that must not write to the
// registry (the operator CLI, often with read-only credentials): it looks
// the latest envelope schema up under subject instead of registering it,
// and fails, wrapping registry.ErrNotRegistered, when the subject does not
// hold it. Decoding is as NewCodec's: by the writer schema ID in each value,
// so envelopes written with any registered version decode.
func LookupCodec(ctx context.Context, reg *registry.Client, subject string) (*Codec, error) {
	return codec(ctx, reg, subject, reg.Lookup)
}

// codec builds a Codec for the latest envelope schema, whose ID get finds.
func codec(ctx context.Context, reg *registry.Client, subject string, get func(context.Context, string, string) (int, avro.Schema, error)) (*Codec, error) {
	latest, err := Latest()
	if err != nil {
		return nil, err
	}
	id, schema, err := get(ctx, subject, latest.Text)
	if err != nil {
		return nil, fmt.Errorf("envelope schema v%d: %w", latest.N, err)
	}
	return &Codec{reg: reg, schema: schema, id: id}, nil
}

// SchemaID is the registry ID new envelopes are written with.
func (c *Codec) SchemaID() int { return c.id }

// Encode returns the Confluent-framed Avro encoding of e.
func (c *Codec) Encode(e *Envelope) ([]byte, error) {
	return c.reg.Encode(nil, c.id, c.schema, e)
}

// Decode reads a Confluent-framed envelope written with any registered
// envelope version. ctx bounds a first-time schema fetch.
func (c *Codec) Decode(ctx context.Context, b []byte) (*Envelope, error) {
	var e Envelope
	if err := c.reg.Decode(ctx, b, c.schema, &e); err != nil {
		return nil, err
	}
	return &e, nil
}
