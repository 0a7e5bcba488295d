// Package registry registers Avro schemas with a Confluent-compatible schema
// registry and encodes and decodes values in the Confluent wire format
// (magic byte 0, 4-byte schema ID, Avro body).
//
// Decoding always uses the writer's schema, looked up by the ID in the wire
// header and resolved to the reader's schema: hamba/avro silently decodes
// garbage when given the wrong schema, so guessing is never safe.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/kafka"
)

// Client wraps an sr.Client with a cache of writer schemas and resolved
// reader/writer pairs. It is safe for concurrent use.
type Client struct {
	sr     *sr.Client
	header sr.ConfluentHeader

	mu       sync.RWMutex
	writers  map[int]avro.Schema
	resolved map[resolvedKey]avro.Schema
}

// resolvedKey names a resolution by the reader itself, not its
// fingerprint: the canonical form leaves out defaults and aliases, so two
// readers differing only there shared one resolution, and the second got
// the first's default (or decoded where it should have been refused).
// Readers are parsed once and reused, as every caller here does.
type resolvedKey struct {
	id     int
	reader avro.Schema
}

// New returns a Client that talks to the registry through cl.
func New(cl *sr.Client) *Client {
	return &Client{
		sr:       cl,
		writers:  make(map[int]avro.Schema),
		resolved: make(map[resolvedKey]avro.Schema),
	}
}

// SR returns the underlying schema registry client.
func (c *Client) SR() *sr.Client { return c.sr }

// Register registers the schema text under subject (a no-op returning the
// existing ID when the registry already holds it) and returns its ID and the
// parsed schema. The text is sent as written: hamba's Schema.String() is the
// canonical form, which drops defaults, docs and aliases that compatibility
// checks and readers need. The registry decides compatibility; an
// incompatible schema fails with the registry's error, and a registry that
// cannot be reached with one wrapping ErrUnavailable.
func (c *Client) Register(ctx context.Context, subject, text string) (int, avro.Schema, error) {
	return c.known(subject, text, func(s sr.Schema) (sr.SubjectSchema, error) {
		ss, err := c.sr.CreateSchema(ctx, subject, s)
		if err != nil {
			return ss, fmt.Errorf("register schema under %s: %w", subject, classify(err))
		}
		return ss, nil
	})
}

// Lookup is Register for a process that must not write to the registry: it
// asks whether subject already holds the schema text (POST /subjects/{subject},
// which needs only read access) and returns its ID and the parsed schema.
// A subject without it, or no such subject, fails with ErrNotRegistered.
func (c *Client) Lookup(ctx context.Context, subject, text string) (int, avro.Schema, error) {
	return c.known(subject, text, func(s sr.Schema) (sr.SubjectSchema, error) {
		ss, err := c.sr.LookupSchema(ctx, subject, s)
		var re *sr.ResponseError
		switch {
		case err == nil:
			return ss, nil
		case errors.As(err, &re) && (re.ErrorCode == sr.ErrSubjectNotFound.Code || re.ErrorCode == sr.ErrSchemaNotFound.Code):
			return ss, fmt.Errorf("%w under %s: %w", ErrNotRegistered, subject, err)
		}
		return ss, fmt.Errorf("look up schema under %s: %w", subject, classify(err))
	})
}

// known parses text, has ask find its ID in the registry (registering or
// looking it up), and remembers the schema as that ID's writer schema.
func (c *Client) known(subject, text string, ask func(sr.Schema) (sr.SubjectSchema, error)) (int, avro.Schema, error) {
	schema, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return 0, nil, fmt.Errorf("parse schema for %s: %w", subject, err)
	}
	ss, err := ask(sr.Schema{Schema: text, Type: sr.TypeAvro})
	if err != nil {
		return 0, nil, err
	}
	c.mu.Lock()
	c.writers[ss.ID] = schema
	c.mu.Unlock()
	return ss.ID, schema, nil
}

// Encode appends the Confluent header for id and the Avro encoding of v under
// schema to b, growing b once to the exact size needed.
//
// The Avro body is written into a pooled writer and copied out: the copy is
// cheaper than the two buffers per record a fresh writer costs (the record
// outlives the call — the producer keeps it until acknowledged — so the
// writer's own buffer cannot be handed out).
func (c *Client) Encode(b []byte, id int, schema avro.Schema, v any) ([]byte, error) {
	w := writers.Get().(*avro.Writer)
	defer putWriter(w)
	w.Reset(nil)
	w.Error = nil
	w.WriteVal(schema, v)
	if w.Error != nil {
		return nil, fmt.Errorf("avro encode (schema id %d): %w", id, w.Error)
	}
	body := w.Buffer()
	b = slices.Grow(b, confluentHeaderLen+len(body))
	b, err := c.header.AppendEncode(b, id, nil)
	if err != nil {
		return nil, err
	}
	return append(b, body...), nil
}

// confluentHeaderLen is the magic byte and the 4-byte schema ID.
const confluentHeaderLen = 5

