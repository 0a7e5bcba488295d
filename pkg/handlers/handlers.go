// Package handlers builds the router of every binary that processes
// events: the processor, `make run` (services/dev) and `inletctl replay`.
// It holds the sources file's declarative handlers and the Go handlers
// listed in goHandlers, so a Go handler added there is served by all three
// (a binary missing one would send its events to the invalid topic with
// "no handler").
package handlers

import (
	"fmt"

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
}

// goHandlers are Inlet's Go handlers. Add one here (see
// pkg/router/example_test.go for a handler, and README's "A handler in
// Go"):
//
//	{Route: router.Route{Source: "acme", EventType: "shipment.*", Version: "v1"},
//		New: func() (router.Handler, error) { return newShipments() }},
//
// A Go route is more specific than the sources file's (which take every
// version), so one for an exact version wins over an events entry for the
// same types.
var goHandlers []Registration

// Router returns the router for sources: a declarative handler for every
// events entry (with the contracts shipped in schemas/contracts) and every
// Go handler in goHandlers.
func Router(sources *source.File) (*router.Router, error) {
	return build(sources, goHandlers)
}

func build(sources *source.File, gos []Registration) (*router.Router, error) {
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		return nil, err
	}
	rt := router.New()
	if err := declarative.Register(rt, sources, reg); err != nil {
		return nil, err
	}
	for _, g := range gos {
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
		if err := rt.Handle(g.Route, h); err != nil {
			return nil, fmt.Errorf("go handler: %w", err)
		}
	}
	return rt, nil
}
