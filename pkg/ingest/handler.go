package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/source"
)

// Record header names on the raw topic (DESIGN.md "Record headers").
const (
	HeaderCorrelationID = "correlation-id"
	HeaderTraceparent   = "traceparent"
	HeaderSource        = "inlet-source"
	HeaderEventType     = "inlet-event-type"
)

// Response is the JSON body of every webhook answer.
type Response struct {
	ID            string `json:"id,omitempty"`
	EventID       string `json:"event_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	Error         string `json:"error,omitempty"`
}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	corr := correlationID(r.Header)
	w.Header().Set("X-Correlation-ID", corr)
	log := s.log.With("correlation_id", corr, "source", name, "stage", "ingest")
	src, ok := s.sources.Get(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, Response{CorrelationID: corr, Error: "unknown source"})
		return
	}
	body, status, err := readBody(w, r, int64(src.MaxBody))
	if err != nil {
		log.Info("rejected", "outcome", "rejected", "reason", "body", "status", status, "error", err)
		writeJSON(w, status, Response{CorrelationID: corr, Error: http.StatusText(status)})
		return
	}
	received := s.now()
	if err := src.Provider().Verify(r.Header, body, received); err != nil {
		// The error names what failed (missing, malformed, stale,
		// mismatch) for our logs only; the sender learns nothing more.
		log.Warn("rejected", "outcome", "rejected", "reason", "signature", "error", err)
		writeJSON(w, http.StatusUnauthorized, Response{CorrelationID: corr, Error: "signature verification failed"})
		return
	}
	if src.RequiresJSON() && !json.Valid(body) {
		log.Info("rejected", "outcome", "rejected", "reason", "malformed")
		writeJSON(w, http.StatusBadRequest, Response{CorrelationID: corr, Error: "body is not valid JSON"})
		return
	}
	meta, err := src.Extract(r.Header, body)
	if err != nil {
		log.Info("rejected", "outcome", "rejected", "reason", "malformed", "error", err)
		writeJSON(w, http.StatusBadRequest, Response{CorrelationID: corr, Error: err.Error()})
		return
	}
	env := s.envelope(src, meta, corr, envelope.ChannelWebhook, r.Header, body, received)
	rec, err := s.record(env, r.Header.Get("Traceparent"))
	if err != nil {
		log.Error("envelope encoding failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, Response{CorrelationID: corr, Error: "internal error"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.AckTimeout)
	defer cancel()
	log = log.With("event_type", env.EventType, "event_id", env.EventID)
	if err := s.w.writeOne(ctx, rec); err != nil {
		log.Warn("not acknowledged by kafka", "outcome", "unavailable", "error", err)
		s.unavailable(w, "kafka did not acknowledge the event in time; retry")
		return
	}
	log.Debug("accepted", "outcome", "accepted", "id", env.ID)
	writeJSON(w, http.StatusAccepted, Response{ID: env.ID, EventID: env.EventID, CorrelationID: corr})
}

// readBody reads at most limit bytes; a body of exactly limit is accepted.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, error) {
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, errors.New("content-length over the limit")
	}
	size := r.ContentLength
	if size < 0 || size > limit {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, err
	case err != nil:
		return nil, http.StatusBadRequest, err
	}
	return buf.Bytes(), 0, nil
}

func (s *Server) envelope(src *source.Source, m source.Meta, corr, channel string, h http.Header, body []byte, received time.Time) *envelope.Envelope {
	kept := make(map[string]string, 4)
	for _, name := range src.KeptHeaders() {
		if v := h.Get(name); v != "" {
			kept[name] = v
		}
	}
	ct := h.Get("Content-Type")
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

func (s *Server) record(e *envelope.Envelope, traceparent string) (*kgo.Record, error) {
	val, err := s.codec.Encode(e)
	if err != nil {
		return nil, err
	}
	hdrs := []kgo.RecordHeader{
		{Key: HeaderCorrelationID, Value: []byte(e.CorrelationID)},
		{Key: HeaderSource, Value: []byte(e.Source)},
		{Key: HeaderEventType, Value: []byte(e.EventType)},
	}
	if validTraceparent(traceparent) {
		hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderTraceparent, Value: []byte(traceparent)})
	}
	return &kgo.Record{
		Topic:     s.topic,
		Key:       []byte(e.IdempotencyKey),
		Value:     val,
		Headers:   hdrs,
		Timestamp: e.ReceivedAt,
	}, nil
}

// newID is a UUIDv7: time-ordered, so ids sort by arrival.
func newID(t time.Time) string {
	id, err := uuid.NewV7()
	if err != nil { // only when the random source fails
		return strconv.FormatInt(t.UnixNano(), 36)
	}
	return id.String()
}

func (s *Server) unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
	writeJSON(w, http.StatusServiceUnavailable, Response{CorrelationID: w.Header().Get("X-Correlation-ID"), Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write response", "error", err)
	}
}
