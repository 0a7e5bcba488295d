package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/jsonvalid"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/source"
)

// Record header names on the raw topic (DESIGN.md "Record headers").
const (
	HeaderCorrelationID = "correlation-id"
	HeaderTraceparent   = "traceparent"
	HeaderSource        = "inlet-source"
	HeaderEventType     = "inlet-event-type"
)

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("source")
	// The span and the metrics name a configured source or "unknown": the
	// path is anyone's to invent, kilobytes of it.
	label := metricSource(s.sources, name)
	corr := correlationID(r.Header)
	w.Header()[headerCorrelationID] = []string{corr}
	// The span continues the sender's trace (traceparent), or starts one.
	ctx, span := s.startSpan(s.propagator.Extract(r.Context(), headerCarrier(r.Header)), "ingest.webhook")
	defer span.End()
	// Without an exporter the span does not record: its attributes would be
	// built for nothing on every request.
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("inlet.source", label), attribute.String("inlet.correlation_id", corr))
	}
	// Attributes are built only when a line is written: the happy path logs
	// at debug, and building them per request costs more than the write.
	log := func(level slog.Level, msg string, args ...any) {
		if s.log.Enabled(ctx, level) {
			s.log.Log(ctx, level, msg, append([]any{"correlation_id", corr, "source", name, "stage", "ingest"}, args...)...)
		}
	}
	status, eventType := 0, ""
	answer := func(code int, outcome, reason string, v Response) {
		status = code
		s.metrics.event(ctx, label, eventType, outcome, reason)
		if recording {
			if code >= 500 {
				span.SetStatus(codes.Error, reason)
			}
			span.SetAttributes(attribute.Int("http.response.status_code", code), attribute.String("inlet.outcome", outcome))
		}
		writeResponse(w, code, v)
	}
	defer func() { s.metrics.request(ctx, label, status, start) }()

	src, ok := s.sources.Get(name)
	if !ok {
		answer(http.StatusNotFound, outcomeRejected, reasonUnknownSource, Response{CorrelationID: corr, Error: "unknown source"})
		return
	}
	// Refused before a byte is read (no 100 Continue): the body would be
	// stored compressed with nothing saying so, and a JSON source answered
	// "not valid JSON" for JSON sent gzipped.
	if compressed(r.Header) {
		log(slog.LevelInfo, "rejected", "outcome", "rejected", "reason", reasonEncoding, "status", http.StatusUnsupportedMediaType)
		w.Header().Set("Accept-Encoding", "identity") // RFC 9110 15.5.16
		answer(http.StatusUnsupportedMediaType, outcomeRejected, reasonEncoding, Response{CorrelationID: corr, Error: errTextEncoding})
		return
	}
	// The body is referenced until Kafka answers: its bytes stay reserved
	// until the handler returns.
	held := reservation{b: s.bodies}
	defer held.release()
	body, err := readBody(w, r, s.pacedBody(w, r, start), int64(src.MaxBody), &held)
	if err != nil {
		code, reason := readFailure(err)
		if code == http.StatusServiceUnavailable {
			log(slog.LevelWarn, "refused", "outcome", "unavailable", "reason", reason, "status", code)
			s.setRetryAfter(w)
			answer(code, outcomeUnavailable, reason, Response{CorrelationID: corr, Error: errTextMemory})
			return
		}
		log(slog.LevelInfo, "rejected", "outcome", "rejected", "reason", reason, "status", code, "error", err)
		answer(code, outcomeRejected, reason, Response{CorrelationID: corr, Error: readFailureText(reason, int64(src.MaxBody), r.ContentLength)})
		return
	}
	received := s.now()
	if err := src.Provider().Verify(r.Header, body, received); err != nil {
		// The error names what failed (missing, malformed, stale,
		// mismatch) for our logs only; the sender learns nothing more.
		// At warn once per signatureEvery for the source, at debug between:
		// anyone can send unsigned requests, and the metrics count each.
		lvl, quiet := s.signatureLevel(name, received)
		log(lvl, "rejected", "outcome", "rejected", "reason", "signature", "error", err, "at_debug_since_last", quiet)
		answer(http.StatusUnauthorized, outcomeRejected, reasonSignature, Response{CorrelationID: corr, Error: "signature verification failed"})
		return
	}
	if src.RequiresJSON() && !jsonvalid.Valid(body) {
		log(slog.LevelInfo, "rejected", "outcome", "rejected", "reason", "malformed")
		answer(http.StatusBadRequest, outcomeRejected, reasonMalformed, Response{CorrelationID: corr, Error: notJSONText(r.Header)})
		return
	}
	meta, err := src.Extract(r.Header, body)
	if err != nil {
		log(slog.LevelInfo, "rejected", "outcome", "rejected", "reason", "malformed", "error", err)
		answer(http.StatusBadRequest, outcomeRejected, reasonMalformed, Response{CorrelationID: corr, Error: err.Error()})
		return
	}
	eventType = meta.EventType
	kept, ct, omitted := keptHeaders(src, r.Header)
	if omitted != nil {
		log(slog.LevelInfo, "headers over the size bound not kept in the envelope", "headers", omitted)
	}
	env := s.envelope(src, meta, corr, envelope.ChannelWebhook, kept, ct, body, received)
	if recording {
		span.SetAttributes(attribute.String("inlet.event_type", env.EventType), attribute.String("inlet.event_id", env.EventID), attribute.String("inlet.id", env.ID))
	}
	rec, traceOmitted, err := s.record(ctx, env)
	if traceOmitted != nil {
		log(slog.LevelInfo, "trace headers over the size bound not kept in the record", "headers", traceOmitted)
	}
	if errors.Is(err, errRecordTooLarge) {
		log(slog.LevelInfo, "rejected", "outcome", "rejected", "reason", "size", "error", err)
		answer(http.StatusRequestEntityTooLarge, outcomeRejected, reasonSize, Response{CorrelationID: corr, Error: err.Error()})
		return
	}
	if err != nil {
		log(slog.LevelError, "envelope encoding failed", "error", err)
		answer(http.StatusInternalServerError, outcomeUnavailable, "encode", Response{CorrelationID: corr, Error: "internal error"})
		return
	}
	// The trace context travels in the record's headers (record above), so
	// the produce context only bounds the wait. The bound starts once the
	// body is in: counted from the request's start, a body that took longer
	// than the ack timeout to arrive was answered 503 before Kafka was even
	// asked, and again on every retry.
	if err := s.w.writeOne(s.deadlines.context(time.Now()), rec); err != nil {
		lvl, quiet := s.unacked.level(time.Now())
		log(lvl, "not acknowledged by kafka", "event_type", env.EventType, "event_id", env.EventID, "outcome", "unavailable", "error", err,
			"at_debug_since_last", quiet)
		if lvl == slog.LevelWarn {
			// Why, from Kafka's metadata, in a line of its own: the
			// error says only that the deadline passed (see diagnoser).
			s.diagnosis.start()
		}
		s.setRetryAfter(w)
		answer(http.StatusServiceUnavailable, outcomeUnavailable, reasonKafka, Response{CorrelationID: corr, Error: "kafka did not acknowledge the event in time; retry"})
		return
	}
	if s.log.Enabled(ctx, slog.LevelDebug) { // else the arguments alone cost 3 allocations
		log(slog.LevelDebug, "accepted", "event_type", env.EventType, "event_id", env.EventID, "outcome", "accepted", "id", env.ID)
	}
	answer(http.StatusAccepted, outcomeAccepted, "", Response{ID: env.ID, EventID: env.EventID, CorrelationID: corr})
}

