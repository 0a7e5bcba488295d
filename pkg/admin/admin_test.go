package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/telemetry/telemetrytest"
)

// fakeQueues keeps entries in memory and applies decisions the way ops
// does: a decided entry is resolved; a dry run changes nothing.
type fakeQueues struct {
	mu      sync.Mutex
	entries map[string][]*ops.Entry // by topic
	noEvent map[string]bool         // ids of entries without their event: a requeue skips them
	calls   []string
	fail    error // every decision's error, when set
}

func (q *fakeQueues) List(_ context.Context, topic string, f ops.Filter) ([]*ops.Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*ops.Entry
	for _, e := range q.entries[topic] {
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, e.ID) {
			continue
		}
		if (f.Source != "" && e.Source != f.Source) || (f.Unresolved && e.Decision != nil) {
			continue
		}
		if f.ErrorText != "" && !strings.Contains(e.LastError, f.ErrorText) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Page pages by index; the cursor is the index of the next entry.
func (q *fakeQueues) Page(ctx context.Context, topic string, f ops.Filter, cursor string, limit int) (ops.Listing, error) {
	es, _ := q.List(ctx, topic, f)
	l := ops.Listing{Total: len(es)}
	from := 0
	if cursor != "" {
		var err error
		if from, err = strconv.Atoi(cursor); err != nil || from < 0 || from > len(es) {
			return l, fmt.Errorf("%w: cursor %q", ops.ErrBadPage, cursor)
		}
	}
	es = es[from:]
	if limit > 0 && len(es) > limit {
		es = es[:limit]
		l.Next = strconv.Itoa(from + limit)
	}
	l.Entries = es
	return l, nil
}

func (q *fakeQueues) Groups(ctx context.Context, topic string, f ops.Filter) ([]ops.Group, int, error) {
	es, _ := q.List(ctx, topic, f)
	out := []ops.Group{} // as ops answers: [] for none
	for _, e := range es {
		k := ops.Group{Source: e.Source, EventType: e.EventType, Reason: e.Reason, Error: e.LastError}
		if i := slices.IndexFunc(out, func(g ops.Group) bool { g.Count = 0; return g == k }); i >= 0 {
			out[i].Count++
			continue
		}
		k.Count = 1
		out = append(out, k)
	}
	return out, len(es), nil
}

func (q *fakeQueues) Depth(ctx context.Context, topic string) (int, error) {
	es, err := q.List(ctx, topic, ops.Filter{Unresolved: true})
	return len(es), err
}

func (q *fakeQueues) decide(ctx context.Context, topic string, f ops.Filter, action, who, why string, dry bool) (ops.Decided, error) {
	if why == "" {
		return ops.Decided{}, ops.ErrNoReason
	}
	if strings.TrimSpace(who) == "" {
		return ops.Decided{}, ops.ErrNoWho
	}
	if q.fail != nil {
		return ops.Decided{}, q.fail
	}
	f.Unresolved = true
	es, _ := q.List(ctx, topic, f)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, action+" by "+who)
	var res ops.Decided
	var decided []*ops.Entry
	for _, e := range es {
		if action == "requeue" && q.noEvent[e.ID] {
			if len(f.IDs) == 1 {
				return ops.Decided{}, fmt.Errorf("requeue: nothing was done: %s holds %w", e.ID, ops.ErrNoEvent)
			}
			res.Skipped++
			res.SkippedEntries = append(res.SkippedEntries, ops.Skip{ID: e.ID, Origin: e.Origin, Reason: ops.ReasonNoEvent})
			continue
		}
		decided = append(decided, e)
	}
	res.Count, res.Entries = len(decided), decided[:min(len(decided), ops.MaxShown)]
	res.Unmatched = q.unmatched(topic, f, es)
	if err := refusal(f, res); err != nil {
		return res, err
	}
	if dry {
		return res, nil
	}
	for _, e := range decided {
		e.Decision = &ops.Decision{ID: e.ID, Action: action, Who: who, Why: why}
	}
	return res, nil
}

// unmatched are the ids f names that matched none of selected, and why,
// as ops says (q.mu held).
func (q *fakeQueues) unmatched(topic string, f ops.Filter, selected []*ops.Entry) []ops.Miss {
	var out []ops.Miss
	for i, id := range f.IDs {
		if slices.Contains(f.IDs[:i], id) || slices.ContainsFunc(selected, func(e *ops.Entry) bool { return e.ID == id }) {
			continue
		}
		m := ops.Miss{ID: id, Reason: ops.ReasonNotFound}
		if j := slices.IndexFunc(q.entries[topic], func(e *ops.Entry) bool { return e.ID == id }); j >= 0 {
			m.Reason = ops.ReasonFiltered
			if d := q.entries[topic][j].Decision; d != nil {
				m.Reason, m.Decision = ops.ReasonDecided, d
			}
		}
		out = append(out, m)
	}
	return out
}

