package router

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzMatch checks Match against a plain dynamic-programming glob matcher
// over bytes (any run of bytes for *, every other byte itself), for any
// pattern and name: event types are the sender's and may hold anything.
func FuzzMatch(f *testing.F) {
	for _, c := range [][2]string{
		{"payment_intent.*", "payment_intent.succeeded"}, {"payment_intent.*", "payment_intent"}, {"orders/*", "orders/create"},
		{"*", ""}, {"a*c", "abc"}, {"a*c", "ac"}, {"a*c*", "abcd"}, {"ab*ba", "aba"}, {"x", "xy"}, {"**", "a"},
		{"*a*a", "aa"}, {"a*b*b", "abb"}, {"\xff*", "\xfe"}, {"é*", "\xc3"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern)*len(name) > 1<<20 {
			t.Skip() // the reference is quadratic
		}
		if got, want := Match(pattern, name), globMatch(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}

// globMatch is the reference: m[j] says whether pattern[:i] matches
// name[:j], row by row.
func globMatch(pattern, name string) bool {
	m := make([]bool, len(name)+1)
	m[0] = true
	for i := 0; i < len(pattern); i++ {
		next := make([]bool, len(name)+1)
		if pattern[i] == '*' {
			next[0] = m[0]
			for j := 1; j <= len(name); j++ {
				next[j] = m[j] || next[j-1]
			}
		} else {
			for j := 1; j <= len(name); j++ {
				next[j] = m[j-1] && pattern[i] == name[j-1]
			}
		}
		m = next
	}
	return m[len(name)]
}

// FuzzLookup registers up to four routes of one source in two orders and
// looks an event up in both. Invariants: the same route wins whatever the
// order (a sources file's events are a map, iterated at random, and every
// processor instance must pick the same handler); the winner matches the
// event; no route more specific than it matches; and ErrNoHandler (a
// validation outcome) comes exactly when no route matches.
func FuzzLookup(f *testing.F) {
	f.Add("orders/*;orders/*@2024-07;orders/updated;*", "orders/updated", "2024-07")
	f.Add("invoice.*;*.created", "invoice.created", "v1")
	f.Add("a*;*b;a*b@v1;ab", "ab", "v2")
	f.Add("*;**;***", "", "")
	f.Fuzz(func(t *testing.T, patterns, eventType, version string) {
		var routes []Route
		for _, p := range strings.SplitN(patterns, ";", 4) {
			typ, ver, ok := strings.Cut(p, "@")
			if !ok {
				ver = "*"
			}
			routes = append(routes, Route{Source: "s", EventType: typ, Version: ver})
		}
		lookup := func(order []Route) (Route, error) {
			r := New()
			for _, rt := range order {
				_ = r.Handle(rt, named(rt.String())) // incomplete and repeated routes are refused
			}
			h, rt, err := r.Lookup("s", eventType, version)
			if err == nil {
				if out, _ := h.Handle(context.Background(), nil); out.EntityKey != rt.String() {
					t.Fatalf("Lookup returned route %v with the handler of %s", rt, out.EntityKey)
				}
			}
			return rt, err
		}
		reversed := make([]Route, len(routes))
		for i, rt := range routes {
			reversed[len(routes)-1-i] = rt
		}
		got, err := lookup(routes)
		got2, err2 := lookup(reversed)
		if got != got2 || (err == nil) != (err2 == nil) {
			t.Fatalf("%v: %v (%v), reversed %v (%v)", routes, got, err, got2, err2)
		}
		matches := func(rt Route) bool {
			return rt.EventType != "" && rt.Version != "" && Match(rt.EventType, eventType) && (rt.Version == "*" || rt.Version == version)
		}
		if err != nil {
			if !errors.Is(err, ErrNoHandler) || !IsValidation(err) {
				t.Fatalf("error %v, want ErrNoHandler", err)
			}
			for _, rt := range routes {
				if matches(rt) {
					t.Fatalf("%v matches %s@%s, yet %v", rt, eventType, version, err)
				}
			}
			return
		}
		if !matches(got) {
			t.Fatalf("%v chosen for %s@%s, which it does not match", got, eventType, version)
		}
		for _, rt := range routes {
			if matches(rt) && specificity(rt) > specificity(got) {
				t.Fatalf("%v chosen for %s@%s over the more specific %v", got, eventType, version, rt)
			}
		}
	})
}