// startSpan starts a server span. With the no-op tracer (no exporter
// configured) it returns what that tracer's Start returns, minus the
// context it would allocate to hold a span with an empty span context: ctx
// and its span as they are, unless that span records (a middleware's), in
// which case Start must wrap it in a non-recording span.
func (s *Server) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.noopTracer {
		if span := trace.SpanFromContext(ctx); !span.IsRecording() {
			return ctx, span
		}
	}
	return s.tracer.Start(ctx, name, s.serverSpan...)
}

// metricSource keeps unknown source names (anyone can send any path) out of
// label values.
func metricSource(sources *source.File, name string) string {
	if _, ok := sources.Get(name); ok {
		return name
	}
	return "unknown"
}

// maxUpfront is the largest Content-Length readBody allocates for before
// the bytes arrive. Beyond it the buffer grows with what is received:
// anyone can claim megabytes in a header, before any signature is checked,
// and each first buffer counts against -max-body-bytes-in-flight while the
// connection sends nothing. At 64 KiB, 2,048 idle connections held a
// 128 MiB bound; at 4 KiB a 1 KiB webhook still takes one allocation.
const maxUpfront = 4 << 10

// readExactly reads n bytes. Up to maxUpfront it allocates them at once;
// beyond, the buffer grows fourfold each time it fills, capped at n, so a
// claimed size costs memory only as it is sent (at most 4× what arrived),
// and a real large body costs about what one allocation of it did
// (BenchmarkReadExactly: 1 MiB in ~0.3–0.4 ms and 1.4 MB, against 1.0 MB
// allocated up front). Each allocation is reserved from res first.
func readExactly(r io.Reader, n int64, res *reservation) ([]byte, error) {
	if err := res.grow(min(n, maxUpfront)); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, min(n, maxUpfront))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			var err error
			if buf, err = grow(buf, n, res); err != nil {
				return nil, err
			}
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF && int64(len(buf)) < n {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	return buf, nil
}