// refusal fails a decision by ids none of which is on the queue, or every
// one of which was decided, as ops does.
func refusal(f ops.Filter, d ops.Decided) error {
	if len(f.IDs) == 0 || d.Count > 0 || d.Skipped > 0 {
		return nil
	}
	for reason, err := range map[string]error{ops.ReasonNotFound: ops.ErrNotFound, ops.ReasonDecided: ops.ErrDecided} {
		if !slices.ContainsFunc(d.Unmatched, func(m ops.Miss) bool { return m.Reason != reason }) {
			return fmt.Errorf("nothing was done: %w", err)
		}
	}
	return nil
}

func (q *fakeQueues) Requeue(ctx context.Context, topic string, f ops.Filter, who, why string, dry bool) (ops.Decided, error) {
	return q.decide(ctx, topic, f, "requeue", who, why, dry)
}

func (q *fakeQueues) Discard(ctx context.Context, topic string, f ops.Filter, who, why string, dry bool) (ops.Decided, error) {
	return q.decide(ctx, topic, f, "discard", who, why, dry)
}

var topics = kafka.TopicNames("inlet", kafka.DefaultRetryTiers)

func newFake() *fakeQueues {
	return &fakeQueues{entries: map[string][]*ops.Entry{
		topics.DLQ: {
			{ID: "inlet.dlq/0/1", Source: "shop", EventType: "orders/updated", EventID: "a", LastError: "sink answered 503", Payload: []byte(`{"id":1}`)},
			{ID: "inlet.dlq/1/7", Source: "shop", EventType: "orders/updated", EventID: "b", LastError: "sink answered 503"},
			{ID: "inlet.dlq/2/3", Source: "stripe", EventType: "invoice.paid", EventID: "c", LastError: "sink answered 400"},
		},
		topics.Invalid: {
			{ID: "inlet.invalid/0/0", Source: "shop", EventType: "orders/create", EventID: "d", Reason: "contract"},
		},
	}}
}

