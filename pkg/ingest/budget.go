package ingest

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/inletdev/inlet/pkg/source"
)

// errBodyBudget: the request bodies being read or waiting for Kafka
// already hold -max-body-bytes-in-flight. Nothing of the request was
// written: 503 with Retry-After, so the sender comes back once others are
// done.
var errBodyBudget = errors.New("request bodies in memory at the process's bound")

// bodyBudget bounds the request-body bytes held in memory by all requests
// together. A body is read before its signature is checked and held until
// Kafka answers (up to the read timeout plus the ack timeout): without a
// bound, many slow or large requests could exhaust memory.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// reservation is one request's share of a budget; the zero value (no
// budget) reserves nothing, for readers used outside a request.
type reservation struct {
	b *bodyBudget
	n int64
}

// grow reserves n more bytes, or returns errBodyBudget and reserves
// nothing. Compare-and-swap, not add-then-undo: a refused request's
// passing add would refuse others that fit.
func (r *reservation) grow(n int64) error {
	if r.b == nil || n <= 0 {
		return nil
	}
	for {
		used := r.b.used.Load()
		if used+n > r.b.limit {
			return errBodyBudget
		}
		if r.b.used.CompareAndSwap(used, used+n) {
			r.n += n
			return nil
		}
	}
}

// release returns everything reserved; call it once the body is no longer
// referenced (the handler returned).
func (r *reservation) release() {
	if r.n > 0 {
		r.b.used.Add(-r.n)
		r.n = 0
	}
}

// CheckSources reports sources whose bodies could never be read within
// MaxBodyBytesInFlight: a webhook's max_body, or a signed batch's
// batch.max_body (read whole before it is verified), larger than it would
// be refused every time, with a 503 its sender retries forever.
func (c *Config) CheckSources(sources *source.File) error {
	var errs []error
	for _, name := range sources.Names() {
		src, _ := sources.Get(name)
		if int64(src.MaxBody) > int64(c.MaxBodyBytesInFlight) {
			errs = append(errs, fmt.Errorf("source %q: max_body (%d bytes) is over max-body-bytes-in-flight (%d): its bodies could never be read; raise the flag or lower max_body", name, src.MaxBody, c.MaxBodyBytesInFlight))
		}
		if src.Batch.Signed && int64(src.Batch.MaxBody) > int64(c.MaxBodyBytesInFlight) {
			errs = append(errs, fmt.Errorf("source %q: batch.max_body (%d bytes) is over max-body-bytes-in-flight (%d): a signed batch is read whole before it is verified, so one that large could never be read; raise the flag or lower batch.max_body", name, src.Batch.MaxBody, c.MaxBodyBytesInFlight))
		}
	}
	return errors.Join(errs...)
}