// readAll reads r, a body of unknown length within limit (a
// MaxBytesReader), growing its buffer as readExactly does, capped at limit.
func readAll(r io.Reader, limit int64, res *reservation) ([]byte, error) {
	first := min(512, limit)
	if err := res.grow(first); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				// Full at the limit: only the end of the body may follow,
				// and a byte more is the MaxBytesReader's error.
				var probe [1]byte
				if _, err := io.ReadFull(r, probe[:]); err != io.EOF {
					if err == nil {
						err = &http.MaxBytesError{Limit: limit}
					}
					return nil, err
				}
				return buf, nil
			}
			var err error
			if buf, err = grow(buf, limit, res); err != nil {
				return nil, err
			}
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// grow returns buf in a buffer four times its capacity, at most max,
// reserving the difference from res first. The old buffer becomes garbage:
// the reservation counts what the request holds, as GC frees the rest.
func grow(buf []byte, max int64, res *reservation) ([]byte, error) {
	size := min(4*int64(cap(buf)), max)
	if err := res.grow(size - int64(cap(buf))); err != nil {
		return nil, err
	}
	grown := make([]byte, len(buf), size)
	copy(grown, buf)
	return grown, nil
}

// readBody reads at most limit bytes; a body of exactly limit is accepted.
// Its buffer is reserved from res as it grows (errBodyBudget when that
// fails); the caller releases res once the body is no longer referenced.
// readFailure tells how to answer its error.
func readBody(w http.ResponseWriter, r *http.Request, body io.ReadCloser, limit int64, res *reservation) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength >= 0 {
		// net/http frames the body by Content-Length: exactly that many
		// bytes follow, so reading no more than limit bytes needs no
		// MaxBytesReader, and the buffer never needs to outgrow it.
		return readExactly(body, r.ContentLength, res)
	}
	// The MaxBytesReader also tells net/http to close the connection
	// after the 413 rather than read the rest of the body.
	return readAll(http.MaxBytesReader(w, body, limit), limit, res)
}

// notJSONText answers a JSON source's body that is not JSON. A form-encoded
// one is said to be: GitHub's API creates webhooks with content type form
// unless told json, and every delivery was "not valid JSON" while GitHub
// showed its payload as JSON.
func notJSONText(h http.Header) string {
	ct, _, _ := strings.Cut(firstValue(h, headerContentType), ";")
	if strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return "body is form-encoded, not JSON: send application/json (GitHub: the webhook's Content type)"
	}
	return "body is not valid JSON"
}

// errTextEncoding answers a webhook with a Content-Encoding.
const errTextEncoding = "Content-Encoding not supported: send the body uncompressed"

// compressed reports whether h declares a content coding that transforms
// the body: any of IANA's HTTP content codings but identity (gzip,
// deflate, br, zstd, compress; dcb and dcz, dictionary-compressed;
// aes128gcm, encrypted; exi and pack200-gzip). The webhook body is
// verified and stored as it arrives: such a body would reach the raw topic
// transformed, its coding not kept, so it is refused rather than decoded.
// Other values pass as before: "Content-Encoding: utf-8", a charset in the
// wrong header, is a common in-house sender's mistake on a plain body.
func compressed(h http.Header) bool {
	for _, v := range h["Content-Encoding"] {
		for c := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(c)) {
			case "gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress", "dcb", "dcz", "aes128gcm", "exi", "pack200-gzip":
				return true
			}
		}
	}
	return false
}

// errTextMemory answers a request refused by the body budget.
const errTextMemory = "too many request bodies in memory; retry later"

// readFailure is the status and metric reason for a body that could not be
// read. Over the limit is 413. Over the process's body budget is 503 (the
// caller adds Retry-After): nothing was written, and the sender should come
// back once other requests are done. A read timeout or a failed connection
// (a reset) says nothing about the content: 408, which senders retry, and
// not counted as malformed. A body that ends short of its Content-Length or
// is badly chunked is a broken request: 400. The error itself (it names
// addresses) is for our logs, never for the answer.
func readFailure(err error) (code int, reason string) {
	var tooBig *http.MaxBytesError
	var slow *slowBodyError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, reasonSize
	case errors.Is(err, errBodyBudget):
		return http.StatusServiceUnavailable, reasonMemory
	case errors.As(err, &slow):
		return http.StatusRequestTimeout, reasonSlowBody
	case errors.As(err, &ne):
		if ne.Timeout() {
			return http.StatusRequestTimeout, reasonReadTimeout
		}
		return http.StatusRequestTimeout, reasonReadError
	}
	return http.StatusBadRequest, reasonMalformed
}