func newServer(t *testing.T, q Queues, tok Tokens, meter ...metric.Meter) *httptest.Server {
	t.Helper()
	trace := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"correlation_id":"`+r.PathValue("id")+`"}`)
	})
	d := Deps{Queues: q, Topics: topics, Trace: trace}
	if len(meter) > 0 {
		d.Meter = meter[0]
	}
	a, err := New(tok, d)
	if err != nil && !errors.Is(err, ErrDisabled) {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string, hdr ...string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func TestAuth(t *testing.T) {
	q := newFake()
	srv := newServer(t, q, Tokens{Read: "r-token", Write: "w-token"})
	requeue := `{"ids":["inlet.dlq/0/1"],"reason":"sink fixed"}`

	t.Run("no token is 401 with a Bearer challenge", func(t *testing.T) {
		for _, p := range []string{"/v1/dlq", "/v1/depth", "/v1/trace/abc", "/v1/invalid"} {
			code, _, h := call(t, srv, "GET", p, "", "")
			if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: %d %q", p, code, h.Get("WWW-Authenticate"))
			}
		}
		if code, _, _ := call(t, srv, "POST", "/v1/dlq/requeue", "", requeue); code != http.StatusUnauthorized {
			t.Errorf("requeue without token: %d", code)
		}
	})
	t.Run("wrong token is 401", func(t *testing.T) {
		for _, tok := range []string{"nope", "r-tokenx", "w-toke", "W-TOKEN"} {
			if code, _, _ := call(t, srv, "GET", "/v1/dlq", tok, ""); code != http.StatusUnauthorized {
				t.Errorf("token %q: %d", tok, code)
			}
		}
		req, _ := http.NewRequest("GET", srv.URL+"/v1/dlq", nil)
		req.Header.Set("Authorization", "Basic dzp3LXRva2Vu")
		resp, _ := srv.Client().Do(req)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("basic auth: %d", resp.StatusCode)
		}
		resp.Body.Close()
	})
	t.Run("the scheme is case-insensitive, the token is not", func(t *testing.T) {
		for auth, want := range map[string]int{"bearer r-token": 200, "BEARER r-token": 200, "bearer R-TOKEN": 401, "Bearer": 401, "Bearer ": 401,
			// RFC 9110 11.4: 1*SP between the scheme and the token.
			"Bearer  r-token": 200, "bearer    w-token": 200, "Bearer \t": 401, "Bearer\tr-token": 401, "Bearer \tr-token": 401} {
			code, _, _ := call(t, srv, "GET", "/v1/depth", "", "", "Authorization", auth)
			if code != want {
				t.Errorf("%q: %d, want %d", auth, code, want)
			}
		}
	})
	t.Run("read token reads but cannot requeue or discard", func(t *testing.T) {
		if code, m, _ := call(t, srv, "GET", "/v1/dlq", "r-token", ""); code != 200 || m["count"].(float64) != 3 {
			t.Fatalf("list: %d %v", code, m)
		}
		for _, p := range []string{"/v1/dlq/requeue", "/v1/dlq/discard", "/v1/invalid/requeue", "/v1/invalid/discard"} {
			if code, _, _ := call(t, srv, "POST", p, "r-token", requeue); code != http.StatusForbidden {
				t.Errorf("POST %s with the read token: %d, want 403", p, code)
			}
		}
		if len(q.calls) != 0 {
			t.Fatalf("queues were called: %v", q.calls)
		}
	})
	t.Run("write token can requeue and discard, audited with its name", func(t *testing.T) {
		code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w-token", requeue, HeaderOperator, "alice")
		if code != 200 || m["count"].(float64) != 1 || m["who"] != "alice (admin-token:write)" {
			t.Fatalf("requeue: %d %v", code, m)
		}
		code, m, _ = call(t, srv, "POST", "/v1/dlq/discard", "w-token", `{"filter":{"source":"stripe"},"reason":"cancelled upstream"}`)
		if code != 200 || m["count"].(float64) != 1 || m["who"] != "admin-token:write" {
			t.Fatalf("discard: %d %v", code, m)
		}
		if code, m, _ := call(t, srv, "GET", "/v1/depth", "r-token", ""); code != 200 || m["dlq"].(float64) != 1 || m["invalid"].(float64) != 1 {
			t.Fatalf("depth: %d %v", code, m)
		}
	})
}

func TestDecide(t *testing.T) {
	q := newFake()
	reader := sdkmetric.NewManualReader()
	srv := newServer(t, q, Tokens{Write: "w"}, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"))
	t.Run("reason is required", func(t *testing.T) {
		if code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"ids":["inlet.dlq/0/1"]}`); code != 400 {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("whole queue is refused", func(t *testing.T) {
		if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"reason":"x"}`); code != 400 {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("until alone is a filter", func(t *testing.T) {
		if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"until":"2999-01-01T00:00:00Z"},"reason":"x","dry_run":true}`); code != 200 {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("malformed ids are the request's fault", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/dlq/discard", `{"ids":["garbage"],"reason":"x"}`},
			{"POST", "/v1/dlq/requeue", `{"ids":["inlet.dlq/0/1","inlet.dlq/0/-1"],"reason":"x"}`},
			{"GET", "/v1/dlq/garbage", ""},
			{"GET", "/v1/dlq?id=inlet.dlq/x/1", ""},
		} {
			code, m, _ := call(t, srv, c.method, c.path, "w", c.body)
			if msg, _ := m["error"].(string); code != 400 || !strings.Contains(msg, "not an entry id") {
				t.Errorf("%s %s %s: %d %v; want 400 saying not an entry id", c.method, c.path, c.body, code, m)
			}
		}
	})
	t.Run("bad body", func(t *testing.T) {
		if code, _, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"reason":"x","idz":[]}`); code != 400 {
			t.Fatalf("unknown field accepted: %d", code)
		}
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"filter":{"error":"503"},"reason":"sink fixed","dry_run":true}`)
		if code != 200 || m["count"].(float64) != 2 || m["dry_run"] != true {
			t.Fatalf("%d %v", code, m)
		}
		if _, m, _ := call(t, srv, "GET", "/v1/depth", "w", ""); m["dlq"].(float64) != 3 {
			t.Fatalf("depth moved after a dry run: %v", m)
		}
	})
	t.Run("requeue then list all and group", func(t *testing.T) {
		if code, _, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"filter":{"error":"503"},"reason":"sink fixed"}`); code != 200 {
			t.Fatal(code)
		}
		if _, m, _ := call(t, srv, "GET", "/v1/dlq", "w", ""); m["count"].(float64) != 1 {
			t.Fatalf("unresolved: %v", m)
		}
		if _, m, _ := call(t, srv, "GET", "/v1/dlq?all=true", "w", ""); m["count"].(float64) != 3 {
			t.Fatalf("all: %v", m)
		}
		_, m, _ := call(t, srv, "GET", "/v1/dlq?all=true&group=true", "w", "")
		if gs := m["groups"].([]any); len(gs) != 2 || gs[0].(map[string]any)["count"].(float64) != 2 {
			t.Fatalf("groups: %v", m)
		}
	})
	t.Run("actions are counted, dry runs and refusals not", func(t *testing.T) {
		if code, _, _ := call(t, srv, "POST", "/v1/invalid/discard", "w", `{"ids":["inlet.invalid/0/0"],"reason":"sender bug, fixed upstream"}`); code != 200 {
			t.Fatal(code)
		}
		got := telemetrytest.Int64s(t, reader, "inlet.ops.actions", "queue", "action")
		want := map[string]int64{"dlq|requeue": 2, "invalid|discard": 1}
		if len(got) != len(want) || got["dlq|requeue"] != 2 || got["invalid|discard"] != 1 {
			t.Fatalf("inlet.ops.actions = %v, want %v", got, want)
		}
	})
	t.Run("one entry by path or query, ids with slashes", func(t *testing.T) {
		for _, p := range []string{"/v1/dlq/inlet.dlq/0/1", "/v1/dlq?id=inlet.dlq/0/1"} {
			code, m, _ := call(t, srv, "GET", p, "w", "")
			if code != 200 || m["id"] != "inlet.dlq/0/1" || m["payload"].(map[string]any)["id"].(float64) != 1 {
				t.Fatalf("%s: %d %v", p, code, m)
			}
		}
		if code, _, _ := call(t, srv, "GET", "/v1/dlq/inlet.dlq/9/9", "w", ""); code != 404 {
			t.Fatalf("unknown id: %d", code)
		}
	})
	t.Run("trace is delegated", func(t *testing.T) {
		if code, m, _ := call(t, srv, "GET", "/v1/trace/corr-1", "w", ""); code != 200 || m["correlation_id"] != "corr-1" {
			t.Fatalf("%d %v", code, m)
		}
	})
}

// TestRequeueReportsSkippedEntries: a requeue by filter answers the
// entries it skipped for holding no copy of their event, with their
// origins and what to do (its dry run the same); they stay unresolved. One
// such entry named alone is refused with 409.
func TestRequeueReportsSkippedEntries(t *testing.T) {
	q := newFake()
	big := &ops.Entry{ID: "inlet.dlq/0/2", Source: "shop", EventType: "orders/updated", LastError: "sink answered 503", Origin: "inlet.raw/1/42"}
	q.entries[topics.DLQ] = append(q.entries[topics.DLQ], big)
	q.noEvent = map[string]bool{big.ID: true}
	srv := newServer(t, q, Tokens{Write: "w"})
	for _, dry := range []bool{true, false} {
		code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", fmt.Sprintf(`{"filter":{"source":"shop"},"reason":"sink fixed","dry_run":%v}`, dry))
		skipped, _ := m["skipped_entries"].([]any)
		if code != 200 || m["count"].(float64) != 2 || m["skipped"] != 1.0 || len(skipped) != 1 || m["replay_hint"] != ops.SkipHint {
			t.Fatalf("dry run %v: %d %v", dry, code, m)
		}
		want := map[string]any{"id": big.ID, "origin": "inlet.raw/1/42", "reason": ops.ReasonNoEvent}
		if s := skipped[0].(map[string]any); !maps.Equal(s, want) {
			t.Fatalf("dry run %v: skipped %v, want %v", dry, s, want)
		}
	}
	if _, m, _ := call(t, srv, "GET", "/v1/dlq", "w", ""); m["count"].(float64) != 2 {
		t.Fatalf("unresolved after the requeue: %v; want the skipped entry and stripe's", m)
	}
	code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"ids":["inlet.dlq/0/2"],"reason":"sink fixed"}`)
	if code != http.StatusConflict || !strings.Contains(m["error"].(string), "no copy of its event") {
		t.Fatalf("requeue of the entry alone: %d %v, want 409", code, m)
	}
	// An entry too large to requeue, named alone: 409 too, not a 503
	// that tells the caller to retry.
	q.fail = fmt.Errorf("requeue: nothing was done: inlet.dlq/0/2 is %w", ops.ErrTooLarge)
	code, m, _ = call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"ids":["inlet.dlq/0/2"],"reason":"sink fixed"}`)
	if code != http.StatusConflict || !strings.Contains(m["error"].(string), "too large to requeue") {
		t.Fatalf("requeue of an entry too large to requeue: %d %v, want 409", code, m)
	}
	q.fail = nil
	// Nothing skipped: the fields are there, empty.
	code, m, _ = call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":["inlet.dlq/0/2"],"reason":"replayed"}`)
	if s, ok := m["skipped_entries"].([]any); code != 200 || m["count"].(float64) != 1 || m["skipped"] != 0.0 || !ok || len(s) != 0 || m["replay_hint"] != nil {
		t.Fatalf("discard: %d %v", code, m)
	}
}

