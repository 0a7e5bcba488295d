package history

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

func at(sec int) time.Time { return time.Unix(1700000000+int64(sec), 0).UTC() }

// TestMerge: each extra entry goes after the last entry not later than
// it; the entries keep their order even where their times do not follow
// it; extra entries are ordered by time among themselves.
func TestMerge(t *testing.T) {
	e := func(sec int, stage string) Entry { return Entry{At: at(sec), Stage: stage} }
	stages := func(es []Entry) []string {
		var out []string
		for _, x := range es {
			out = append(out, x.Stage)
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		entries, more []Entry
		want          []string
	}{
		{"none more", []Entry{e(1, "a"), e(2, "b")}, nil, []string{"a", "b"}},
		{"only more", nil, []Entry{e(5, "y"), e(3, "x")}, []string{"x", "y"}},
		{"between", []Entry{e(1, "a"), e(5, "b")}, []Entry{e(3, "x")}, []string{"a", "x", "b"}},
		{"first", []Entry{e(4, "a")}, []Entry{e(3, "x")}, []string{"x", "a"}},
		{"last", []Entry{e(1, "a")}, []Entry{e(3, "x")}, []string{"a", "x"}},
		{"equal time goes after", []Entry{e(3, "a"), e(3, "b")}, []Entry{e(3, "x")}, []string{"a", "b", "x"}},
		// b is stamped before a (another process's clock): x, later than
		// b, waits for it rather than splitting a from b.
		{"out of order entries", []Entry{e(5, "a"), e(2, "b"), e(9, "c")}, []Entry{e(3, "x")}, []string{"a", "b", "x", "c"}},
		{"several", []Entry{e(1, "a"), e(4, "b"), e(8, "c")}, []Entry{e(9, "z"), e(2, "x"), e(5, "y")}, []string{"a", "x", "b", "y", "c", "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			more := append([]Entry(nil), tc.more...)
			got := stages(Merge(tc.entries, tc.more))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(more, tc.more) {
				t.Fatalf("Merge reordered its argument: %v", stages(tc.more))
			}
		})
	}
}

// TestHandlerWithMergesMore: the entries More returns are answered with
// Redis' by time, alone when Redis keeps none; a More failing leaves the
// history answered with a warning.
func TestHandlerWithMergesMore(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	if err := s.Append(ctx, map[string][]Entry{"c1": {{At: at(1), Stage: "received"}, {At: at(5), Stage: "attempt", Outcome: "dlq"}}}); err != nil {
		t.Fatal(err)
	}
	decided := map[string][]Entry{
		"c1": {{At: at(9), Stage: "decided", Outcome: "discarded", Note: "by alice: cancelled"}},
		"c2": {{At: at(9), Stage: "decided", Outcome: "requeued"}},
	}
	fail := false
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", s.HandlerWith(func(_ context.Context, corr string) ([]Entry, error) {
		if fail {
			return nil, errors.New("audit topic unreadable")
		}
		return decided[corr], nil
	}))
	get := func(id string) (int, []Entry, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/trace/"+id, nil))
		var body struct {
			Stages  []Entry `json:"stages"`
			Warning string  `json:"warning"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
		return rec.Code, body.Stages, body.Warning
	}

	code, st, warn := get("c1")
	if code != http.StatusOK || len(st) != 3 || st[2].Outcome != "discarded" || st[2].Note != "by alice: cancelled" || warn != "" {
		t.Fatalf("c1: %d %+v %q", code, st, warn)
	}
	if code, st, _ = get("c2"); code != http.StatusOK || len(st) != 1 || st[0].Outcome != "requeued" {
		t.Fatalf("c2, decided but past Redis' retention: %d %+v; want its decision", code, st)
	}
	if code, _, _ = get("c3"); code != http.StatusNotFound {
		t.Fatalf("c3, unknown: %d; want 404", code)
	}
	fail = true
	if code, st, warn = get("c1"); code != http.StatusOK || len(st) != 2 || warn == "" {
		t.Fatalf("c1 with decisions unreadable: %d %+v %q; want the history and a warning", code, st, warn)
	}
}

// TestHandlerWithBoundsMore: a More that does not end (Kafka hung under
// the audit topic's read) leaves the history answered, with a warning,
// before inletctl trace gives up (it waited for the caller's deadline).
func TestHandlerWithBoundsMore(t *testing.T) {
	_, _, s := newStore(t)
	if err := s.Append(context.Background(), map[string][]Entry{"c1": {{At: at(1), Stage: "received"}}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/trace/{id}", s.HandlerWith(func(ctx context.Context, _ string) ([]Entry, error) {
		<-ctx.Done() // Kafka hung: the audit topic's read waits for the caller's deadline
		return nil, ctx.Err()
	}))
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/trace/c1", nil))
		done <- rec
	}()
	select {
	case rec := <-done:
		var body struct {
			Stages  []Entry `json:"stages"`
			Warning string  `json:"warning"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || len(body.Stages) != 1 || body.Warning == "" {
			t.Fatalf("%d %s (%v): want the history and a warning", rec.Code, rec.Body, err)
		}
	case <-time.After(9 * time.Second): // inletctl trace gives up after 10 s
		t.Fatal("no answer: the decisions' read is not bounded, and the history it has is not answered")
	}
}
