package handlers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/schemas/contracts"
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

// shipped is the contracts of schemas/contracts, as Router loads them.
func shipped(t *testing.T) *contract.Registry {
	t.Helper()
	reg, err := contract.Load(contracts.FS)
	if err != nil {
		t.Fatal(err)
	}
	return reg
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
		{Route: router.Route{Source: "acme", EventType: "invoice.paid", Version: "v1"}, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: markerSchemas, EntityKeyPrefix: "acme:"},
		{Route: router.Route{Source: "inhouse", EventType: "shipment.*", Version: "*"}, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: markerSchemas, EntityKeyPrefix: "inhouse:"},
	}
	rt, err := build(parse(t), shipped(t), gos)
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
		"route twice":       {[]Registration{{Route: route, New: ok, Schemas: markerSchemas, EntityKeyPrefix: "acme:"}, {Route: route, New: ok, Schemas: markerSchemas, EntityKeyPrefix: "acme:"}}, "registered twice"},
		"same as sources'":  {[]Registration{{Route: router.Route{Source: "acme", EventType: "invoice.*", Version: "*"}, New: ok, Schemas: markerSchemas, EntityKeyPrefix: "acme:"}}, "registered twice"},
		"incomplete route":  {[]Registration{{Route: router.Route{Source: "acme"}, New: ok, Schemas: markerSchemas, EntityKeyPrefix: "acme:"}}, "incomplete route"},
		"no prefix":         {[]Registration{{Route: route, New: ok, Schemas: markerSchemas}}, `go handler acme/invoice.paid@v1: no entity-key prefix: name the text every entity key the handler returns starts with, such as "acme:"`},
		"nil handler":       {[]Registration{{Route: route, New: func() (router.Handler, error) { return nil, nil }}}, "constructor returned no handler"},
		"no schemas":        {[]Registration{{Route: route, New: ok}}, "go handler acme/invoice.paid@v1: no Schemas"},
	} {
		if _, err := build(parse(t), shipped(t), c.gos); err == nil || !strings.Contains(err.Error(), c.want) {
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
	gos := []Registration{{Route: route, New: func() (router.Handler, error) { return marker{}, nil }, Schemas: []Schema{{Text: other}}, EntityKeyPrefix: "inhouse:"}}
	t.Run("listed for schemas check", func(t *testing.T) {
		got := schemas(gos)
		if len(got) != 1 || got[0].Route != route || got[0].Text != other {
			t.Errorf("schemas = %+v", got)
		}
	})
	t.Run("an Output with a schema not listed is invalid", func(t *testing.T) {
		// schemas check checked the listed schemas only: one the handler
		// writes but does not list would reach the registry unchecked.
		rt, err := build(parse(t), shipped(t), gos)
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

// poacher is a Go handler keying its events in another source's entity
// namespace: acme's invoices, which the sources file keys
// "acme:invoice:{/data/object/id}".
type poacher struct{ key string }

func (p poacher) Handle(context.Context, *router.Event) (*router.Output, error) {
	return &router.Output{EntityKey: p.key, SchemaText: markerSchema}, nil
}

// A Go handler builds its entity keys in code, where the sources file's
// overlap check (source.Parse) never saw them: a crm handler could write
// acme's entities, overwriting their state or making acme's real updates
// stale. The start or the event must refuse it.
func TestGoHandlerCannotWriteAnotherSourcesEntities(t *testing.T) {
	crm := router.Route{Source: "crm", EventType: "customer.*", Version: "v1"}
	reg := func(r router.Route, prefix, key string) Registration {
		return Registration{Route: r, New: func() (router.Handler, error) { return poacher{key: key}, nil }, Schemas: markerSchemas, EntityKeyPrefix: prefix}
	}
	handle := func(t *testing.T, f *source.File, gos []Registration) error {
		t.Helper()
		rt, err := build(f, shipped(t), gos)
		if err != nil {
			t.Fatal(err)
		}
		h, _, _ := rt.Lookup("crm", "customer.updated", "v1")
		_, err = h.Handle(context.Background(), &router.Event{})
		return err
	}
	t.Run("no prefix: refused at start", func(t *testing.T) {
		gos := []Registration{reg(crm, "", "acme:invoice:in_1")}
		if _, err := build(parse(t), shipped(t), gos); err == nil || !strings.Contains(err.Error(), "no entity-key prefix") {
			t.Errorf("build: %v, want the registration without EntityKeyPrefix refused", err)
		}
	})
	for _, prefix := range []string{"acme:", "acme:invoice:in_", "ac", ""} {
		t.Run("a prefix inside acme's keys: refused at start/"+prefix, func(t *testing.T) {
			_, err := build(parse(t), shipped(t), []Registration{reg(crm, prefix, prefix+"x")})
			if err == nil || !strings.Contains(err.Error(), "go handler crm/customer.*@v1") {
				t.Errorf("build with prefix %q: %v, want it refused", prefix, err)
			}
		})
	}
	t.Run("a key outside the prefix: invalid", func(t *testing.T) {
		err := handle(t, parse(t), []Registration{reg(crm, "crm:", "acme:invoice:in_1")})
		if !router.IsValidation(err) || !strings.Contains(err.Error(), `outside its Registration.EntityKeyPrefix "crm:"`) {
			t.Errorf("Handle: %v, want a validation error naming the prefix", err)
		}
	})
	t.Run("a key inside the prefix: served", func(t *testing.T) {
		if err := handle(t, parse(t), []Registration{reg(crm, "crm:", "crm:customer:1")}); err != nil {
			t.Errorf("Handle: %v", err)
		}
	})
	t.Run("another source's go handler: refused at start", func(t *testing.T) {
		gos := []Registration{reg(crm, "crm:", "crm:1"), reg(router.Route{Source: "erp", EventType: "customer.*", Version: "v1"}, "crm:customer:", "crm:customer:1")}
		if _, err := build(parse(t), shipped(t), gos); err == nil || !strings.Contains(err.Error(), `can start the same key as go handler crm/customer.*@v1's "crm:"`) {
			t.Errorf("build: %v, want the erp handler refused", err)
		}
	})
	t.Run("the same source's handlers and entries may share", func(t *testing.T) {
		gos := []Registration{reg(router.Route{Source: "acme", EventType: "invoice.paid", Version: "v1"}, "acme:invoice:", "acme:invoice:1"),
			reg(router.Route{Source: "acme", EventType: "invoice.paid", Version: "v2"}, "acme:", "acme:invoice:1")}
		if _, err := build(parse(t), shipped(t), gos); err != nil {
			t.Error(err)
		}
	})
	t.Run("share_entities_with", func(t *testing.T) {
		f, err := source.Parse([]byte(sourcesDoc+`  crm:
    kind: none
    share_entities_with: [acme]
`), source.WithoutSecrets())
		if err != nil {
			t.Fatal(err)
		}
		if err := handle(t, f, []Registration{reg(crm, "acme:invoice:", "acme:invoice:in_1")}); err != nil {
			t.Errorf("crm shares acme's entities: %v", err)
		}
	})
}
