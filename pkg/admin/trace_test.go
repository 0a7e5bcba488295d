package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/history"
)

// TestTraceSaysWhatWasDropped: the admin API's trace, served by the
// history store as the processor wires it, says how many older entries of
// a shared correlation id were dropped, behind the read token.
func TestTraceSaysWhatWasDropped(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	hist := history.New(rdb, "t:", time.Hour)
	// 150 events reusing one correlation id, two entries each.
	for i := range 150 {
		at := time.Unix(1700000000+int64(i), 0).UTC()
		id := fmt.Sprint("evt_", i)
		es := []history.Entry{{At: at, Stage: "received", Source: "stripe", EventID: id}, {At: at, Stage: "written", Source: "stripe", EventID: id, Where: "inlet.raw/0/1"}}
		if err := hist.Append(context.Background(), map[string][]history.Entry{"shared": es, "own-" + id: es}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(Tokens{Read: "r-token"}, Deps{Queues: newFake(), Topics: topics, Trace: hist.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, id string
		stages   int
		dropped  float64
		first    string
	}{
		{"shared by more events than the bound keeps", "shared", 200, 100, "evt_50"},
		{"one event's", "own-evt_7", 2, 0, "evt_7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := call(t, srv, "GET", "/v1/trace/"+tc.id, "r-token", "")
			stages, _ := body["stages"].([]any)
			if code != http.StatusOK || len(stages) != tc.stages || body["dropped_entries"] != tc.dropped {
				t.Fatalf("%d, %d stages, dropped_entries %v; want 200, %d, %v", code, len(stages), body["dropped_entries"], tc.stages, tc.dropped)
			}
			if first, _ := stages[0].(map[string]any); first["event_id"] != tc.first {
				t.Errorf("first stage %v, want %s's", first, tc.first)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		if code, _, _ := call(t, srv, "GET", "/v1/trace/nobody", "r-token", ""); code != http.StatusNotFound {
			t.Fatalf("%d, want 404", code)
		}
	})
}