// decodeAPI reads strings and bytes as long as any record Inlet's topics
// accept: hamba's default stops them at 1 MiB, so an envelope whose body
// was over 1 MiB (a source's max_body may allow up to kafka.MaxBodyBytes)
// was written by ingest and then undecodable everywhere else. The bound
// stays: a hostile length prefix must not make a reader allocate more than
// a record can hold; nor an array's count (a record holds no more items
// than bytes, but for items of no bytes), which hamba's default put at
// the largest allocation.
var decodeAPI = avro.Config{MaxByteSliceSize: kafka.MaxMessageBytes, MaxSliceAllocSize: kafka.MaxMessageBytes}.Freeze()

// readers holds Avro readers between decodes; see unmarshalExact.
var readers = sync.Pool{New: func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(decodeAPI)) }}

// writers holds Avro writers between encodes; see Encode.
var writers = sync.Pool{New: func() any { return avro.NewWriter(nil, 2048) }}

// maxPooledWriter keeps a rare huge record from pinning its buffer in the
// pool for good.
const maxPooledWriter = 256 << 10

func putWriter(w *avro.Writer) {
	if cap(w.Buffer()) <= maxPooledWriter {
		writers.Put(w)
	}
}

// SchemaID returns the schema ID in a Confluent-framed value.
func (c *Client) SchemaID(b []byte) (int, error) {
	id, _, err := c.header.DecodeID(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotFramed, err)
	}
	return id, nil
}

// Decode decodes a Confluent-framed value into v, reading it with reader. The
// writer schema is fetched by ID on first use (ctx bounds that fetch) and
// cached, and so is its resolution against reader, kept by the reader's
// identity: parse a reader once and reuse it.
func (c *Client) Decode(ctx context.Context, b []byte, reader avro.Schema, v any) error {
	id, body, err := c.header.DecodeID(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFramed, err)
	}
	schema, err := c.readSchema(ctx, id, reader)
	if err != nil {
		return err
	}
	// Read into any, or skipping what the reader or the Go type lacks,
	// hamba trusts a block's count (see checkBlocks).
	w, err := c.WriterSchema(ctx, id)
	if err != nil {
		return err
	}
	if hasBlocks(w) {
		if err := checkBlocks(w, body); err != nil {
			return fmt.Errorf("%w: schema id %d: %w", ErrUndecodable, id, err)
		}
	}
	if err := unmarshalExact(schema, body, v); err != nil {
		return fmt.Errorf("%w: schema id %d: %w", ErrUndecodable, id, err)
	}
	return nil
}

// unmarshalExact decodes body and insists it is consumed exactly:
// avro.Unmarshal treats running out of bytes as success (zero values), which
// would turn a truncated record into a silently wrong one.
func unmarshalExact(schema avro.Schema, body []byte, v any) error {
	// Pooled: besides the reader itself, hamba carves short strings out of
	// a 1 KiB slab per reader, which a fresh reader allocates on every
	// decode. A pooled one hands out what is left of its slab to the next
	// decodes (strings never alias body; they are copies).
	r := readers.Get().(*avro.Reader)
	defer func() {
		r.Reset(nil)
		readers.Put(r)
	}()
	r.Reset(body)
	r.Error = nil
	r.ReadVal(schema, v)
	if errors.Is(r.Error, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	if r.Error != nil {
		return r.Error
	}
	r.Peek()
	if r.Error == nil {
		return errors.New("trailing bytes after the record")
	}
	return nil
}

// WriterSchema returns the schema registered under id.
func (c *Client) WriterSchema(ctx context.Context, id int) (avro.Schema, error) {
	c.mu.RLock()
	w, ok := c.writers[id]
	c.mu.RUnlock()
	if ok {
		return w, nil
	}
	s, err := c.sr.SchemaByID(ctx, id)
	if err != nil {
		if err = classify(err); IsUnavailable(err) {
			return nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		return nil, fmt.Errorf("%w: schema id %d: %w", ErrUnknownSchema, id, err)
	}
	if s.Type != sr.TypeAvro {
		return nil, fmt.Errorf("%w: schema id %d is %s, not Avro", ErrUnknownSchema, id, s.Type)
	}
	// A private cache: another version of the same named record may already
	// be parsed, and the global cache would hand that one back.
	w, err = avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%w: parse schema id %d: %w", ErrUnknownSchema, id, err)
	}
	c.mu.Lock()
	c.writers[id] = w
	c.mu.Unlock()
	return w, nil
}

func (c *Client) readSchema(ctx context.Context, id int, reader avro.Schema) (avro.Schema, error) {
	key := resolvedKey{id: id, reader: reader}
	c.mu.RLock()
	s, ok := c.resolved[key]
	c.mu.RUnlock()
	if ok {
		return s, nil
	}
	writer, err := c.WriterSchema(ctx, id)
	if err != nil {
		return nil, err
	}
	if writer.Fingerprint() == reader.Fingerprint() {
		s = reader
	} else {
		s, err = avro.NewSchemaCompatibility().Resolve(reader, writer)
		if err != nil {
			return nil, fmt.Errorf("%w: schema id %d cannot be read as %s: %w", ErrIncompatible, id, schemaName(reader), err)
		}
	}
	c.mu.Lock()
	c.resolved[key] = s
	c.mu.Unlock()
	return s, nil
}

// schemaName names a schema in an error: a named type by its full name,
// any other (a primitive, map or union reader) by its type.
func schemaName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}