// TestUnknownSourceIsRefused: with the sources known (Deps.Sources), a
// filter naming a source that is not one of them and matching no entry is
// a bad request (400) naming the known sources, for a listing and a
// decision, dry run or not: it answered 200 with a count of 0, which reads
// as "nothing to do" when the source was mistyped. A source no longer in
// the file whose entries are still on the queue is found and decided. Not
// knowing the sources, the API answers as before.
func TestUnknownSourceIsRefused(t *testing.T) {
	q := newFake()
	q.entries[topics.DLQ] = append(q.entries[topics.DLQ], &ops.Entry{ID: "inlet.dlq/0/9", Source: "retired", LastError: "sink answered 503"})
	a, err := New(Tokens{Write: "w"}, Deps{Queues: q, Topics: topics, Sources: []string{"shop", "stripe"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/dlq?source=nosuch", ""},
		{"GET", "/v1/invalid?source=nosuch&group=true", ""},
		{"POST", "/v1/dlq/requeue", `{"filter":{"source":"nosuch"},"reason":"x"}`},
		{"POST", "/v1/invalid/discard", `{"filter":{"source":"nosuch","error":"503"},"reason":"x","dry_run":true}`},
	} {
		code, m, _ := call(t, srv, c.method, c.path, "w", c.body)
		msg, _ := m["error"].(string)
		known, _ := m["known_sources"].([]any)
		if code != http.StatusBadRequest || !strings.Contains(msg, `"nosuch"`) || !strings.Contains(msg, "shop, stripe") || fmt.Sprint(known) != "[shop stripe]" {
			t.Errorf("%s %s %s: %d %v; want 400 naming the known sources", c.method, c.path, c.body, code, m)
		}
	}
	if code, m, _ := call(t, srv, "GET", "/v1/invalid?source=stripe", "w", ""); code != 200 || m["count"].(float64) != 0 {
		t.Errorf("a known source matching nothing: %d %v; want 200, count 0", code, m)
	}
	if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"source":"retired"},"reason":"source retired"}`); code != 200 || m["count"].(float64) != 1 {
		t.Errorf("a source no longer in the file, with an entry: %d %v; want it discarded", code, m)
	}
	if len(q.calls) != 3 || q.calls[2] != "discard by admin-token:write" {
		t.Errorf("calls %v", q.calls)
	}
	srv = newServer(t, newFake(), Tokens{Write: "w"})
	if code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"filter":{"source":"nosuch"},"reason":"x"}`); code != 200 || m["count"].(float64) != 0 {
		t.Errorf("sources not known: %d %v; want 200, count 0", code, m)
	}
}

