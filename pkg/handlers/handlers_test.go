package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
)

const sourcesDoc = `sources:
  acme:
    kind: none
    events:
      "invoice.*":
        contract: stripe/invoice
        entity_key: "acme:invoice:{/data/object/id}"
`

func parse(t *testing.T) *source.File {
	t.Helper()
	f, err := source.Parse([]byte(sourcesDoc), source.WithoutSecrets())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// marker is a Go handler that says it was the one called.
type marker struct{}

const markerSchema = `{"type":"record","name":"Marker","namespace":"acme","fields":[{"name":"id","type":"string"}]}`

func (marker) Handle(context.Context, *router.Event) (*router.Output, error) {
	return &router.Output{NaturalKey: "from-go", SchemaText: markerSchema}, nil
}

var markerSchemas = []Schema{{Text: markerSchema}}

func TestRouterHoldsDeclarativeAndGoHandlers(t *testing.T) {
	gos := []Registration{
		{Route: router.Route{Source: "acme", EventType: "invoice.paid", Version: "v1"}, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: markerSchemas},
		{Route: router.Route{Source: "inhouse", EventType: "shipment.*", Version: "*"}, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: markerSchemas},
	}
	rt, err := build(parse(t), gos)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		source, typ, version string
		route                string
	}{
		{"acme", "invoice.paid", "v1", "acme/invoice.paid@v1"},          // the Go handler, more specific
		{"acme", "invoice.created", "v1", "acme/invoice.*@*"},           // the sources file's entry
		{"acme", "invoice.paid", "2024-06-20", "acme/invoice.*@*"},      // Go serves v1 only
		{"inhouse", "shipment.delivered", "v7", "inhouse/shipment.*@*"}, // a source with no events entry
	} {
		_, route, err := rt.Lookup(c.source, c.typ, c.version)
		if err != nil || route.String() != c.route {
			t.Errorf("Lookup(%s, %s, %s) = %s, %v; want %s", c.source, c.typ, c.version, route, err, c.route)
		}
	}
	h, _, _ := rt.Lookup("inhouse", "shipment.delivered", "v1")
	if out, err := h.Handle(context.Background(), &router.Event{}); err != nil || out.NaturalKey != "from-go" {
		t.Errorf("Go handler: %+v, %v", out, err)
	}
}

func TestRouterRefusesBadGoHandlers(t *testing.T) {
	route := router.Route{Source: "acme", EventType: "invoice.paid", Version: "v1"}
	ok := func() (router.Handler, error) { return marker{}, nil }
	for name, c := range map[string]struct {
		gos  []Registration
		want string
	}{
		"no constructor":    {[]Registration{{Route: route}}, "go handler acme/invoice.paid@v1: no constructor"},
		"constructor fails": {[]Registration{{Route: route, New: func() (router.Handler, error) { return nil, errors.New("bad schema") }}}, "go handler acme/invoice.paid@v1: bad schema"},
		"route twice":       {[]Registration{{Route: route, New: ok, Schemas: markerSchemas}, {Route: route, New: ok, Schemas: markerSchemas}}, "registered twice"},
		"same as sources'":  {[]Registration{{Route: router.Route{Source: "acme", EventType: "invoice.*", Version: "*"}, New: ok, Schemas: markerSchemas}}, "registered twice"},
		"incomplete route":  {[]Registration{{Route: router.Route{Source: "acme"}, New: ok, Schemas: markerSchemas}}, "incomplete route"},
		"nil handler":       {[]Registration{{Route: route, New: func() (router.Handler, error) { return nil, nil }}}, "constructor returned no handler"},
		"no schemas":        {[]Registration{{Route: route, New: ok}}, "go handler acme/invoice.paid@v1: no Schemas"},
	} {
		if _, err := build(parse(t), c.gos); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestRouterServesShippedHandlers(t *testing.T) {
	if _, err := Router(parse(t)); err != nil {
		t.Fatal(err)
	}
}

func TestGoHandlerSchemas(t *testing.T) {
	route := router.Route{Source: "inhouse", EventType: "shipment.*", Version: "v1"}
	other := `{"type":"record","name":"Other","fields":[{"name":"id","type":"string"}]}`
	gos := []Registration{{Route: route, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: []Schema{{Text: other}}}}
	t.Run("listed for schemas check", func(t *testing.T) {
		got := schemas(gos)
		if len(got) != 1 || got[0].Route != route || got[0].Text != other {
			t.Errorf("schemas = %+v", got)
		}
	})
	t.Run("an Output with a schema not listed is invalid", func(t *testing.T) {
		// schemas check checked the listed schemas only: one the handler
		// writes but does not list would reach the registry unchecked.
		rt, err := build(parse(t), gos)
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := rt.Lookup("inhouse", "shipment.delivered", "v1")
		_, err = h.Handle(context.Background(), &router.Event{})
		if !router.IsValidation(err) || !strings.Contains(err.Error(), "does not list") {
			t.Errorf("Handle: %v, want a validation error saying the schema is not listed", err)
		}
	})
}
