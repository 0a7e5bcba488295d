package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/inletdev/inlet/pkg/bearer"
	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/source"
)

// Line outcomes in a batch answer.
const (
	LineAccepted = "accepted" // durable on the raw topic
	LineRejected = "rejected" // bad line; fix it, do not retry as is
	LineFailed   = "failed"   // not acknowledged in time; retry it
)

// BatchResponse answers POST /events.
type BatchResponse struct {
	CorrelationID string       `json:"correlation_id"`
	Accepted      int          `json:"accepted"`
	Rejected      int          `json:"rejected"`
	Failed        int          `json:"failed"`
	Results       []LineResult `json:"results"`
	Error         string       `json:"error,omitempty"`
}

// LineResult is the outcome of one NDJSON line (1-based; blank lines are
// skipped but counted).
type LineResult struct {
	Line    int    `json:"line"`
	Status  string `json:"status"`
	ID      string `json:"id,omitempty"`
	EventID string `json:"event_id,omitempty"`
	// CorrelationID is the id the line's event is traced under: its own
	// correlation_id, or the request's with -<line> when it has none or
	// one not taken (see validCorrelationID), which nothing else told the
	// producer.
	CorrelationID string `json:"correlation_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

// batchLine is one event of the NDJSON batch format.
type batchLine struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	OccurredAt    json.RawMessage `json:"occurred_at"`
	SchemaVersion string          `json:"schema_version"`
	CorrelationID string          `json:"correlation_id"`
	Data          json.RawMessage `json:"data"`
}

// handleBatch serves POST /events[/{source}]: NDJSON, one event per line
// ({"id","type","occurred_at","data"}), for in-house producers. With a
// bearer token the body is streamed: each good line is produced as soon as
// it is read. A batch signed over its whole body is verified before
// anything is written, so it is read whole first (bounded by batch.max_body);
// with batch.signed, every request without a valid token is taken as one,
// whatever its Authorization holds. The answer is 200 when every line is
// durable, 207 when some lines were rejected and the rest are durable, 503
// when some good line was not acknowledged within the ack timeout of the
// body being in (retry those; they are not written later where that can
// still be prevented), 400 when no line was good, 413 when the body is over
// batch.max_body at once by its Content-Length.
//
// Reading can stop early: a streamed body over batch.max_body where it gets
// there, a body that stops arriving (read timeout, connection reset), past
// batch.max_lines events, past batch.max_lines rejected lines, or (a
// streamed body) once ingest drains. The lines
// before the cut are answered as usual (207, not 200, if some were
// accepted), the line at the cut and those after it get no result, and
// error names the first of them: the sender resends from there. With no
// line accepted, a body over batch.max_body answers 413 and one that
// stopped arriving 408 (400 for a body short of its Content-Length); past
// batch.max_lines rejected lines the answer is 207 even then (the unread
// lines may be good). Past batch.max_lines events every line read was
// accepted or failed, so the usual answers apply.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var name string
	status := 0 // the answer's, for the request-duration metric
	reply := func(code int, v BatchResponse) {
		status = code
		if code == http.StatusServiceUnavailable {
			s.setRetryAfter(w)
		}
		if v.Results == nil {
			// A list, if empty: a sender looping over it must not
			// meet null.
			v.Results = []LineResult{}
		}
		writeJSON(w, code, v)
	}
	defer func() { s.metrics.request(r.Context(), metricSource(s.sources, name), status, start) }()
	corr := correlationID(r.Header)
	w.Header().Set("X-Correlation-ID", corr)
	name = batchSource(r)
	log := s.log.With("correlation_id", corr, "source", name, "stage", "ingest", "channel", envelope.ChannelEvents)
	src, ok := s.sources.Get(name)
	if !ok {
		s.metrics.event(r.Context(), metricSource(s.sources, name), "", outcomeRejected, reasonUnknownSource)
		reply(http.StatusNotFound, BatchResponse{CorrelationID: corr, Error: "unknown source"})
		return
	}
	if !src.BatchEnabled() {
		// A source that exists (its webhooks answer 401, not 404): the
		// producer, or the sources file, is wrong, and is told which.
		log.Info("rejected", "outcome", "rejected", "reason", reasonBatchDisabled, "status", http.StatusNotFound)
		s.metrics.event(r.Context(), name, "", outcomeRejected, reasonBatchDisabled)
		reply(http.StatusNotFound, BatchResponse{CorrelationID: corr, Error: errTextBatchDisabled})
		return
	}
	// As for a webhook (see handleWebhook): read as lines, a compressed
	// batch was refused line by line as "not valid UTF-8".
	if compressed(r.Header) {
		log.Info("rejected", "outcome", "rejected", "reason", reasonEncoding, "status", http.StatusUnsupportedMediaType)
		s.metrics.event(r.Context(), name, "", outcomeRejected, reasonEncoding)
		w.Header().Set("Accept-Encoding", "identity")
		reply(http.StatusUnsupportedMediaType, BatchResponse{CorrelationID: corr, Error: errTextEncoding + ": nothing was written"})
		return
	}
	limit := int64(src.Batch.MaxBody)
	if r.ContentLength > limit {
		s.metrics.event(r.Context(), name, "", outcomeRejected, reasonSize)
		reply(http.StatusRequestEntityTooLarge, BatchResponse{CorrelationID: corr, Error: batchTooLarge(limit) + batchNothingWritten})
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	// A signed batch's body is referenced until its lines are answered. A
	// streamed batch's is not counted: its token is checked before a byte
	// is read, and it holds one line (up to max_body) at a time.
	held := reservation{b: s.bodies}
	defer held.release()
	streamed := false
	switch {
	case bearerOK(r.Header.Get("Authorization"), src.BatchTokens()):
		streamed = true
	case src.Batch.Signed:
		// Whenever the token check fails, not only without Authorization:
		// an hmac source may sign in Authorization (hmac.header), and its
		// signed batches were all refused 401 unchecked. Trying both is
		// sound: each path accepts only what its own secret vouches for,
		// and Verify refuses a token as it refuses any bad signature. A
		// wrong token now costs a read of the body (within batch.max_body
		// and the body budget) before its 401, as a request without
		// Authorization already could.
		whole, err := readBody(w, r, s.pacedBody(w, r, start), limit, &held)
		if err != nil {
			code, reason := readFailure(err)
			if code == http.StatusServiceUnavailable { // reply adds Retry-After
				log.Warn("refused", "outcome", "unavailable", "reason", reason, "status", code)
				s.metrics.event(r.Context(), name, "", outcomeUnavailable, reason)
				reply(code, BatchResponse{CorrelationID: corr, Error: errTextMemory})
				return
			}
			log.Info("rejected", "outcome", "rejected", "reason", reason, "status", code, "error", err)
			s.metrics.event(r.Context(), name, "", outcomeRejected, reason)
			text := readFailureText(reason, limit, r.ContentLength)
			if reason == reasonSize {
				text = batchTooLarge(limit) + batchNothingWritten
			}
			reply(code, BatchResponse{CorrelationID: corr, Error: text})
			return
		}
		now := s.now()
		if err := src.Provider().Verify(r.Header, whole, now); err != nil {
			lvl, quiet := s.signatureLevel(name, now) // as for a webhook
			log.Log(r.Context(), lvl, "rejected", "outcome", "rejected", "reason", "signature", "error", err, "at_debug_since_last", quiet)
			s.metrics.event(r.Context(), name, "", outcomeRejected, reasonSignature)
			reply(http.StatusUnauthorized, BatchResponse{CorrelationID: corr, Error: "authentication failed"})
			return
		}
		body = bytes.NewReader(whole)
	default:
		lvl, quiet := s.signatureLevel(name, s.now()) // as for a webhook
		log.Log(r.Context(), lvl, "rejected", "outcome", "rejected", "reason", "signature", "at_debug_since_last", quiet)
		s.metrics.event(r.Context(), name, "", outcomeRejected, reasonSignature)
		reply(http.StatusUnauthorized, BatchResponse{CorrelationID: corr, Error: "authentication failed"})
		return
	}

	tctx, span := s.tracer.Start(s.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)), "ingest.events",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("inlet.source", name), attribute.String("inlet.correlation_id", corr)))
	defer span.End()
	// The answer on the span, as a webhook's: its status code, and an
	// error on a 5xx (Kafka took the lines too late or not at all). Runs
	// before End (deferred after it).
	defer func() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}()
	// Lines are produced under produceCtx while the body is read. net/http
	// cancels the request's context when a body read fails: the lines
	// produced before such a cut must still get their answer, so it is not
	// derived from it. It ends when the wait for the acknowledgements does
	// (below), and at the latest when the body could no longer be read and
	// acknowledged in time.
	produceCtx, cancelProduce := context.WithTimeout(context.WithoutCancel(tctx), s.cfg.ReadTimeout+s.cfg.AckTimeout)
	defer cancelProduce()
	resp := BatchResponse{CorrelationID: corr}
	types := map[int]string{} // result index → event type, for metrics
	acks := s.w.stream(produceCtx)
	// The request's kept headers, bounded, are shared by every line's
	// envelope.
	kept, ct, omitted := keptHeaders(src, r.Header)
	if omitted != nil {
		log.Info("headers over the size bound not kept in the envelopes", "headers", omitted)
	}
	sent := map[int]int{} // result index → produced item index
	// The first line of each event id, to refuse a later line reusing the
	// id for other content: both were accepted, the processor kept the
	// first and dropped the second as a duplicate, and compaction kept the
	// second on the raw topic, so one of them was lost either way.
	firstOf := map[string]lineSum{}
	lines := newLineReader(body, int(src.MaxBody))
	n, rejected := 0, 0
	// The first rejections, for the log line: why lines were refused is
	// otherwise only in the producer's answer.
	var rejections []loggedRejection
	traceLogged := false
	// cutMsg names the first line not read when reading stopped early (a
	// read error, max_body, max_lines events, too many rejected lines), and
	// is empty otherwise; cutCode answers it when no line was accepted. The
	// line at the cut gets no result: "rejected" says do not retry, and
	// senders that drop rejected lines would lose good events.
	cutCode, cutMsg := 0, ""
	// A streamed batch is read for as long as its sender sends, up to
	// -read-timeout: past -drain-timeout, and then cut unanswered. From
	// the drain on it is read no further, its lines so far answered.
	stopWatch := func() {}
	if streamed {
		stopWatch = s.cutReadOnDrain(w)
	}
	for {
		line, err := lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		n++
		if err != nil && !errors.Is(err, errLineTooLong) && streamed && s.draining.Load() {
			// The read cut by cutReadOnDrain: line n was not read in full.
			cutCode, cutMsg = http.StatusServiceUnavailable, unreadError(errTextDraining, n, "again")
			s.metrics.event(tctx, src.Name, "", outcomeUnavailable, reasonDraining)
			log.Info("batch body not read in full", "line", n, "reason", reasonDraining, "error", err)
			break
		}
		if err != nil && !errors.Is(err, errLineTooLong) {
			// The body itself failed: line n and the rest were not read.
			// The request counts as rejected in metrics.
			code, reason := readFailure(err)
			cutCode, cutMsg = code, cutError(reason, limit, n)
			s.metrics.event(tctx, src.Name, "", outcomeRejected, reason)
			log.Info("batch body not read in full", "line", n, "reason", reason, "error", err)
			break
		}
		if n == 1 && err == nil {
			// RFC 8259 lets a reader ignore a byte order mark, and NDJSON
			// written by .NET or PowerShell starts with one: its first
			// line was rejected as "not valid JSON: syntax error at byte
			// 1". It marks the body's encoding and is no part of the event.
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if err == nil && len(trimJSONSpace(line)) == 0 {
			continue
		}
		// One result per line: a stream of bad lines must not grow the
		// answer without end, so past max_lines rejected lines the batch
		// stops being read, as it does past max_lines events.
		if acks.sent >= int(src.Batch.MaxLines) {
			cutCode = http.StatusRequestEntityTooLarge
			cutMsg = unreadError(fmt.Sprintf("batch has more than %d events", src.Batch.MaxLines), n, "in another batch")
			// Counted once, as a body over batch.max_body is: the lines
			// after the cut are the sender's to send again.
			s.metrics.event(tctx, src.Name, "", outcomeRejected, reasonSize)
			break
		}
		if rejected > int(src.Batch.MaxLines) {
			// 207, not 400 ("no good line"), even with none accepted: the
			// unread lines may be good, and a sender may drop a 400 whole.
			cutCode = http.StatusMultiStatus
			cutMsg = unreadError(fmt.Sprintf("more than %d rejected lines", src.Batch.MaxLines), n, "again")
			break
		}
		var rec *kgo.Record
		var env *envelope.Envelope
		if err == nil { // else errLineTooLong
			var traceOmitted []string
			rec, env, traceOmitted, err = s.batchRecord(tctx, src, line, corr, n, kept, ct)
			if traceOmitted != nil && !traceLogged {
				// Every line's record has the same trace context: once.
				traceLogged = true
				log.Info("trace headers over the size bound not kept in the records", "headers", traceOmitted)
			}
		}
		if err != nil {
			reason := reasonMalformed
			if errors.Is(err, errLineTooLong) || errors.Is(err, errRecordTooLarge) {
				reason = reasonSize
			}
			s.metrics.event(tctx, src.Name, "", outcomeRejected, reason)
			rejected++
			msg := err.Error()
			if len(rejections) < maxLoggedRejections {
				rejections = append(rejections, loggedRejection{Line: n, Error: msg})
			}
			resp.Results = append(resp.Results, LineResult{Line: n, Status: LineRejected, Error: msg})
			continue
		}
		sum := sha256.Sum256(trimJSONSpace(line))
		if first, ok := firstOf[env.EventID]; ok && first.sum != sum {
			s.metrics.event(tctx, src.Name, "", outcomeRejected, reasonMalformed)
			rejected++
			msg := fmt.Sprintf("id %q is line %d's, with other content: an id names one event (this line is not written)", env.EventID, first.line)
			if len(rejections) < maxLoggedRejections {
				rejections = append(rejections, loggedRejection{Line: n, Error: "id repeats line " + strconv.Itoa(first.line) + " with other content"})
			}
			resp.Results = append(resp.Results, LineResult{Line: n, Status: LineRejected, Error: msg})
			continue
		} else if !ok {
			firstOf[env.EventID] = lineSum{line: n, sum: sum}
		}
		types[len(resp.Results)] = env.EventType
		sent[len(resp.Results)] = acks.sent
		resp.Results = append(resp.Results, LineResult{Line: n, ID: env.ID, EventID: env.EventID, CorrelationID: env.CorrelationID})
		acks.produce(s.w, acks.sent, rec)
	}

	stopWatch()

	// The wait is bounded by the ack timeout from when the body is in
	// (Config.AckTimeout), as a webhook's is: bounded by produceCtx alone,
	// a batch read at once waited the read timeout plus the ack timeout
	// for a Kafka that takes nothing (34 s by default), and a signed batch,
	// whose lines are produced only once its body is in, could be answered
	// past the server's WriteTimeout, that is not at all.
	waitCtx, cancelWait := context.WithTimeout(produceCtx, s.cfg.AckTimeout)
	settled, late := acks.wait(waitCtx)
	cancelWait()
	// A line not acknowledged by now is answered failed, and its sender
	// retries it. Ending produceCtx keeps it from landing later unannounced
	// where that can still be prevented, as for a webhook: the lane drops a
	// record whose context ended before it was handed to the client, and
	// the client fails the buffered records it can still withdraw.
	cancelProduce()
	// A signed batch's body is no longer referenced (each line's envelope
	// holds a copy): its reservation goes back now, not once the answer is
	// written. A sender that never read a large answer held it until the
	// write timeout (35 s measured), pinning up to batch.max_body of
	// -max-body-bytes-in-flight and refusing others' webhooks meanwhile.
	held.release()
	for ri, item := range sent {
		err, ok := settled[item]
		if !ok {
			err = late
		}
		if err != nil {
			resp.Results[ri].Status, resp.Results[ri].Error = LineFailed, "not acknowledged by kafka in time; retry this line"
			s.metrics.event(tctx, src.Name, types[ri], outcomeUnavailable, reasonKafka)
		} else {
			resp.Results[ri].Status = LineAccepted
			s.metrics.event(tctx, src.Name, types[ri], outcomeAccepted, "")
		}
	}
	for _, res := range resp.Results {
		switch res.Status {
		case LineAccepted:
			resp.Accepted++
		case LineRejected:
			resp.Rejected++
		case LineFailed:
			resp.Failed++
		}
	}
	if resp.Failed > 0 {
		// As for a webhook (handler.go): one warning a period, shared
		// with the webhooks', and a look at why (see diagnoser); the info
		// line below counts the lines of every batch.
		if lvl, quiet := s.unacked.level(time.Now()); lvl == slog.LevelWarn {
			log.Warn("not acknowledged by kafka", "outcome", "unavailable", "lines", resp.Failed, "at_debug_since_last", quiet)
			s.diagnosis.start()
		}
	}
	if len(rejections) > 0 {
		// Line numbers and our reasons only: a reason never quotes the
		// line, and the log is no place for payloads.
		log.Info("batch", "accepted", resp.Accepted, "rejected", resp.Rejected, "failed", resp.Failed, "rejections", rejections)
	} else {
		log.Info("batch", "accepted", resp.Accepted, "rejected", resp.Rejected, "failed", resp.Failed)
	}
	// The lines before a cut are answered as usual; error tells the sender
	// where to resume (resp.Error is empty so far, and cutMsg is empty when
	// nothing was cut).
	resp.Error = cutMsg
	switch {
	case resp.Failed > 0:
		reply(http.StatusServiceUnavailable, resp)
	case resp.Accepted == 0 && cutMsg != "":
		reply(cutCode, resp)
	case resp.Accepted == 0:
		if resp.Error = "no acceptable event in the batch"; len(resp.Results) == 0 {
			// No line was counted: the request is, as every answered one.
			resp.Error = "empty batch"
			s.metrics.event(tctx, src.Name, "", outcomeRejected, reasonMalformed)
		}
		reply(http.StatusBadRequest, resp)
	case resp.Rejected > 0 || cutMsg != "":
		reply(http.StatusMultiStatus, resp)
	default:
		reply(http.StatusOK, resp)
	}
}

// cutReadOnDrain ends a read of w's request body blocked when the drain
// starts (a sender streaming slowly, or pausing), by a read deadline of
// now. The returned func stops the watch; called before the handler
// returns, as the connection is not the handler's after that.
func (s *Server) cutReadOnDrain(w http.ResponseWriter) (stop func()) {
	rc := http.NewResponseController(w)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-s.stop:
			_ = rc.SetReadDeadline(time.Now())
		case <-done:
		}
	}()
	return func() { close(done); <-exited }
}

// utf8BOM is the UTF-8 byte order mark.
var utf8BOM = []byte("\ufeff")

// lineSum is the first line of a batch with an event id, and the SHA-256
// of its content.
type lineSum struct {
	line int
	sum  [sha256.Size]byte
}

// errTextBatchDisabled answers a batch for a source that exists but takes
// no batches (neither batch.tokens_env nor batch.signed).
const errTextBatchDisabled = "batches are not enabled for this source"

// batchNothingWritten follows batchTooLarge when the batch was refused
// whole.
const batchNothingWritten = ": nothing was written; send the lines in smaller batches"

// batchTooLarge says a batch is over batch.max_body, naming the limit, as
// every answer about it does.
func batchTooLarge(limit int64) string {
	return fmt.Sprintf("batch over the size limit (%d bytes)", limit)
}

// maxLoggedRejections bounds the rejections a batch's log line lists.
const maxLoggedRejections = 5

// loggedRejection is a rejected line in the batch's log line.
type loggedRejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// cutError names the first line not read and why, without the read
// error's own text (it names addresses).
func cutError(reason string, limit int64, line int) string {
	why := "the body ended early or was badly framed"
	switch reason {
	case reasonSize:
		return fmt.Sprintf("%s: line %d on was not read; send the rest in another batch", batchTooLarge(limit), line)
	case reasonReadTimeout:
		why = "the body did not arrive within the read timeout"
	case reasonSlowBody:
		why = "the body arrived too slowly (it stalled, or fell behind the minimum rate)"
	case reasonReadError:
		why = "the connection failed while the body was read"
	}
	return unreadError(why, line, "again")
}

// unreadError names line, after why, as the first line not read and not
// written; resend ("again", "in another batch") says how the sender is to
// send it and the lines after it.
func unreadError(why string, line int, resend string) string {
	return fmt.Sprintf("%s: line %d on was not read and not written; send it and the lines after it %s", why, line, resend)
}

// batchRecord validates one line and builds its record. The line's bytes,
// exactly as received, are the envelope payload. traceOmitted is record's
// omitted.
func (s *Server) batchRecord(ctx context.Context, src *source.Source, line []byte, corr string, n int, kept map[string]string, ct string) (rec *kgo.Record, env *envelope.Envelope, traceOmitted []string, err error) {
	// encoding/json would read invalid bytes as U+FFFD: two ids differing
	// only there would become one key, and one event would be lost.
	if !utf8.Valid(line) {
		return nil, nil, nil, errors.New("line is not valid UTF-8")
	}
	var bl batchLine
	if err := json.Unmarshal(line, &bl); err != nil {
		return nil, nil, nil, lineJSONError(err)
	}
	if err := checkLineFields(line); err != nil {
		return nil, nil, nil, err
	}
	// Trimmed as a webhook's are (source.Source.Extract): " inv_1" in a
	// batch and inv_1 in a webhook of the same source were two keys, so two
	// events for one. The stored payload keeps the line as sent.
	bl.ID, bl.Type, bl.SchemaVersion = strings.TrimSpace(bl.ID), strings.TrimSpace(bl.Type), strings.TrimSpace(bl.SchemaVersion)
	var missing []string
	if bl.ID == "" {
		missing = append(missing, "id")
	}
	if bl.Type == "" {
		missing = append(missing, "type")
	}
	if len(bl.Data) == 0 || string(bl.Data) == "null" {
		missing = append(missing, "data")
	}
	if len(missing) > 0 {
		if string(trimJSONSpace(line)) == "null" { // json.Unmarshal takes it, setting nothing
			return nil, nil, nil, errors.New("line is JSON null, not an object")
		}
		return nil, nil, nil, fmt.Errorf("missing required field(s): %s", strings.Join(missing, ", "))
	}
	for _, f := range [...]struct{ name, v string }{{"id", bl.ID}, {"type", bl.Type}, {"schema_version", bl.SchemaVersion}} {
		if err := source.CheckMeta(f.v); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	// An unpaired surrogate escape (\ud800) is read as U+FFFD too, and would
	// fold ids in the same way. The line is valid UTF-8, so only a value
	// holding U+FFFD can come from one: its JSON token is looked at then,
	// decoded the same way, so from the same member.
	if strings.ContainsRune(bl.ID, utf8.RuneError) || strings.ContainsRune(bl.Type, utf8.RuneError) || strings.ContainsRune(bl.SchemaVersion, utf8.RuneError) {
		var raw struct {
			ID            json.RawMessage `json:"id"`
			Type          json.RawMessage `json:"type"`
			SchemaVersion json.RawMessage `json:"schema_version"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return nil, nil, nil, lineJSONError(err)
		}
		for _, f := range [...]struct {
			name, v string
			raw     json.RawMessage
		}{{"id", bl.ID, raw.ID}, {"type", bl.Type, raw.Type}, {"schema_version", bl.SchemaVersion, raw.SchemaVersion}} {
			if err := source.CheckMetaJSON(f.v, string(f.raw)); err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	meta := source.Meta{EventType: bl.Type, EventID: bl.ID, SchemaVersion: bl.SchemaVersion}
	if meta.SchemaVersion == "" {
		meta.SchemaVersion = src.SchemaVersion.Default
	}
	if len(bl.OccurredAt) > 0 && string(bl.OccurredAt) != "null" {
		meta.OccurredAt = source.ParseTime(gjson.ParseBytes(bl.OccurredAt))
		if meta.OccurredAt == nil {
			return nil, nil, nil, errors.New("occurred_at must be an RFC 3339 time or a Unix time (seconds, or ms, µs, ns)")
		}
	}
	lineCorr := bl.CorrelationID
	if !validCorrelationID(lineCorr) {
		// The request's id, cut to leave room for the line number: a
		// longer one is refused by trace lookups.
		suffix := "-" + strconv.Itoa(n)
		lineCorr = corr[:min(len(corr), maxCorrelationLen-len(suffix))] + suffix
	}
	env = s.envelope(src, meta, lineCorr, envelope.ChannelEvents, kept, ct, bytes.Clone(line), s.now())
	rec, traceOmitted, err = s.record(ctx, env)
	return rec, env, traceOmitted, err
}

