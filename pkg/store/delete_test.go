package store

import (
	"context"
	"testing"
	"time"
)

func TestDelete(t *testing.T) {
	e := newMiniredisEnv(t)
	s := New(e.rdb, KeyPrefix(e.prefix))
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	if _, err := s.ClaimBatch(ctx, []string{"a", "b"}, "tok"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmBatch(ctx, []string{"a", "b"}, "tok", []time.Duration{time.Hour, time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyBatch(ctx, []Update{{EntityKey: "e1", EventTime: at, EventID: "x"}, {EntityKey: "e2", EventTime: at, EventID: "y"}}); err != nil {
		t.Fatal(err)
	}
	t.Run("claims", func(t *testing.T) {
		n, err := s.DeleteClaims(ctx, []string{"a", "missing"})
		if err != nil || n != 1 {
			t.Fatalf("deleted %d, %v; want 1", n, err)
		}
		res, _ := s.ClaimBatch(ctx, []string{"a", "b"}, "tok2")
		if res[0] != ClaimAcquired || res[1] != ClaimDone {
			t.Fatalf("after delete: %v", res)
		}
	})
	t.Run("entities", func(t *testing.T) {
		n, err := s.DeleteEntities(ctx, []string{"e1"})
		if err != nil || n != 1 {
			t.Fatalf("deleted %d, %v; want 1", n, err)
		}
		if _, ok, _ := s.Entity(ctx, "e1"); ok {
			t.Fatal("e1 still has state")
		}
		if _, ok, _ := s.Entity(ctx, "e2"); !ok {
			t.Fatal("e2 lost its state")
		}
	})
}
