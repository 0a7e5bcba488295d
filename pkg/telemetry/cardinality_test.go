package telemetry

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(2)
	for _, c := range []struct{ source, typ, want string }{
		{"shop", "a", "a"},
		{"shop", "b", "b"},
		{"shop", "c", Other}, // the third type of shop
		{"shop", "a", "a"},   // kept types stay kept
		{"shop", "c", Other}, // and folded ones stay folded
		{"stripe", "c", "c"}, // the limit is per source
		{"stripe", Other, Other},
		{"stripe", "d", Other}, // a literal "other" took a place
	} {
		if got := l.EventType(c.source, c.typ); got != c.want {
			t.Errorf("EventType(%q, %q) = %q, want %q", c.source, c.typ, got, c.want)
		}
	}
	if got := (*Limiter)(nil).EventType("shop", "x"); got != "x" {
		t.Errorf("nil limiter: %q, want the type itself", got)
	}
}

// TestLimiterConcurrent: however the callers race, a source keeps exactly
// Max types, and each type gets one answer for good.
func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(10)
	var mu sync.Mutex
	answers := map[string]map[string]bool{} // type → answers given
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				typ := fmt.Sprintf("t%d", (g*7+i)%40)
				got := l.EventType("shop", typ)
				mu.Lock()
				if answers[typ] == nil {
					answers[typ] = map[string]bool{}
				}
				answers[typ][got] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	named := 0
	for typ, got := range answers {
		if len(got) != 1 {
			t.Errorf("%s answered %v: want one answer", typ, got)
		}
		if got[typ] {
			named++
		}
	}
	if named != 10 {
		t.Fatalf("%d types kept their name, want 10", named)
	}
}

// TestLimiterFullSourceTakesNoLock: once a source is full, its new types
// fold without the mutex, so a sender inventing types does not serialize
// every worker on it; a source with room still waits for it.
func TestLimiterFullSourceTakesNoLock(t *testing.T) {
	l := NewLimiter(1)
	l.EventType("shop", "a")
	l.mu.Lock()
	answer := func(source, typ string) <-chan string {
		ch := make(chan string, 1)
		go func() { ch <- l.EventType(source, typ) }()
		return ch
	}
	select {
	case got := <-answer("shop", "invented"):
		if got != Other {
			t.Errorf("full source: %q, want %q", got, Other)
		}
	case <-time.After(5 * time.Second):
		l.mu.Unlock()
		t.Fatal("a type of a full source waited for the mutex")
	}
	pending := answer("stripe", "x")
	select {
	case got := <-pending:
		t.Fatalf("a source with room answered %q without the mutex", got)
	case <-time.After(50 * time.Millisecond):
	}
	l.mu.Unlock()
	if got := <-pending; got != "x" {
		t.Errorf("stripe: %q, want %q", got, "x")
	}
}

// TestLimiterReserve: reserved types keep their name whatever fills the
// source's places, and take none of them.
func TestLimiterReserve(t *testing.T) {
	l := NewLimiter(2)
	l.Reserve("open", "order.paid")
	for _, c := range []struct{ typ, want string }{
		{"x", "x"}, {"y", "y"}, {"z", Other}, {"order.paid", "order.paid"},
	} {
		if got := l.EventType("open", c.typ); got != c.want {
			t.Errorf("EventType(open, %q) = %q, want %q", c.typ, got, c.want)
		}
	}
	if got := l.EventType("stripe", "order.paid"); got != "order.paid" {
		t.Errorf("another source's type: %q", got)
	}
}