// batchFields are the members batchLine reads.
var batchFields = [...]string{"id", "type", "occurred_at", "schema_version", "correlation_id", "data"}

// checkLineFields refuses a line naming one of batchFields twice, or in
// another case: encoding/json matches names case-insensitively and keeps
// the last duplicate, so {"type":"a",...,"TYPE":"b"} became an event of
// type b whose stored payload says a, and JSON pointers (webhooks, the
// processor's templates) read the first, case-sensitively. A field that
// is none of them is refused too: a line with "timestamp" (the Standard
// Webhooks name) for occurred_at was taken without its time, silently.
func checkLineFields(line []byte) error {
	var seen [len(batchFields)]bool
	var err error
	obj := gjson.ParseBytes(line)
	if !obj.IsObject() {
		return nil // said by the decoder, naming what it is
	}
	obj.ForEach(func(k, _ gjson.Result) bool {
		name := k.String()
		known := false
		for i, f := range batchFields {
			switch {
			case name == f && seen[i]:
				err = fmt.Errorf("%s appears twice; name each field once", f)
			case name == f:
				seen[i], known = true, true
			case strings.EqualFold(name, f):
				err = fmt.Errorf("field %q: field names are lower case (%s)", name, f)
			default:
				continue
			}
			break
		}
		if err == nil && !known {
			err = fmt.Errorf("unknown field %q: a line has %s; the event's own fields go in data", shownField(name), strings.Join(batchFields[:], ", "))
		}
		return err == nil
	})
	return err
}