func TestDisabled(t *testing.T) {
	_, err := New(Tokens{}, Deps{Queues: newFake(), Topics: topics})
	if !errors.Is(err, ErrDisabled) {
		t.Fatalf("New without tokens: %v", err)
	}
	srv := newServer(t, newFake(), Tokens{})
	for _, p := range []string{"/v1/dlq", "/v1/depth"} {
		if code, m, _ := call(t, srv, "GET", p, "anything", ""); code != http.StatusServiceUnavailable || !strings.Contains(m["error"].(string), EnvWriteToken) {
			t.Errorf("%s: %d %v", p, code, m)
		}
	}
}

func TestTokensFromEnv(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(f, []byte("read-token-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvReadToken, "")
	t.Setenv(EnvReadToken+"_FILE", f)
	t.Setenv(EnvWriteToken, "write-token-0123456789")
	tok, err := TokensFromEnv()
	if err != nil || tok.Read != "read-token-from-a-file" || tok.Write != "write-token-0123456789" {
		t.Fatalf("%+v %v", tok, err)
	}
}

// TestListIsPaged: a listing answers one page (DefaultLimit unless ?limit=
// says otherwise, never above MaxLimit) with the count of every match and
// the cursor of the next page; a decision answers the full count and the
// entries ops returned (at most ops.MaxShown: that cap is tested in
// pkg/ops), saying when they are fewer.
func TestListIsPaged(t *testing.T) {
	q := &fakeQueues{entries: map[string][]*ops.Entry{}}
	for i := range MaxLimit + 250 {
		q.entries[topics.DLQ] = append(q.entries[topics.DLQ], &ops.Entry{ID: fmt.Sprintf("inlet.dlq/0/%d", i), Source: "shop", LastError: "503"})
	}
	srv := newServer(t, q, Tokens{Write: "w"})
	code, m, _ := call(t, srv, "GET", "/v1/dlq", "w", "")
	if code != 200 || m["count"].(float64) != MaxLimit+250 || len(m["entries"].([]any)) != DefaultLimit || m["next"] == nil {
		t.Fatalf("default page: %d count %v, %d entries, next %v", code, m["count"], len(m["entries"].([]any)), m["next"])
	}
	code, m, _ = call(t, srv, "GET", "/v1/dlq?limit=2&after="+m["next"].(string), "w", "")
	if es := m["entries"].([]any); code != 200 || len(es) != 2 || es[0].(map[string]any)["id"] != fmt.Sprintf("inlet.dlq/0/%d", DefaultLimit) {
		t.Fatalf("second page: %d %v", code, m)
	}
	for _, bad := range []string{"limit=0", "limit=-1", "limit=abc", fmt.Sprintf("limit=%d", MaxLimit+1), "after=nonsense"} {
		if code, m, _ := call(t, srv, "GET", "/v1/dlq?"+bad, "w", ""); code != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("%s: %d %v, want 400 with an error", bad, code, m)
		}
	}
	if _, m, _ := call(t, srv, "GET", "/v1/dlq?group=true", "w", ""); m["count"].(float64) != MaxLimit+250 {
		t.Fatalf("groups: %v", m)
	}
	// Nothing matches: [] as for entries, not null.
	if _, m, _ := call(t, srv, "GET", "/v1/dlq?group=true&source=nope", "w", ""); m["count"].(float64) != 0 || m["groups"] == nil {
		t.Fatalf("no groups: %v, want an empty list", m)
	}
	code, m, _ = call(t, srv, "POST", "/v1/dlq/discard", "w", `{"filter":{"source":"shop"},"reason":"cancelled upstream"}`)
	if code != 200 || m["count"].(float64) != MaxLimit+250 || len(m["entries"].([]any)) != ops.MaxShown || m["entries_truncated"] != true {
		t.Fatalf("decision: %d count %v, %d entries, truncated %v", code, m["count"], len(m["entries"].([]any)), m["entries_truncated"])
	}
}

// TestDecideBodyIsOneJSONObject: a decision's body is one JSON object with
// each key once. encoding/json reads the first value and lets the last of
// a repeated key win (matching keys regardless of case), so a body of two
// objects (curl with two -d) or with "dry_run" given twice ran the
// decision for real; each is refused (400) before anything is decided. A
// body over the limit answers 413.
func TestDecideBodyIsOneJSONObject(t *testing.T) {
	q := newFake()
	srv := newServer(t, q, Tokens{Write: "w"})
	const one = `{"ids":["inlet.dlq/0/1"],"reason":"sink fixed","dry_run":true}`
	for name, tc := range map[string]struct {
		body, want string
	}{
		"a second object":           {`{"ids":["inlet.dlq/0/1"],"reason":"sink fixed"}{"dry_run":true}`, "after the JSON object"},
		"a second object, spaced":   {one + "\n {}", "after the JSON object"},
		"text after the object":     {one + " x", "after the JSON object"},
		"a key given twice":         {`{"ids":["inlet.dlq/0/1"],"reason":"sink fixed","dry_run":true,"dry_run":false}`, `"dry_run"`},
		"a key given twice in case": {`{"ids":["inlet.dlq/0/1"],"reason":"sink fixed","dry_run":true,"DRY_RUN":false}`, `"DRY_RUN"`},
		"a key folding alike":       {`{"ids":["inlet.dlq/0/1"],"idſ":["inlet.dlq/1/7"],"reason":"sink fixed","dry_run":true}`, `"idſ"`},
		"a key of the filter twice": {`{"filter":{"source":"stripe","source":"shop"},"reason":"sink fixed"}`, `"filter.source"`},
	} {
		t.Run(name, func(t *testing.T) {
			code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", tc.body)
			if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("%d %v; want 400 naming %s", code, m, tc.want)
			}
		})
	}
	if len(q.calls) != 0 {
		t.Errorf("decisions were made: %v", q.calls)
	}
	t.Run("white space after the object is fine", func(t *testing.T) {
		if code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", one+"\r\n\t "); code != http.StatusOK || m["count"] != 1.0 || m["dry_run"] != true {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("a body over 1 MiB is 413", func(t *testing.T) {
		ids := strings.Repeat(`"inlet.dlq/0/1",`, (1<<20)/16+1)
		code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":[`+ids+`"inlet.dlq/0/1"],"reason":"x","dry_run":true}`)
		if code != http.StatusRequestEntityTooLarge || m["error"] == nil {
			t.Fatalf("%d %v, want 413", code, m)
		}
	})
	if _, m, _ := call(t, srv, "GET", "/v1/depth", "w", ""); m["dlq"] != 3.0 {
		t.Errorf("depth %v, want 3: nothing decided", m)
	}
}

