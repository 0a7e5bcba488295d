// Package handlers builds the router of every binary that processes
// events: the processor, `make run` (services/dev) and `inletctl replay`.
// It holds the sources file's declarative handlers and the Go handlers
// listed in goHandlers, so a Go handler added there is served by all three
// (a binary missing one would send its events to the invalid topic with
// "no handler").
package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/declarative"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
)

// Registration is one Go handler and the route it serves. New is called
// once per router, so a handler can hold state of its own (a parsed
// schema, a client) without sharing it between binaries' routers.
type Registration struct {
	Route router.Route
	New   func() (router.Handler, error)
	// Schemas are the processed schemas the handler's Outputs carry, as
	// written (Output.SchemaText) and with Output.Subject when it sets one:
	// `inletctl schemas check` checks them against the registry before a
	// deploy, as it checks the contracts'. At least one; an Output whose
	// schema is not listed sends its event to the invalid topic (a handler
	// bug, as a nil Output is), so no schema reaches the registry unchecked.
	Schemas []Schema
	// EntityKeyPrefix is the text every EntityKey the handler's Outputs
	// carry starts with ("acme:shipment:"). Required. Entity keys are one
	// namespace for every source (newest-wins state, the entity lock, the
	// processed and state record key), and the sources file's entity_key
	// templates are checked against each other's at start: the prefix is
	// how a Go handler's keys, built in code, are checked too. The start
	// refuses a prefix under which another source's events entry, or
	// another source's Go handler, could write the same key (unless one
	// source lists the other in share_entities_with); an Output whose
	// EntityKey does not start with it sends its event to the invalid
	// topic.
	EntityKeyPrefix string
}

// Schema is a processed schema a Go handler writes with.
type Schema struct {
	Route router.Route `json:"-"` // the handler's, filled in by Schemas
	// Text is the schema as the handler's Outputs carry it (SchemaText).
	Text string
	// Subject is the Outputs' Subject: empty for the processed and state
	// topics' "<topic>-<record full name>".
	Subject string
}

// goHandlers are Inlet's Go handlers. Add one here (see
// pkg/router/example_test.go for a handler, and README's "A handler in
// Go"):
//
//	{Route: router.Route{Source: "acme", EventType: "shipment.*", Version: "v1"},
//		New:             func() (router.Handler, error) { return newShipments() },
//		Schemas:         []Schema{{Text: shipmentSchema}},
//		EntityKeyPrefix: "acme:shipment:"},
//
// A Go route is more specific than the sources file's (which take every
// version), so one for an exact version wins over an events entry for the
// same types.
var goHandlers []Registration

// Router returns the router for sources: a declarative handler for every
// events entry (with the contracts shipped in schemas/contracts) and every
// Go handler in goHandlers.
func Router(sources *source.File) (*router.Router, error) {
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		return nil, err
	}
	return RouterWith(sources, reg)
}

// RouterWith is Router with the contracts of schemas/contracts already
// loaded (contract.Load(contracts.FS)): for `inletctl schemas check`, which
// reads them for its own checks and need not parse them twice. Any other
// registry builds a router other than the processor's.
func RouterWith(sources *source.File, reg *contract.Registry) (*router.Router, error) {
	return build(sources, reg, goHandlers)
}

// Schemas returns the processed schemas of the Go handlers in goHandlers,
// each with its handler's route, for `inletctl schemas check`.
func Schemas() []Schema { return schemas(goHandlers) }

func schemas(gos []Registration) []Schema {
	var out []Schema
	for _, g := range gos {
		for _, s := range g.Schemas {
			s.Route = g.Route
			out = append(out, s)
		}
	}
	return out
}

