package telemetry

import (
	"sync"
	"testing"
)

func TestOptionCache(t *testing.T) {
	var c OptionCache[string, int]
	if _, ok := c.Get("a"); ok || c.Len() != 0 {
		t.Fatal("empty cache has an entry")
	}
	c.Put("a", 1)
	c.Put("a", 2) // the first options stay
	if v, ok := c.Get("a"); !ok || v != 1 || c.Len() != 1 {
		t.Fatalf("Get(a) = %d, %v; Len %d; want 1, true, 1", v, ok, c.Len())
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				k := string(rune('b' + (g*100+i)%50))
				c.Put(k, i)
				if _, ok := c.Get(k); !ok {
					t.Errorf("Get(%q) after Put missed", k)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() != 51 {
		t.Fatalf("Len = %d, want 51", c.Len())
	}
}
