package router

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func named(name string) Handler {
	return HandlerFunc(func(context.Context, *Event) (*Output, error) { return &Output{EntityKey: name}, nil })
}

func TestLookupPrefersTheMostSpecificRoute(t *testing.T) {
	r := New()
	for _, rt := range []struct {
		route Route
		name  string
	}{
		{Route{"shop", "orders/*", "*"}, "any-order"},
		{Route{"shop", "orders/*", "2024-07"}, "order-2024-07"},
		{Route{"shop", "orders/updated", "*"}, "updated"},
		{Route{"shop", "*", "*"}, "anything"},
		{Route{"stripe", "payment_intent.*", "*"}, "pi"},
	} {
		if err := r.Handle(rt.route, named(rt.name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ src, typ, ver, want string }{
		{"shop", "orders/create", "2025-01", "any-order"},
		{"shop", "orders/create", "2024-07", "order-2024-07"},
		{"shop", "orders/updated", "2024-07", "order-2024-07"}, // exact version beats exact type
		{"shop", "orders/updated", "2025-01", "updated"},
		{"shop", "products/create", "v1", "anything"},
		{"stripe", "payment_intent.succeeded", "2024-06-20", "pi"},
	}
	for _, c := range cases {
		h, _, err := r.Lookup(c.src, c.typ, c.ver)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		out, _ := h.Handle(context.Background(), nil)
		if out.EntityKey != c.want {
			t.Errorf("%s/%s@%s → %s, want %s", c.src, c.typ, c.ver, out.EntityKey, c.want)
		}
	}
	for _, c := range []struct{ src, typ, ver string }{{"stripe", "charge.refunded", "v1"}, {"nope", "x", "v1"}} {
		if _, _, err := r.Lookup(c.src, c.typ, c.ver); !errors.Is(err, ErrNoHandler) || !IsValidation(err) {
			t.Errorf("%v: err = %v, want ErrNoHandler (a validation outcome)", c, err)
		}
	}
	if err := r.Handle(Route{"shop", "*", "*"}, named("again")); err == nil {
		t.Error("a route registered twice was accepted")
	}
}

// TestLookupTieIsDeterministic: two patterns equally specific for an event
// pick the same handler whatever order they were added in (a sources
// file's events are a map, iterated at random).
func TestLookupTieIsDeterministic(t *testing.T) {
	for _, order := range [][]string{{"invoice.*", "*.created"}, {"*.created", "invoice.*"}} {
		r := New()
		for _, p := range order {
			if err := r.Handle(Route{"billing", p, "*"}, named(p)); err != nil {
				t.Fatal(err)
			}
		}
		h, _, err := r.Lookup("billing", "invoice.created", "v1")
		if err != nil {
			t.Fatal(err)
		}
		if out, _ := h.Handle(context.Background(), nil); out.EntityKey != "*.created" {
			t.Errorf("added %v: %s chosen, want *.created (the smaller pattern) either way", order, out.EntityKey)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		ok   bool
	}{
		{"payment_intent.*", "payment_intent.succeeded", true},
		{"payment_intent.*", "payment_intent", false},
		{"orders/*", "orders/create", true},
		{"*", "", true},
		{"a*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c*", "abcd", true},
		{"ab*ba", "aba", false},
		{"x", "xy", false},
	} {
		if got := Match(c.p, c.n); got != c.ok {
			t.Errorf("Match(%q, %q) = %v", c.p, c.n, got)
		}
	}
}

type sink struct{ delivered int }

func (s *sink) Handle(context.Context, *Event) (*Output, error) { return &Output{}, nil }
func (s *sink) Deliver(context.Context, *Event, *Output) error  { s.delivered++; return nil }

func TestWrapKeepsDeliverAndRecovers(t *testing.T) {
	s := &sink{}
	h := Wrap(s, Recover())
	d, ok := h.(Deliverer)
	if !ok {
		t.Fatal("wrapped handler lost Deliver")
	}
	_ = d.Deliver(context.Background(), nil, nil)
	if s.delivered != 1 {
		t.Fatal("Deliver not delegated")
	}
	panicky := Wrap(HandlerFunc(func(context.Context, *Event) (*Output, error) { panic("boom") }), Recover())
	_, err := panicky.Handle(context.Background(), nil)
	if err == nil || IsValidation(err) {
		t.Fatalf("panic → %v, want a processing (retryable) error", err)
	}
}

func TestIsValidation(t *testing.T) {
	if !IsValidation(fmt.Errorf("wrapped: %w", &ValidationError{Reason: "x"})) {
		t.Error("wrapped ValidationError not recognised")
	}
	if IsValidation(errors.New("downstream timeout")) || IsValidation(nil) {
		t.Error("plain errors are not validation errors")
	}
}