func build(sources *source.File, reg *contract.Registry, gos []Registration) (*router.Router, error) {
	rt := router.New()
	if err := declarative.Register(rt, sources, reg); err != nil {
		return nil, err
	}
	for i, g := range gos {
		if g.New == nil {
			return nil, fmt.Errorf("go handler %s: no constructor", g.Route)
		}
		h, err := g.New()
		if err != nil {
			return nil, fmt.Errorf("go handler %s: %w", g.Route, err)
		}
		if h == nil {
			return nil, fmt.Errorf("go handler %s: constructor returned no handler", g.Route)
		}
		if len(g.Schemas) == 0 {
			return nil, fmt.Errorf("go handler %s: no Schemas: list the processed schemas its Outputs carry, which inletctl schemas check checks", g.Route)
		}
		if err := sources.CheckEntityKeyPrefix(g.Route.Source, g.EntityKeyPrefix); err != nil {
			return nil, fmt.Errorf("go handler %s: %w", g.Route, err)
		}
		for _, o := range gos[:i] {
			if o.Route.Source != g.Route.Source && o.EntityKeyPrefix != "" && prefixesMeet(o.EntityKeyPrefix, g.EntityKeyPrefix) && !sharing(sources, o.Route.Source, g.Route.Source) {
				return nil, fmt.Errorf("go handler %s: entity-key prefix %q can start the same key as go handler %s's %q: "+
					"entity keys are shared by all sources, so one handler's events could overwrite the other's entities; give each source's handlers a prefix of their own, such as %q",
					g.Route, g.EntityKeyPrefix, o.Route, o.EntityKeyPrefix, g.Route.Source+":")
			}
		}
		if err := rt.Handle(g.Route, router.Wrap(h, declared(g), prefixed(g))); err != nil {
			return nil, fmt.Errorf("go handler: %w", err)
		}
	}
	return rt, nil
}

// prefixesMeet reports whether a key could start with both a and b.
func prefixesMeet(a, b string) bool { return strings.HasPrefix(a, b) || strings.HasPrefix(b, a) }

// sharing reports whether either source lists the other in its
// share_entities_with.
func sharing(f *source.File, a, b string) bool {
	sa, _ := f.Get(a)
	sb, _ := f.Get(b)
	return (sa != nil && slices.Contains(sa.ShareEntitiesWith, b)) || (sb != nil && slices.Contains(sb.ShareEntitiesWith, a))
}

// prefixed refuses an Output whose EntityKey does not start with its
// Registration's EntityKeyPrefix: the start checked the prefix against
// every other source's keys, not the keys the handler builds.
func prefixed(g Registration) router.Middleware {
	return func(next router.Handler) router.Handler {
		return router.HandlerFunc(func(ctx context.Context, ev *router.Event) (*router.Output, error) {
			out, err := next.Handle(ctx, ev)
			if err != nil || out == nil || out.EntityKey == "" {
				return out, err // no entity key: the processor refuses it
			}
			if !strings.HasPrefix(out.EntityKey, g.EntityKeyPrefix) {
				return nil, &router.ValidationError{Reason: fmt.Sprintf("go handler %s returned entity key %q, outside its Registration.EntityKeyPrefix %q: the start checked only that prefix against the other sources' entity keys", g.Route, out.EntityKey, g.EntityKeyPrefix)}
			}
			return out, nil
		})
	}
}

// declared refuses an Output whose schema its Registration does not list:
// `inletctl schemas check` would not have checked it against the registry.
func declared(g Registration) router.Middleware {
	return func(next router.Handler) router.Handler {
		return router.HandlerFunc(func(ctx context.Context, ev *router.Event) (*router.Output, error) {
			out, err := next.Handle(ctx, ev)
			if err != nil || out == nil {
				return out, err
			}
			if !slices.ContainsFunc(g.Schemas, func(s Schema) bool { return s.Text == out.SchemaText && s.Subject == out.Subject }) {
				return nil, &router.ValidationError{Reason: fmt.Sprintf("go handler %s returned a processed schema (subject %q) its Registration.Schemas does not list, so inletctl schemas check did not check it", g.Route, out.Subject)}
			}
			return out, nil
		})
	}
}