// shownField is a field name as an answer quotes it: at most 64 bytes of
// it, so a hostile line cannot make every answer huge.
func shownField(name string) string {
	if len(name) > 64 {
		return name[:64] + "…"
	}
	return name
}

// lineJSONError says why a line is not a batch event as JSON: where its
// syntax breaks, that it is JSON but no object (the type error then names
// no field), or which field has the wrong type. Only our field names and
// JSON's type names, never the line's text.
func lineJSONError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not valid JSON: syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("line is a JSON %s, not an object", te.Value)
		}
		return fmt.Errorf("%s is a JSON %s; want a %s", te.Field, te.Value, te.Type.Kind())
	}
	return errors.New("not valid JSON")
}

// bearerOK compares the Authorization header with each token in constant
// time (over fixed-size digests, so the comparison does not leak lengths).
func bearerOK(header string, tokens [][]byte) bool {
	got, ok := bearer.Token(header)
	if !ok {
		return false
	}
	match := false
	for _, t := range tokens { // all compared: the time tells nothing
		if bearer.Matches(got, t) {
			match = true
		}
	}
	return match
}

var errLineTooLong = errors.New("line longer than the source's max_body")

// lineReader splits NDJSON without holding more than one line (up to max
// bytes) in memory; an overlong line is skipped to its newline and reported.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its newline (or \r\n). The slice is
// valid until the following call. A line over max bytes is consumed to its
// newline and reported as errLineTooLong; memory stays within max+2.
func (l *lineReader) next() ([]byte, error) {
	l.buf = l.buf[:0]
	tooLong := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: room for \r\n
				tooLong, l.buf = true, l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if errors.Is(err, io.EOF) && !tooLong && len(l.buf) == 0 {
			return nil, io.EOF
		}
		line := trimEOL(l.buf)
		if tooLong || len(line) > l.max {
			return nil, errLineTooLong
		}
		return line, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// trimJSONSpace is line without the white space JSON allows around a
// value: space, tab, CR and LF. bytes.TrimSpace also took Unicode spaces,
// so a line of only U+00A0 or U+2028, which is no JSON, was skipped as
// blank, without a result.
func trimJSONSpace(line []byte) []byte { return bytes.Trim(line, " \t\r\n") }

// batchSource is the source a batch names: in its path, else ?source=,
// else X-Inlet-Source.
func batchSource(r *http.Request) string {
	if name := r.PathValue("source"); name != "" {
		return name
	}
	if name := r.URL.Query().Get("source"); name != "" {
		return name
	}
	return r.Header.Get("X-Inlet-Source")
}