// readFailureText is the answer's error for a body readBody could not
// read, by readFailure's reason: what the status says, made specific, and
// nothing of the request but its Content-Length, a number net/http parsed.
// The read error's own text names addresses: it is for our logs only.
// limit is the body's (max_body, or a signed batch's batch.max_body).
func readFailureText(reason string, limit, contentLength int64) string {
	switch reason {
	case reasonSize:
		return fmt.Sprintf("body over this source's limit of %d bytes", limit)
	case reasonReadTimeout:
		return "body not received within the read timeout; retry"
	case reasonSlowBody:
		return "body arrived too slowly (it stalled, or fell behind the minimum rate); retry"
	case reasonReadError:
		return "connection failed while the body was read; retry"
	case reasonMemory:
		return errTextMemory
	}
	if contentLength >= 0 {
		return fmt.Sprintf("body ended before its Content-Length (%d bytes)", contentLength)
	}
	return "body ended early or was badly chunked"
}

// Kept request headers are bounded per envelope: a batch copies them into
// every line's envelope, and a 60 KiB User-Agent on 10,000 lines made
// 600 MiB on the raw topic, which is kept forever. A value over
// maxKeptHeaderValue is left out, and so is a header that would take the
// kept names and values past maxKeptHeaderBytes. The correlation and trace
// headers come first in KeptHeaders, so no other header displaces them.
const (
	maxKeptHeaderValue = 4 << 10
	maxKeptHeaderBytes = 8 << 10
)

// keptHeaders returns the source's kept headers of h and its content type,
// bounded as above, and the names of the headers left out.
func keptHeaders(src *source.Source, h http.Header) (kept map[string]string, contentType string, omitted []string) {
	total := 0
	for _, name := range src.KeptHeaders() {
		v := firstValue(h, name) // KeptHeaders are canonical
		if v == "" {
			continue
		}
		if name == headerCorrelationID && !validCorrelationID(v) {
			// Not taken as the correlation id (see correlationID): 4 KiB
			// of it would only crowd out a tracestate.
			omitted = append(omitted, name)
			continue
		}
		v, ok := boundedValue(v)
		if !ok || total+len(name)+len(v) > maxKeptHeaderBytes {
			omitted = append(omitted, name)
			continue
		}
		total += len(name) + len(v)
		if kept == nil {
			kept = make(map[string]string, 4)
		}
		kept[name] = v
	}
	contentType, ok := boundedValue(firstValue(h, headerContentType))
	if !ok && !slices.Contains(omitted, headerContentType) {
		omitted = append(omitted, headerContentType)
	}
	return kept, contentType, omitted
}

// boundedValue is v made valid UTF-8, or "" and false when v is over
// maxKeptHeaderValue before or after: validUTF8 writes an invalid byte as
// three, and is not run on a value already over the bound (it would copy
// it for nothing).
func boundedValue(v string) (string, bool) {
	if len(v) > maxKeptHeaderValue {
		return "", false
	}
	if v = validUTF8(v); len(v) > maxKeptHeaderValue {
		return "", false
	}
	return v, true
}

// envelope wraps body; kept (nil encodes as an empty map) and ct come from
// keptHeaders.
func (s *Server) envelope(src *source.Source, m source.Meta, corr, channel string, kept map[string]string, ct string, body []byte, received time.Time) *envelope.Envelope {
	return &envelope.Envelope{
		ID:             newID(received),
		Source:         src.Name,
		EventType:      m.EventType,
		EventID:        m.EventID,
		IdempotencyKey: envelope.IdempotencyKey(src.Name, m.EventID),
		SchemaVersion:  m.SchemaVersion,
		ReceivedAt:     received.UTC().Truncate(time.Microsecond),
		OccurredAt:     m.OccurredAt,
		CorrelationID:  corr,
		Channel:        channel,
		Headers:        kept,
		Payload:        body,
		ContentType:    ct,
	}
}

