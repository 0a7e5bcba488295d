package ingest

import (
	"testing"
	"time"
)

func TestDeadlinesBoundEveryWait(t *testing.T) {
	const timeout = time.Second
	d := newDeadlines(timeout)
	t0 := time.Now()
	first := d.context(t0)
	if got, _ := first.Deadline(); !got.Equal(t0.Add(timeout)) {
		t.Fatalf("first deadline %v, want %v", got, t0.Add(timeout))
	}
	// Later requests of the same window share the context; each one's wait
	// stays within (timeout-granularity, timeout].
	for _, off := range []time.Duration{time.Millisecond, d.granularity / 2, d.granularity - time.Nanosecond} {
		now := t0.Add(off)
		ctx := d.context(now)
		if ctx != first {
			t.Fatalf("at +%v: a new context inside the window", off)
		}
		dl, _ := ctx.Deadline()
		if wait := dl.Sub(now); wait > timeout || wait <= timeout-d.granularity {
			t.Fatalf("at +%v: wait %v outside (%v, %v]", off, wait, timeout-d.granularity, timeout)
		}
	}
	// Past the window a new one opens with a full timeout.
	now := t0.Add(d.granularity)
	next := d.context(now)
	if next == first {
		t.Fatal("the window did not close after its granularity")
	}
	if dl, _ := next.Deadline(); !dl.Equal(now.Add(timeout)) {
		t.Fatalf("next deadline %v, want %v", dl, now.Add(timeout))
	}
}

func TestDeadlinesExpire(t *testing.T) {
	d := newDeadlines(20 * time.Millisecond)
	ctx := d.context(time.Now())
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the shared context never ended")
	}
	if d.granularity != 2*time.Millisecond {
		t.Fatalf("granularity %v for a 20ms timeout, want a tenth of it", d.granularity)
	}
}