// TestOperatorIsCutAtARuneBoundary: the operator's name is cut to 64
// bytes without splitting a character (it left half of one, shown as
// U+FFFD, in the audited name).
func TestOperatorIsCutAtARuneBoundary(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Write: "w"})
	name := strings.Repeat("a", 63) + "é" // é spans bytes 63 and 64
	code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":["inlet.dlq/0/1"],"reason":"x","dry_run":true}`, HeaderOperator, name)
	if want := strings.Repeat("a", 63) + " (admin-token:write)"; code != 200 || m["who"] != want {
		t.Fatalf("%d who %q, want %q", code, m["who"], want)
	}
}

// TestDecisionWithoutWhoIsABadRequest: ops refusing a decision that
// names nobody (ops.ErrNoWho) is answered 400, as one without a reason
// is: the request, not the cluster, is at fault. It was answered 503, as
// if the cluster were down, inviting a retry. (The API names the token at
// least, so only another caller of ops gets there.)
func TestDecisionWithoutWhoIsABadRequest(t *testing.T) {
	q := newFake()
	srv := newServer(t, q, Tokens{Write: "w"})
	q.fail = fmt.Errorf("discard: %w", ops.ErrNoWho)
	code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":["inlet.dlq/0/1"],"reason":"x"}`)
	if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, ops.ErrNoWho.Error()) {
		t.Fatalf("%d %v, want 400 saying %q", code, m, ops.ErrNoWho)
	}
}

// TestFencedDecisionIsAConflict: a decision another one fenced answers
// 409 (another decision took over; the same call again goes on), not 503
// as if the cluster were down.
func TestFencedDecisionIsAConflict(t *testing.T) {
	q := newFake()
	srv := newServer(t, q, Tokens{Write: "w"})
	for _, kerrErr := range []error{kerr.ProducerFenced, kerr.InvalidTxnState} {
		q.fail = fmt.Errorf("discard: another decision started meanwhile: nothing was done: commit refused: %w", kerrErr)
		code, m, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":["inlet.dlq/0/1"],"reason":"x"}`)
		if msg, _ := m["error"].(string); code != http.StatusConflict || !strings.Contains(msg, "another decision started meanwhile") {
			t.Errorf("%v: %d %v, want 409 saying so", kerrErr, code, m)
		}
	}
	q.fail = errors.New("unable to dial: connection refused")
	if code, _, _ := call(t, srv, "POST", "/v1/dlq/discard", "w", `{"ids":["inlet.dlq/0/1"],"reason":"x"}`); code != http.StatusServiceUnavailable {
		t.Errorf("cluster down: %d, want 503", code)
	}
}

// TestSwappedRangeRefused: since at or after until is a 400, for a listing
// and a decision; a listing answered an empty page, read as "nothing
// there".
func TestSwappedRangeRefused(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Write: "w"})
	if code, m, _ := call(t, srv, "GET", "/v1/dlq?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z", "w", ""); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "not before until") {
		t.Errorf("list: %d %v, want 400", code, m)
	}
	body := `{"filter":{"since":"2025-02-01T00:00:00Z","until":"2025-01-01T00:00:00Z"},"reason":"x"}`
	if code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", body); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "not before until") {
		t.Errorf("requeue: %d %v, want 400", code, m)
	}
}

