package reconcile

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadLog(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []SenderEvent{{ID: "a", At: at}, {ID: "b", At: at}}
	for name, in := range map[string]string{
		"stripe ndjson": `{"id":"a","object":"event","created":1735787045}
{"id":"b","object":"event","created":1735787045}
`,
		"stripe list page":      `{"object":"list","data":[{"id":"a","created":1735787045},{"id":"b","created":1735787045}],"has_more":false}`,
		"a page without object": `{"data":[{"id":"a","created":1735787045},{"id":"b","created":1735787045}]}`,
		// An event whose own data is an array is an event, not a page.
		"events with array data": `{"event_id":"a","created":1735787045,"data":[{"id":"line-item-7"}]}
{"event_id":"b","created":1735787045,"data":[]}`,
		"github deliveries":  `[{"id":12345,"guid":"a","delivered_at":"2025-01-02T03:04:05Z","event":"push"},{"id":12346,"guid":"b","delivered_at":"2025-01-02T03:04:05Z"}]`,
		"shopify log":        "\ufeff" + `{"webhook_id":"a","id":9,"created_at":"2025-01-01T22:04:05-05:00"}` + "\n" + `{"id":"b","created_at":"2025-01-02T03:04:05Z"}`,
		"csv":                "Event_ID,Created_At,type\na,2025-01-02T03:04:05Z,x\nb,1735787045,y\n",
		"csv millis":         "id,timestamp\na,1735787045000\nb,1735787045000\n",
		"csv micros, nanos":  "id,timestamp\na,1735787045000000\nb,1735787045000000000\n",
		"lower-case rfc3339": "id,created\na,2025-01-02t03:04:05z\nb,2025-01-02t03:04:05Z\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ReadLog(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
	t.Run("errors name the line", func(t *testing.T) {
		for in, where := range map[string]string{
			"{\"x\":1}\n":      "JSON value 1",
			"id,created\n,1\n": "CSV line 2",
			"{\"id\":\"a\",\"created\":\"yesterday\"}": "JSON value 1",
			"{\"id\":\"a\",\"created\":\"NaN\"}":       "JSON value 1",
			"{\"id\":\"a\",\"created\":\"1e300\"}":     "JSON value 1",
			"{\"id\":\"a\",\"created\":-5}":            "JSON value 1",
			"{\"id\":\"a\",\"created\":9.3e18}":        "JSON value 1",
			"[{\"id\":\"a\",\"created\":1735787045}":   "after array element 1",
			"[{\"id\":\"a\",\"created\":1735787045},]": "array element 2",
			"[1]": "array element 1",
		} {
			if _, err := ReadLog(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), where) {
				t.Errorf("%q: %v, want an error naming %q", in, err, where)
			}
		}
	})
	t.Run("a zero time is no time", func(t *testing.T) {
		got, err := ReadLog(strings.NewReader(`{"id":"a","created":0}`))
		if err != nil || len(got) != 1 || !got[0].At.IsZero() {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got, err := ReadLog(strings.NewReader("  \n")); err != nil || len(got) != 0 {
			t.Fatalf("%v %v", got, err)
		}
	})
}

// fakeStripe serves GET /v1/events like Stripe: newest first, limit,
// starting_after, created[gte]/[lt], has_more.
func fakeStripe(t *testing.T, n int) (*httptest.Server, *int) {
	t.Helper()
	pages := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk_test_x" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"Invalid API Key provided"}}`))
			return
		}
		pages++
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
		lt, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
		type ev struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
		}
		var all []ev
		for i := n - 1; i >= 0; i-- { // newest first
			c := int64(1700000000 + i)
			if (gte == 0 || c >= gte) && (lt == 0 || c < lt) {
				all = append(all, ev{"evt_" + strconv.Itoa(i), c})
			}
		}
		if after := q.Get("starting_after"); after != "" {
			for i, e := range all {
				if e.ID == after {
					all = all[i+1:]
					break
				}
			}
		}
		more := len(all) > limit
		if more {
			all = all[:limit]
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": all, "has_more": more, "url": "/v1/events"})
	}))
	t.Cleanup(srv.Close)
	return srv, &pages
}

func TestStripeFetcher(t *testing.T) {
	srv, pages := fakeStripe(t, 250)
	ctx := context.Background()
	t.Run("pages through has_more", func(t *testing.T) {
		f := &Stripe{APIKey: "sk_test_x", BaseURL: srv.URL}
		got, err := f.Fetch(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range got {
			seen[e.ID] = true
		}
		if len(got) != 250 || len(seen) != 250 || *pages != 3 {
			t.Fatalf("%d events (%d distinct) in %d pages", len(got), len(seen), *pages)
		}
	})
	t.Run("created range", func(t *testing.T) {
		f := &Stripe{APIKey: "sk_test_x", BaseURL: srv.URL}
		got, err := f.Fetch(ctx, time.Unix(1700000010, 0), time.Unix(1700000020, 0))
		if err != nil || len(got) != 10 || got[0].ID != "evt_19" || !got[0].At.Equal(time.Unix(1700000019, 0)) {
			t.Fatalf("%v %+v", err, got)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		f := &Stripe{APIKey: "sk_wrong", BaseURL: srv.URL}
		if _, err := f.Fetch(ctx, time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("got %v", err)
		}
		if _, err := (&Stripe{BaseURL: srv.URL}).Fetch(ctx, time.Time{}, time.Time{}); err == nil {
			t.Fatal("no key accepted")
		}
	})
}
