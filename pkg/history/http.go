package history

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

var validID = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// ErrTextBadID is the answer to an id no history can be kept under.
const ErrTextBadID = "bad correlation id: one is 1 to 128 printable ASCII characters without spaces"

// ValidID reports whether a history can be kept under id: ingest keeps
// no other correlation id.
func ValidID(id string) bool { return validID.MatchString(id) }

// Handler serves GET /v1/trace/{id}: the history of one correlation id as
// JSON, oldest stage first ("stages"), and how many older entries were
// dropped to keep it within its bound ("dropped_entries", 0 when none);
// 404 when none is kept; 503 with Retry-After when Redis cannot be read
// within 5 s.
func (s *Store) Handler() http.Handler { return s.HandlerWith(nil) }

// readTimeout bounds the handler's Redis read, below inletctl trace's
// 10 s. It holds on a client whose calls honour their context's deadline
// (ContextTimeoutEnabled, as service.RedisOptions.NewClient makes the
// processor's and the dev stack's); go-redis's default client checks the
// deadline only between attempts, after each one's read timeout.
const readTimeout = 5 * time.Second

// ErrTextUnavailable begins the 503 the handler answers when the history
// cannot be read: the error follows (go-redis's, never the password),
// and, when Redis did not answer in time, how long it was given.
const ErrTextUnavailable = "history store (Redis) unavailable"

// moreTimeout bounds a More: past it the history is answered without
// what More would have added, and a warning.
const moreTimeout = 5 * time.Second

// More returns entries kept elsewhere about a correlation id: operators'
// decisions, which are on the audit topic and not in Redis.
type More func(ctx context.Context, corr string) ([]Entry, error)

// HandlerWith is Handler, with the entries more returns merged in by time
// (see Merge). They make a history of their own when Redis keeps none
// (past its retention). When more fails, or takes longer than 5 s, the
// history is answered all the same, with "warning" saying what is missing.
func (s *Store) HandlerWith(more More) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		w.Header().Set("Content-Type", "application/json")
		if !validID.MatchString(id) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": ErrTextBadID})
			return
		}
		// Bounded: against a Redis that took the connection and never
		// answered, the read waited out go-redis's read timeout and its
		// retries, past inletctl trace's 10 s, which then blamed the
		// address.
		rctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		h, err := s.Read(rctx, id)
		cancel()
		if err != nil {
			if r.Context().Err() != nil {
				return // the caller left: nobody reads an answer
			}
			why := err.Error()
			if rctx.Err() != nil {
				why = fmt.Sprintf("no answer within %v (%v)", readTimeout, err)
			}
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": ErrTextUnavailable + ": " + why})
			return
		}
		answer := map[string]any{"correlation_id": id}
		if more != nil {
			// Bounded: with Kafka hung the read waited for the caller,
			// and inletctl trace gave up after 10 s blaming -admin-url,
			// the history read above never shown.
			mctx, cancel := context.WithTimeout(r.Context(), moreTimeout)
			extra, err := more(mctx, id)
			cancel()
			if err != nil {
				answer["warning"] = "operator decisions not shown: " + err.Error()
			}
			h.Entries = Merge(h.Entries, extra)
		}
		if len(h.Entries) == 0 {
			w.WriteHeader(http.StatusNotFound)
			answer["error"] = "no history for this correlation id (unknown, not processed yet, or past retention)"
			_ = json.NewEncoder(w).Encode(answer)
			return
		}
		answer["stages"], answer["dropped_entries"] = h.Entries, h.Dropped
		_ = json.NewEncoder(w).Encode(answer)
	})
}