// validUTF8 replaces each invalid byte sequence of a header value with
// U+FFFD. net/http lets any byte from 0x80 up through (obs-text), but the
// envelope's strings are Avro strings, UTF-8 by definition: consumers such
// as fastavro fail to decode the record otherwise, on a topic kept
// forever. Valid values are returned as they are, without allocating.
func validUTF8(v string) string { return strings.ToValidUTF8(v, "\uFFFD") }

// errRecordTooLarge: the event, wrapped in its envelope with the headers
// it keeps, does not fit a Kafka record. Producing it would fail the same
// way on every retry, so it is answered 413, not 503.
var errRecordTooLarge = errors.New("event too large for the log once wrapped")

// record encodes e; the trace context of ctx (the ingest span) goes into
// the record headers, so the processor's spans join the same trace. Those
// headers are bounded as kept headers are (boundTraceHeaders); omitted
// names the ones left out.
func (s *Server) record(ctx context.Context, e *envelope.Envelope) (rec *kgo.Record, omitted []string, err error) {
	val, err := s.codec.Encode(e)
	if err != nil {
		return nil, nil, err
	}
	// The key and our header values.
	fields := len(e.CorrelationID) + len(e.Source) + len(e.EventType) + len(e.IdempotencyKey)
	// The record and its headers are one allocation, the key and the header
	// values another: 2 instead of 6 per webhook.
	ra := &recordAlloc{}
	b := make([]byte, 0, fields)
	field := func(v string) []byte {
		b = append(b, v...)
		return b[len(b)-len(v) : len(b) : len(b)]
	}
	ra.hdrs[0] = kgo.RecordHeader{Key: HeaderCorrelationID, Value: field(e.CorrelationID)}
	ra.hdrs[1] = kgo.RecordHeader{Key: HeaderSource, Value: field(e.Source)}
	ra.hdrs[2] = kgo.RecordHeader{Key: HeaderEventType, Value: field(e.EventType)}
	ra.rec = kgo.Record{
		Topic:     s.topic,
		Key:       field(e.IdempotencyKey),
		Value:     val,
		Headers:   ra.hdrs[:3],
		Timestamp: e.ReceivedAt,
	}
	s.propagator.Inject(ctx, kotel.NewRecordCarrier(&ra.rec))
	ra.rec.Headers, omitted = boundTraceHeaders(ra.rec.Headers, 3)
	// The body is within the source's max_body, itself at most
	// kafka.MaxBodyBytes, but the kept headers come on top of it in the
	// value, and the sender's trace context (up to maxKeptHeaderBytes) in
	// the record headers. Kafka would refuse the record on every retry:
	// 413, not 503. The limit keeps kafka.FailureHeadroom free, so that the
	// processor's retry, dead-letter or invalid copy of the event fits as
	// well.
	if n := kafka.RecordSize(&ra.rec); n > kafka.MaxRawRecordBytes {
		return nil, omitted, fmt.Errorf("%w (%d bytes, limit %d)", errRecordTooLarge, n, kafka.MaxRawRecordBytes)
	}
	return &ra.rec, omitted, nil
}

// boundTraceHeaders bounds the headers the propagators wrote after our own
// first n, as keptHeaders bounds the envelope's: a value over
// maxKeptHeaderValue is left out, and so is a header that would take their
// names and values past maxKeptHeaderBytes. traceparent is written first,
// so a valid one is always kept. W3C allows a tracestate of about 16 KiB
// and baggage of 8 KiB, up to the request's header limit with other
// propagators: a batch copied them into every line's record, on a raw
// topic kept forever, even when its envelopes left the tracestate out.
// Nothing is allocated unless a header is left out.
func boundTraceHeaders(hs []kgo.RecordHeader, n int) (kept []kgo.RecordHeader, omitted []string) {
	total := 0
	kept = hs[:n]
	for _, h := range hs[n:] {
		if len(h.Value) > maxKeptHeaderValue || total+len(h.Key)+len(h.Value) > maxKeptHeaderBytes {
			omitted = append(omitted, h.Key)
			continue
		}
		total += len(h.Key) + len(h.Value)
		kept = append(kept, h)
	}
	return kept, omitted
}

// recordAlloc holds a record and room for its headers: ours, then
// traceparent, tracestate and baggage when the propagators inject them.
type recordAlloc struct {
	rec  kgo.Record
	hdrs [6]kgo.RecordHeader
}

// newID is a UUIDv7: time-ordered, so ids sort by arrival.
func newID(t time.Time) string {
	id, err := uuid.NewV7()
	if err != nil { // only when the random source fails
		return strconv.FormatInt(t.UnixNano(), 36)
	}
	return id.String()
}

func (s *Server) setRetryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
}
