// Package router is the processor's handler API: an event is routed by
// (source, event type, schema version) to a Handler that decodes, validates
// and keys it; cross-cutting concerns wrap handlers as Middleware.
//
// A handler says what an event means; the processor decides what happens to
// it (deduplication, newest-wins, writing, retries), so handlers stay pure
// and a retry can never apply a side effect twice unless the handler asks
// for delivery (Deliverer), which runs only for events that passed
// deduplication and the newest-wins check.
package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/inletdev/inlet/pkg/envelope"
)

// Event is one envelope on its way through the processor.
type Event struct {
	Envelope *envelope.Envelope
	// Attempt is 1 for the first try, 2 for the first retry, and so on.
	Attempt int
}

// Output is what a handler makes of an event.
type Output struct {
	// NaturalKey identifies the business fact ("order:123:paid"); events
	// with the same natural key are duplicates whatever their vendor ids or
	// channels. Empty means the idempotency key (source:event-id).
	NaturalKey string
	// EntityKey is the key of the processed and state records
	// ("shopify:order:123"). Required.
	EntityKey string
	// OccurredAt is the business time newest-wins compares. Zero skips the
	// comparison: the event always applies.
	OccurredAt time.Time
	// Value is encoded with Schema into the processed record (and the
	// state record).
	Value any
	// Schema is the processed record's Avro schema, registered under
	// Subject. Handlers built from the same schema text share one ID.
	Schema avro.Schema
	// SchemaText is the schema as written (registered as is: hamba's
	// canonical String() drops defaults and docs).
	SchemaText string
	// Subject is the registry subject; empty means
	// "<processed topic>-<record full name>".
	Subject string
	// ContractVersion names the payload contract version that read the
	// event, for logs and metrics.
	ContractVersion string
}

// Handler turns an event into its Output. It must be safe for concurrent
// use and free of side effects. Errors: a *ValidationError (or any error
// for which IsValidation is true) sends the event to the invalid topic;
// anything else is a processing failure, retried through the tiers, unless
// wrapped in retry.Permanent, which goes straight to the DLQ. A nil Output with a nil
// error is a handler bug: the processor sends the event to the invalid topic.
type Handler interface {
	Handle(ctx context.Context, ev *Event) (*Output, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev *Event) (*Output, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev *Event) (*Output, error) { return f(ctx, ev) }

// Deliverer is implemented by handlers with a side effect (an HTTP sink, a
// database write). Deliver runs after deduplication and the newest-wins
// check and before the output is committed; it must be idempotent, since a
// crash after Deliver and before the commit delivers again.
type Deliverer interface {
	Deliver(ctx context.Context, ev *Event, out *Output) error
}

// Middleware wraps a Handler. Wrappers keep the wrapped handler's Deliver
// (see Wrap).
type Middleware func(Handler) Handler

// Wrap applies mws to h, the first one outermost. If h is a Deliverer the
// result is too.
func Wrap(h Handler, mws ...Middleware) Handler {
	out := h
	for i := len(mws) - 1; i >= 0; i-- {
		out = mws[i](out)
	}
	if d, ok := h.(Deliverer); ok {
		if _, still := out.(Deliverer); !still {
			return delivering{out, d}
		}
	}
	return out
}

type delivering struct {
	Handler
	Deliverer
}

// Route is a handler's place in the router: exact source, an event type
// that may use * as a wildcard, and an exact schema version or "*".
type Route struct {
	Source    string
	EventType string
	Version   string
}

func (r Route) String() string { return r.Source + "/" + r.EventType + "@" + r.Version }

// Router finds the handler for (source, event type, version).
type Router struct {
	mu     sync.RWMutex
	routes []entry
}

type entry struct {
	route Route
	h     Handler
}

// ErrNoHandler is returned by Lookup when nothing handles an event. The
// processor sends it to the invalid topic with reason "no handler", from
// where it is reprocessed once a handler ships.
var ErrNoHandler = errors.New("no handler")

// New returns an empty Router.
func New() *Router { return &Router{} }

// Handle registers h for rt. A more specific route wins over a less
// specific one regardless of order: exact version over "*", exact event
// type over a glob, a longer glob over a shorter one.
func (r *Router) Handle(rt Route, h Handler) error {
	if rt.Source == "" || rt.EventType == "" || rt.Version == "" || h == nil {
		return fmt.Errorf("router: incomplete route %s", rt)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.routes {
		if e.route == rt {
			return fmt.Errorf("router: route %s registered twice", rt)
		}
	}
	r.routes = append(r.routes, entry{rt, h})
	return nil
}

// Lookup returns the handler for an event, or ErrNoHandler naming what
// was missing.
func (r *Router) Lookup(source, eventType, version string) (Handler, Route, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	best, bestScore := -1, -1
	typeKnown := false
	for i, e := range r.routes {
		if e.route.Source != source || !Match(e.route.EventType, eventType) {
			continue
		}
		typeKnown = true
		if e.route.Version != "*" && e.route.Version != version {
			continue
		}
		// Equal specificity (say "invoice.*" and "*.created" for
		// invoice.created): the smaller pattern, so that every instance
		// picks the same handler whatever the order routes were added in
		// (a sources file's events are a map).
		if s := specificity(e.route); s > bestScore || (s == bestScore && e.route.EventType < r.routes[best].route.EventType) {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		if typeKnown {
			return nil, Route{}, fmt.Errorf("%w for version %q of %s/%s", ErrNoHandler, version, source, eventType)
		}
		return nil, Route{}, fmt.Errorf("%w for %s/%s", ErrNoHandler, source, eventType)
	}
	return r.routes[best].h, r.routes[best].route, nil
}

func specificity(rt Route) int {
	s := 0
	if rt.Version != "*" {
		s += 1 << 20
	}
	if !strings.Contains(rt.EventType, "*") {
		s += 1 << 19
	}
	return s + len(rt.EventType)
}

// Match matches name against pattern, where * stands for any run of
// characters (including / and .).
func Match(pattern, name string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == name
	}
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}