// TestListQueryIsStrict: a listing's true/false parameter that is not one
// (?all=yes) is a 400, not false: answered as all=false it listed the
// unresolved entries only, and their count read as everything there was.
// A parameter the listing does not read (a typo of a filter) or one given
// twice is a 400 too, never the whole queue as the filter's answer.
func TestListQueryIsStrict(t *testing.T) {
	q := newFake()
	if _, err := q.Discard(t.Context(), topics.DLQ, ops.Filter{IDs: []string{"inlet.dlq/0/1"}}, "w", "done", false); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, q, Tokens{Read: "r-token", Write: "w-token"})
	code, all, _ := call(t, srv, "GET", "/v1/dlq?all=true", "r-token", "")
	_, unresolved, _ := call(t, srv, "GET", "/v1/dlq", "r-token", "")
	if code != http.StatusOK || all["count"] == unresolved["count"] {
		t.Fatalf("all=true: %d count %v, unresolved count %v: the fake's discard should tell them apart", code, all["count"], unresolved["count"])
	}
	for _, tt := range []struct{ query, want string }{
		{"all=yes", `all "yes": want true or false`},
		{"all=on", `all "on": want true or false`},
		{"group=yes", `group "yes": want true or false`},
		{"event_type=invoice.paid", `unknown query parameter "event_type"`},
		{"all=true&all=false", `"all" given 2 times`},
		{"id=inlet.dlq/0/1&sorce=shop", `unknown query parameter "sorce"`},
	} {
		code, m, _ := call(t, srv, "GET", "/v1/dlq?"+tt.query, "r-token", "")
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), tt.want) {
			t.Errorf("?%s: %d %v, want 400 saying %s", tt.query, code, m, tt.want)
		}
	}
	for _, ok := range []string{"all=1", "all=false", "group=false&all=TRUE", "limit=5&source=shop&type=x&error=y&since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		if code, m, _ := call(t, srv, "GET", "/v1/dlq?"+ok, "r-token", ""); code != http.StatusOK {
			t.Errorf("?%s: %d %v, want 200", ok, code, m)
		}
	}
}

// TestTokensFromEnvRefusesShortTokens: the write token requeues and
// discards dead letters; a short one (the Secret example's REPLACE_ME) is
// refused at start, naming the variable, never the token.
func TestTokensFromEnvRefusesShortTokens(t *testing.T) {
	for _, env := range []string{EnvWriteToken, EnvReadToken} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(EnvWriteToken, "")
			t.Setenv(EnvReadToken, "")
			t.Setenv(env, "REPLACE_ME")
			_, err := TokensFromEnv()
			if err == nil || !strings.Contains(err.Error(), env) || strings.Contains(err.Error(), "REPLACE_ME") {
				t.Fatalf("TokensFromEnv with a 10-byte %s = %v; want an error naming it, not quoting it", env, err)
			}
			t.Setenv(env, strings.Repeat("k", MinTokenLen))
			if tok, err := TokensFromEnv(); err != nil || tok.Read+tok.Write != strings.Repeat("k", MinTokenLen) {
				t.Fatalf("TokensFromEnv with a %d-byte token = %+v, %v", MinTokenLen, tok, err)
			}
		})
	}
}

// TestTokensFromEnvRefusesThePlaceholder: a token that is the Kubernetes
// Secret example's placeholder or starts with it, of any length, from the
// variable or its file, is refused at start naming the variable, never
// the value: "REPLACE_ME_0123456789" was 21 bytes, past MinTokenLen, and
// taken as the write token, one anyone reading the example could use.
func TestTokensFromEnvRefusesThePlaceholder(t *testing.T) {
	for _, env := range []string{EnvWriteToken, EnvReadToken} {
		for _, v := range []string{"REPLACE_ME_0123456789abcdef", " replace_me-please-0123456789\n", "REPLACE_ME"} {
			for _, file := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %q file=%v", env, v, file), func(t *testing.T) {
					for _, e := range []string{EnvWriteToken, EnvReadToken} {
						t.Setenv(e, "")
						t.Setenv(e+"_FILE", "")
					}
					if file {
						f := filepath.Join(t.TempDir(), "token")
						if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
							t.Fatal(err)
						}
						t.Setenv(env+"_FILE", f)
					} else {
						t.Setenv(env, v)
					}
					_, err := TokensFromEnv()
					if err == nil || !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), "placeholder") ||
						strings.Contains(strings.ToUpper(err.Error()), "REPLACE_ME") {
						t.Fatalf("TokensFromEnv = %v; want an error naming %s as the placeholder, not quoting it", err, env)
					}
				})
			}
		}
	}
	t.Setenv(EnvReadToken, "")
	t.Setenv(EnvWriteToken, "token-with-REPLACE_ME-inside-0123")
	if tok, err := TokensFromEnv(); err != nil || tok.Write == "" {
		t.Fatalf("a token holding the placeholder after its start: %+v, %v; want it taken", tok, err)
	}
}

