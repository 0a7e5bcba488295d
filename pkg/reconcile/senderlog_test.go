package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
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
			"{\"x\":1}\n":      "line 1",
			"id,created\n,1\n": "CSV line 2",
			"{\"id\":\"a\",\"created\":\"yesterday\"}": "line 1",
			"{\"id\":\"a\",\"created\":\"NaN\"}":       "line 1",
			"{\"id\":\"a\",\"created\":\"1e300\"}":     "line 1",
			"{\"id\":\"a\",\"created\":-5}":            "line 1",
			"{\"id\":\"a\",\"created\":9.3e18}":        "line 1",
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
		// No events, no error here: Check and Validate refuse it.
		if got, err := ReadLog(strings.NewReader("  \n")); err != nil || len(got) != 0 {
			t.Fatalf("%v %v", got, err)
		}
	})
}

// TestReconcileSenderLogErrorLines: an error in an NDJSON log names the
// line of the file, blank lines counted, and what the value is in JSON's
// words. It counted JSON values ("JSON value 3" for line 5 after two
// blank lines) and named Go types ("got json.Number" for a line [1,2]).
func TestReconcileSenderLogErrorLines(t *testing.T) {
	const ok = `{"id":"a","created":1735787045}`
	big := strings.Repeat("x", 10000)
	many := strings.Repeat(ok+"\n\n", 5000) // past the decoder's buffer, many times
	for _, c := range []struct {
		name, in string
		want     []string
	}{
		{"syntax error after blank lines", ok + "\n" + ok + "\n\n\n{\"id\": nope}\n" + ok + "\n",
			[]string{"sender log: line 5: invalid JSON: invalid character 'o' in literal null"}},
		{"an array of numbers", ok + "\n" + ok + "\n\n\n[1,2]\n",
			[]string{"line 5: array element 1: got a JSON number, want an event object"}},
		{"a string", ok + "\n\"evt_1\"\n", []string{"line 2: got a JSON string, want an event object"}},
		{"a number", ok + "\n\n42\n", []string{"line 3: got a JSON number"}},
		{"true", ok + "\ntrue\n", []string{"line 2: got JSON true"}},
		{"false", ok + "\r\n\r\nfalse\r\n", []string{"line 3: got JSON false"}},
		{"null", ok + "\nnull", []string{"line 2: got JSON null"}},
		{"no id, after leading blank lines", "\n\n" + ok + "\n{\"x\":1}\n", []string{"line 4: no event id"}},
		{"a bad time", ok + "\n\n{\"id\":\"b\",\"created\":\"yesterday\"}\n", []string{`line 3: event "b": created: time "yesterday"`}},
		{"a truncated last line", ok + "\n\n{\"id\":\"b\",\"crea", []string{"line 3: the file ends before this value does (a truncated export?)"}},
		{"a truncated line, then more", ok + "\n{\"id\":\"b\"\n" + ok + "\n", []string{"line 2: invalid JSON at line 3: invalid character '{' after object key:value pair"}},
		{"a stray closing brace", ok + "\n}\n", []string{"line 2: invalid JSON: invalid character '}'"}},
		{"far down a long log", many + "[1]\n", []string{"line 10001: array element 1: got a JSON number"}},
		{"after a large value", `{"id":"a","created":1735787045,"pad":"` + big + "\"}\n\n" + many + "null\n", []string{"line 10003: got JSON null"}},
		{"a pretty-printed object", "{\n  \"id\": \"a\",\n  \"created\": nope\n}\n", []string{"line 1: invalid JSON at line 3: invalid character 'o'"}},
		// Not line-based: the element is named.
		{"a page", `{"object":"list","data":[` + ok + `,7]}`, []string{"line 1: data element 2: got a JSON number, want an event object"}},
		{"a page on line 3", ok + "\n\n" + `{"data":[null]}`, []string{"line 3: data element 1: got JSON null"}},
		{"a JSON array", `[` + ok + `, "evt_2"]`, []string{"sender log: array element 2: got a JSON string, want an event object"}},
		{"a JSON array of arrays", `[[` + ok + `, false]]`, []string{"array element 1: array element 2: got JSON false"}},
		{"a value after a JSON array", "[" + ok + "]\n\n[1]\n", []string{"line 3: array element 1: got a JSON number"}},
		// CSV: lines of the file too, blank ones counted.
		{"csv after a blank line", "id,created\na,1735787045\n\n,1\n", []string{"CSV line 4: no event id"}},
		{"csv after leading blank lines", "\n\nid,created\n,1\n", []string{"CSV line 4: no event id"}},
		{"csv parse error after leading blank lines", "\nid,created\na,1735787045\nb\"x,1\n", []string{"line 4"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadLog(strings.NewReader(c.in))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nwant %q in it", err, w)
				}
			}
			for _, goName := range []string{"json.Number", "interface", "map[", "[]any", "float64", "bool", "<nil>"} {
				if strings.Contains(err.Error(), goName) {
					t.Errorf("%v: names %q", err, goName)
				}
			}
			if regexp.MustCompile(`JSON value \d`).MatchString(err.Error()) {
				t.Errorf("%v: counts JSON values, not lines", err)
			}
		})
	}
	t.Run("long values are not echoed", func(t *testing.T) {
		for _, in := range []string{
			ok + "\n{\"id\":\"" + big + "\",\"created\":\"yesterday\"}\n",
			ok + "\n{\"id\":\"b\",\"created\":\"" + big + "\"}\n",
			"id,created\n" + big + "," + big + "\n",
		} {
			if _, err := ReadLog(strings.NewReader(in)); err == nil || len(err.Error()) > 400 || strings.Contains(err.Error(), strings.Repeat("x", 100)) {
				t.Errorf("%d bytes of error: %.300s", len(fmt.Sprint(err)), err)
			}
		}
	})
	t.Run("a long log with blank lines reads whole", func(t *testing.T) {
		got, err := ReadLog(strings.NewReader(many + `{"data":[` + ok + `]}` + "\n\n" + many))
		if err != nil || len(got) != 10001 {
			t.Fatalf("%d events, %v", len(got), err)
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

// TestStripeFetchKeepsTheWholeWindow: Fetch lists exactly the events
// created in [since, until), as Check's window keeps them, also when
// since or until falls inside a second. created[lt] was sent as until
// rounded down: with an --until of S+0.5s, the event created at S was
// left out (never reconciled: a gap at the window's end went unreported).
func TestStripeFetchKeepsTheWholeWindow(t *testing.T) {
	const n = 30 // evt_i created at 1700000000+i
	srv, _ := fakeStripe(t, n)
	f := &Stripe{APIKey: "sk_test_x", BaseURL: srv.URL}
	at := func(sec int64, nsec int64) time.Time { return time.Unix(1700000000+sec, nsec) }
	for _, w := range []struct{ since, until time.Time }{
		{time.Time{}, at(10, 500_000_000)},
		{time.Time{}, at(10, 1)},
		{time.Time{}, at(10, 0)},
		{at(10, 500_000_000), time.Time{}},
		{at(10, 0), time.Time{}},
		{at(5, 999_999_999), at(20, 1)},
	} {
		cfg := Config{Since: w.since, Until: w.until}
		var want []string
		for i := n - 1; i >= 0; i-- { // newest first, as Stripe lists
			if inWindow(cfg, at(int64(i), 0)) {
				want = append(want, "evt_"+strconv.Itoa(i))
			}
		}
		evs, err := f.Fetch(context.Background(), w.since, w.until)
		var got []string
		for _, e := range evs {
			got = append(got, e.ID)
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("since %s until %s: %v %v\nwant %v", w.since.UTC().Format(time.RFC3339Nano), w.until.UTC().Format(time.RFC3339Nano), err, got, want)
		}
	}
}

// TestJSONLogIDTrimmedAsIngestKeysIt: ingest keys a raw record by the
// event id trimmed of white space, and ReadLog trims a CSV id too; a JSON
// id kept its spaces, so the event, received as "stripe:evt_1", read as
// never_received.
func TestJSONLogIDTrimmedAsIngestKeysIt(t *testing.T) {
	for name, in := range map[string]string{
		"ndjson": `{"id":" evt_1 ","created":1700000000}` + "\n",
		"array":  `[{"id":"evt_1\n","created":1700000000}]`,
		"csv":    "id,created\n\" evt_1 \",1700000000\n", // trimmed: the reference
	} {
		evs, err := ReadLog(strings.NewReader(in))
		if err != nil || len(evs) != 1 || evs[0].ID != "evt_1" {
			t.Errorf("%s: %q, %v: want id %q, the key ingest gives the event", name, evs, err, "evt_1")
		}
	}
}

// TestStripeRetriesARateLimit: Stripe answers 429 past the account's
// request rate (shared with the production traffic of the same key) and
// asks for a retry with backoff; Fetch gave up on the first one, failing
// a listing of many pages whole.
func TestStripeRetriesARateLimit(t *testing.T) {
	defer func(d time.Duration) { stripeBackoff = d }(stripeBackoff)
	stripeBackoff = 10 * time.Millisecond
	srv, _ := fakeStripe(t, 250)
	var calls atomic.Int32
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 { // the second page
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"code":"rate_limit","message":"Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.","type":"invalid_request_error"}}`))
			return
		}
		srv.Config.Handler.ServeHTTP(w, r)
	})
	front := newLocalServer(t, limited)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := (&Stripe{APIKey: "sk_test_x", BaseURL: front}).Fetch(ctx, time.Time{}, time.Time{})
	if err != nil || len(got) != 250 {
		t.Fatalf("%d events, %v: want the 250, the rate-limited page asked again", len(got), err)
	}
}

func newLocalServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTruncatedStripePageIsRefused: `stripe events list` (the export the
// README names) prints one API page, 10 events unless --limit, with
// "has_more": true when there are more. ReadLog took that page for the
// whole log, and the events past it read as never sent. A log whose last
// page says has_more is refused; one whose last page says false is read.
func TestTruncatedStripePageIsRefused(t *testing.T) {
	page := func(more bool, ids ...string) string {
		var data []string
		for _, id := range ids {
			data = append(data, `{"id":"`+id+`","object":"event","created":1700000000}`)
		}
		return fmt.Sprintf(`{"object":"list","url":"/v1/events","has_more":%t,"data":[%s]}`, more, strings.Join(data, ","))
	}
	for _, log := range []string{page(true, "evt_2", "evt_1"), page(false, "evt_4", "evt_3") + "\n" + page(true, "evt_2", "evt_1")} {
		if evs, err := ReadLog(strings.NewReader(log)); err == nil || !strings.Contains(err.Error(), "has_more") {
			t.Errorf("read %d events and %v from a log whose last page says more follow", len(evs), err)
		}
	}
	evs, err := ReadLog(strings.NewReader(page(true, "evt_4", "evt_3") + "\n" + page(false, "evt_2", "evt_1")))
	if err != nil || len(evs) != 4 {
		t.Errorf("every page, the last saying no more: %d events, %v; want 4", len(evs), err)
	}
}

// TestStripeErrorQuotesNoAPIKey: a refused listing's error quotes the
// answer; an API, proxy or mock echoing the key it refused put
// STRIPE_API_KEY on inletctl's stderr.
func TestStripeErrorQuotesNoAPIKey(t *testing.T) {
	const key = "sk_test_CANARY-stripeapi-7f3a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Invalid API Key provided: ` + r.Header.Get("Authorization") + `"}}`))
	}))
	defer srv.Close()
	f := &Stripe{APIKey: key, BaseURL: srv.URL}
	_, err := f.Fetch(context.Background(), time.Now().Add(-time.Hour), time.Now())
	if err == nil || strings.Contains(err.Error(), "CANARY") {
		t.Errorf("a 401 echoing the key: %v, want an error that does not quote it", err)
	}
}