// TestMalformedQueryIsRefused: a query Go cannot parse whole (a bare %,
// a semicolon) lost the pairs it could not read, silently: ?error=50%
// or ?source=shop;x listed the whole queue, its count read as the
// filter's answer. It is a 400 naming what is wrong, as a typo is.
func TestMalformedQueryIsRefused(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Read: "r-token"})
	for _, query := range []string{"error=50%", "source=shop;x", "source=stripe&error=%zz", "id=inlet.dlq/0/1;x"} {
		code, m, _ := call(t, srv, "GET", "/v1/dlq?"+query, "r-token", "")
		if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "query") {
			t.Errorf("?%s: %d %v, want 400 saying the query cannot be read", query, code, m)
		}
	}
}

// TestShowByQueryIDIsStrict: ?id= shows one entry. Empty (a script's
// unset variable: ?id=$ID) it listed the whole queue, a listing where the
// script read one entry; with a filter beside it the filter was ignored,
// the entry shown whether it matched or not.
func TestShowByQueryIDIsStrict(t *testing.T) {
	srv := newServer(t, newFake(), Tokens{Read: "r-token"})
	for _, tt := range []struct{ query, want string }{
		{"id=", "not an entry id"},
		{"id=inlet.dlq/0/1&source=stripe", `"source"`},
		{"id=inlet.dlq/0/1&limit=5", `"limit"`},
	} {
		code, m, _ := call(t, srv, "GET", "/v1/dlq?"+tt.query, "r-token", "")
		if msg, _ := m["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
			t.Errorf("?%s: %d %v, want 400 saying %s", tt.query, code, m, tt.want)
		}
	}
	if code, m, _ := call(t, srv, "GET", "/v1/dlq?id=inlet.dlq/0/1", "r-token", ""); code != http.StatusOK || m["id"] != "inlet.dlq/0/1" {
		t.Fatalf("?id=inlet.dlq/0/1: %d %v, want the entry", code, m)
	}
}

// TestShowAnswersAsInletctlShows: one entry's payload that is neither
// JSON nor UTF-8 (a latin-1 form body, on the invalid queue) is answered
// as base64, as inletctl show --output json and the entry's value are;
// as a string its bytes became U+FFFD, for good. The request headers the
// envelope kept (the source's allowlist) are answered too, as inletctl
// shows them.
func TestShowAnswersAsInletctlShows(t *testing.T) {
	q := newFake()
	q.entries[topics.Invalid] = append(q.entries[topics.Invalid], &ops.Entry{ID: "inlet.invalid/0/5", Source: "shop",
		Payload: []byte("name=Jos\xe9"), Headers: map[string]string{"X-Shopify-Api-Version": "2024-01"}})
	srv := newServer(t, q, Tokens{Read: "r-token"})
	code, m, _ := call(t, srv, "GET", "/v1/invalid/inlet.invalid/0/5", "r-token", "")
	p, _ := m["payload"].(map[string]any)
	h, _ := m["headers"].(map[string]any)
	if code != http.StatusOK || p["base64"] != "bmFtZT1Kb3Pp" || h["X-Shopify-Api-Version"] != "2024-01" {
		t.Fatalf("%d payload %#v headers %#v, want the payload as base64 and the kept headers", code, m["payload"], m["headers"])
	}
	// Text and JSON payloads as before.
	if _, m, _ := call(t, srv, "GET", "/v1/dlq/inlet.dlq/0/1", "r-token", ""); fmt.Sprint(m["payload"]) != "map[id:1]" || m["headers"] != nil {
		t.Fatalf("a JSON payload: %#v headers %#v", m["payload"], m["headers"])
	}
}

// stoppedQueues decides count entries of every decision and then fails
// with err, as ops does when Kafka goes away midway.
type stoppedQueues struct {
	*fakeQueues
	count int
	err   error
}

func (q *stoppedQueues) Requeue(context.Context, string, ops.Filter, string, string, bool) (ops.Decided, error) {
	return ops.Decided{Count: q.count}, q.err
}

// TestDecisionStoppedMidwaySaysHowMany: a decision that fails midway
// keeps what it committed; its 503 says how many in "count", as the 409
// of a fenced one does and inletctl's JSON does, not only in the text.
func TestDecisionStoppedMidwaySaysHowMany(t *testing.T) {
	q := &stoppedQueues{fakeQueues: newFake(), count: 20000,
		err: errors.New("requeue: 20000 entries were decided before it and stand; run it again to go on with the rest: unable to dial: connection refused")}
	srv := newServer(t, q, Tokens{Write: "w"})
	code, m, _ := call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"filter":{"source":"shop"},"reason":"x"}`)
	if n, _ := m["count"].(float64); code != http.StatusServiceUnavailable || n != 20000 {
		t.Fatalf("%d %v, want 503 with count 20000", code, m)
	}
	q.count = 0
	code, m, _ = call(t, srv, "POST", "/v1/dlq/requeue", "w", `{"filter":{"source":"shop"},"reason":"x"}`)
	if n, ok := m["count"].(float64); code != http.StatusServiceUnavailable || !ok || n != 0 {
		t.Fatalf("nothing done: %d %v, want 503 with count 0", code, m)
	}
}
