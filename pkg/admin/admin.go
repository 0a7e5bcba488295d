// Package admin is the operator's HTTP API, mounted on the processor's (or
// the dev stack's) admin listener: list, show, requeue and discard the
// dead-letter and invalid queues, their depths, and one event's trace.
//
// It is off unless a bearer token is configured: INLET_ADMIN_READ_TOKEN
// allows the GET routes, INLET_ADMIN_TOKEN allows everything (each may also
// come from the file named by *_FILE). Every requeue and discard is audited
// by pkg/ops on the audit topic with who (the token's role, or the operator
// named in X-Inlet-Operator, plus the role), when, what and why.
//
// Routes (JSON in and out):
//
//	GET  /v1/dlq, /v1/invalid                 list; ?source= &type= &error= &since= &until= &all=true &limit= &after=
//	                                          or count by group: ?group=true with the filters (no limit= or after=)
//	GET  /v1/dlq/{id...}, /v1/dlq?id=ID        one entry with its payload (ids are topic/partition/offset)
//	POST /v1/dlq/requeue, /v1/dlq/discard      {"ids":[…] | "filter":{…}, "reason":"…", "dry_run":true}
//	                                          (a requeue answers the entries it skipped, a decision by ids
//	                                          those it did not decide: see DecideResponse; 404 when none
//	                                          is on the queue, 409 when every one was already decided)
//	                                          (a listing or decision whose filter names a source not in
//	                                          Deps.Sources and matches nothing: 400, with known_sources)
//	(the same for /v1/invalid)
//	GET  /v1/depth                            {"dlq":n,"invalid":n} unresolved entries
//	GET  /v1/trace/{id}                       one correlation id's history: {"stages":[…], "dropped_entries":n}
//	                                          (n older entries dropped to keep its bound: a shared correlation id)
//
// Only the listing takes query parameters: any other, on any route, is a
// 400 naming it.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/inletdev/inlet/pkg/bearer"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
)

// Environment variables holding the tokens (or, with _FILE, naming a file
// holding them).
const (
	EnvReadToken  = "INLET_ADMIN_READ_TOKEN"
	EnvWriteToken = "INLET_ADMIN_TOKEN"
)

// HeaderOperator names the person acting; it is recorded in the audit
// decision beside the token's role.
const HeaderOperator = "X-Inlet-Operator"

// ErrDisabled is returned by New when no token is configured. The API it
// returns alongside still works: every route answers 503, saying how to
// turn it on. Log it loudly at start.
var ErrDisabled = errors.New("admin API disabled: set " + EnvWriteToken + " (read+write) and/or " + EnvReadToken + " (read-only), or their _FILE variants")

// Tokens are the bearer tokens the API accepts; an empty one is not
// accepted.
type Tokens struct {
	Read  string // GET routes only
	Write string // every route
}

// TokensFromEnv reads the tokens from INLET_ADMIN_READ_TOKEN and
// INLET_ADMIN_TOKEN (or their _FILE variants). A token shorter than
// MinTokenLen is refused: the write token requeues and discards dead
// letters, the API does not slow down a guesser, and the shipped Secret
// example's REPLACE_ME would otherwise have been one. So is one that is
// the example's placeholder or starts with it, of any length
// (flagenv.Placeholder).
func TokensFromEnv() (Tokens, error) {
	var t Tokens
	for _, v := range []struct {
		name string
		to   *string
	}{{EnvReadToken, &t.Read}, {EnvWriteToken, &t.Write}} {
		tok, err := flagenv.Secret(v.name)
		if err != nil {
			return Tokens{}, err
		}
		if flagenv.Placeholder(tok) {
			// Of any length: "REPLACE_ME_..." is public, and the write
			// token requeues and discards. The value is not quoted.
			return Tokens{}, fmt.Errorf("%s (or %s_FILE) holds the placeholder of the Kubernetes Secret example (deploy/k8s/secret-example.yaml), not a token: set it to a token of your own (make one with: openssl rand -hex 32)", v.name, v.name)
		}
		if tok != "" && len(tok) < MinTokenLen {
			return Tokens{}, fmt.Errorf("%s (or %s_FILE) is %d bytes long: an admin token must have at least %d (make one with: openssl rand -hex 32)", v.name, v.name, len(tok), MinTokenLen)
		}
		*v.to = tok
	}
	return t, nil
}

// MinTokenLen is the shortest admin token accepted, in bytes.
const MinTokenLen = 16

// Queues is what the API needs of *ops.Queues.
type Queues interface {
	List(ctx context.Context, topic string, f ops.Filter) ([]*ops.Entry, error)
	Page(ctx context.Context, topic string, f ops.Filter, cursor string, limit int) (ops.Listing, error)
	Groups(ctx context.Context, topic string, f ops.Filter) ([]ops.Group, int, error)
	Depth(ctx context.Context, topic string) (int, error)
	Requeue(ctx context.Context, topic string, f ops.Filter, who, why string, dryRun bool) (ops.Decided, error)
	Discard(ctx context.Context, topic string, f ops.Filter, who, why string, dryRun bool) (ops.Decided, error)
}

// Deps are what the API serves from.
type Deps struct {
	Queues Queues
	Topics kafka.Topics
	// Trace serves GET /v1/trace/{id} (history.Store.Handler()); nil
	// answers 404.
	Trace http.Handler
	// Log records every mutating call (default: discard).
	Log *slog.Logger
	// Timeout bounds one call's Kafka work; default 60s.
	Timeout time.Duration
	// MaxConcurrent bounds the authorized calls served at once (default
	// 4); more wait for a slot, up to Timeout, then answer 503.
	MaxConcurrent int
	// Meter counts requeues and discards made through the API
	// (inlet.ops.actions); nil counts nothing.
	Meter metric.Meter
	// Sources are the sources file's source names (source.File.Names):
	// a listing or a decision whose filter names another source and
	// matches no entry is refused (400, naming them), as inletctl refuses
	// it. Nil: the sources are not known, and it answers a count of 0.
	Sources []string
}

// API is the admin http.Handler.
type API struct {
	d           Deps
	actions     metric.Int64Counter
	read, write []byte // the tokens; nil: not configured
	mux         *http.ServeMux
	slots       chan struct{} // one per call being served
}

type role int

const (
	roleNone role = iota
	roleRead
	roleWrite
)

func (r role) String() string { return [...]string{"none", "read", "write"}[r] }

// New returns the API. With no token configured it returns ErrDisabled and
// an API answering 503 everywhere.
func New(tok Tokens, d Deps) (*API, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Timeout <= 0 {
		d.Timeout = 60 * time.Second
	}
	if d.Meter == nil {
		d.Meter = noop.NewMeterProvider().Meter("")
	}
	if d.MaxConcurrent <= 0 {
		d.MaxConcurrent = DefaultMaxConcurrent
	}
	a := &API{d: d, mux: http.NewServeMux(), slots: make(chan struct{}, d.MaxConcurrent)}
	var err error
	// Counted here, where the long-running process sees the action; every
	// action, from the API or straight from inletctl, is also on the audit
	// topic.
	if a.actions, err = d.Meter.Int64Counter("inlet.ops.actions",
		metric.WithDescription("Failure-queue entries requeued or discarded through the admin API, by queue and action (dry runs excluded).")); err != nil {
		return nil, err
	}
	if tok.Read != "" {
		a.read = []byte(tok.Read)
	}
	if tok.Write != "" {
		a.write = []byte(tok.Write)
	}
	if a.read == nil && a.write == nil {
		a.mux.HandleFunc("/v1/", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": ErrDisabled.Error()})
		})
		return a, ErrDisabled
	}
	if d.Queues == nil {
		return nil, errors.New("admin: Queues is required")
	}
	for _, q := range []struct{ name, topic string }{{"dlq", d.Topics.DLQ}, {"invalid", d.Topics.Invalid}} {
		a.mux.Handle("GET /v1/"+q.name, a.auth(roleRead, a.list(q.topic)))
		a.mux.Handle("GET /v1/"+q.name+"/{id...}", a.auth(roleRead, noQuery(a.show(q.topic))))
		a.mux.Handle("POST /v1/"+q.name+"/requeue", a.auth(roleWrite, noQuery(a.decide(q.name, q.topic, "requeue"))))
		a.mux.Handle("POST /v1/"+q.name+"/discard", a.auth(roleWrite, noQuery(a.decide(q.name, q.topic, "discard"))))
	}
	a.mux.Handle("GET /v1/depth", a.auth(roleRead, noQuery(http.HandlerFunc(a.depth))))
	trace := d.Trace
	if trace == nil {
		trace = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": ErrTextNoHistoryStore})
		})
	}
	a.mux.Handle("GET /v1/trace/{id}", a.auth(roleRead, noQuery(trace)))
	return a, nil
}

// ErrTextNoHistoryStore is the trace route's 404 without a history store.
const ErrTextNoHistoryStore = "no history store configured"

// Enabled reports whether any token is configured.
func (a *API) Enabled() bool { return a.read != nil || a.write != nil }

// ServeHTTP routes /v1/… requests.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if uncleaned(w, r) {
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		noRoute(w, r, a.mux)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// noRoute answers a request no route takes as every other error is
// answered, in JSON ("error"): ServeMux's own 404 and 405 are plain text,
// which neither inletctl nor a script reading .error can read. A path a
// route takes with another method is 405 with Allow, as ServeMux says it.
func noRoute(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		other := r.Clone(r.Context())
		other.Method = m
		if _, pattern := mux.Handler(other); pattern != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed on " + r.URL.Path + ": use " + strings.Join(allow, ", ")})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no admin API route " + r.URL.Path + " " + routesText})
}

const routesText = "(routes: /v1/dlq, /v1/invalid, /v1/depth, /v1/trace/{id})"

// Register mounts the API's routes on mux (under /v1/). Serve mux
// wrapped in RefuseUncleaned: mux itself redirects a path such as
// /v1//dlq before the API sees it.
func (a *API) Register(mux *http.ServeMux) { mux.Handle("/v1/", a) }

// roleOf compares the bearer token with both configured tokens (see
// bearer.Matches).
func (a *API) roleOf(r *http.Request) role {
	tok, ok := bearer.Token(r.Header.Get("Authorization"))
	if !ok {
		return roleNone
	}
	isW := a.write != nil && bearer.Matches(tok, a.write)
	isR := a.read != nil && bearer.Matches(tok, a.read)
	switch {
	case isW:
		return roleWrite
	case isR:
		return roleRead
	}
	return roleNone
}

type ctxKey struct{}

func (a *API) auth(need role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := a.roleOf(r)
		switch {
		case got == roleNone:
			w.Header().Set("WWW-Authenticate", `Bearer realm="inlet-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or invalid bearer token"})
			return
		case got < need:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "this token is read-only; requeue and discard need " + EnvWriteToken})
			return
		}
		// After the token check: a caller without one takes no slot.
		if !a.acquire(w, r) {
			return
		}
		defer func() { <-a.slots }()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, got)))
	})
}

// DefaultMaxConcurrent is Deps.MaxConcurrent's default. Each call reads
// a whole queue (and the audit topic) with Kafka clients of its own, in
// the processor: 50 listings at once of a 40 MB queue took its heap to
// 2.5 GiB and stalled /metrics for 1.5 s, and finished no sooner than one
// after another (112 MiB).
const DefaultMaxConcurrent = 4

// acquire takes a slot for r, waiting up to Timeout; it reports false
// once it has answered instead: 503 with Retry-After when none came free,
// nothing when the caller left.
func (a *API) acquire(w http.ResponseWriter, r *http.Request) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.d.Timeout)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	case <-t.C:
	}
	w.Header().Set("Retry-After", "10")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf(
		"admin API busy: %d calls were being served (the most at once) for all of %v; try again", cap(a.slots), a.d.Timeout)})
	return false
}

// who is the audited actor: the operator header if given (sanitised), and
// the token's role.
func who(r *http.Request) string {
	rl, _ := r.Context().Value(ctxKey{}).(role)
	tokenName := "admin-token:" + rl.String()
	op := strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, strings.TrimSpace(r.Header.Get(HeaderOperator)))
	if len(op) > 64 {
		// At a rune boundary: half a character would be audited as U+FFFD.
		cut := 64
		for cut > 0 && !utf8.RuneStart(op[cut]) {
			cut--
		}
		op = op[:cut]
	}
	if op == "" {
		return tokenName
	}
	return op + " (" + tokenName + ")"
}

// listParams are the query parameters a queue listing reads.
var listParams = []string{"id", "source", "type", "error", "since", "until", "all", "group", "limit", "after"}

// checkQuery refuses a parameter outside known, or one given twice: a
// typo such as ?event_type= would otherwise list the whole queue as if it
// were the answer to the filter, of ?all=true&all=false only the first
// would count, and a requeue's ?dry_run=true requeued for real.
func checkQuery(q url.Values, known []string) error {
	for k, vs := range q {
		if !slices.Contains(known, k) {
			names := "none"
			if len(known) > 0 {
				names = strings.Join(known, ", ")
			}
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, names)
		}
		if len(vs) > 1 {
			return fmt.Errorf("query parameter %q given %d times", k, len(vs))
		}
	}
	return nil
}

// queryBool reads a true/false parameter, false when absent. A value
// strconv.ParseBool does not read ("yes", "on") is an error, not false:
// ?all=yes answered with the unresolved entries only, and their count,
// reads as "nothing else is there".
func queryBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", name, s)
	}
	return v, nil
}

// filterFromQuery reads the list filters of q.
func filterFromQuery(q url.Values) (ops.Filter, error) {
	f := ops.Filter{Source: q.Get("source"), EventType: q.Get("type"), ErrorText: q.Get("error")}
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		return f, err
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		return f, err
	}
	if err := f.CheckRange(); err != nil {
		return f, err
	}
	all, err := queryBool(q, "all")
	if err != nil {
		return f, err
	}
	f.Unresolved = !all
	return f, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("time %q: want RFC 3339, e.g. 2025-01-31T12:00:00Z", s)
	}
	return t, nil
}

// Listing limits: a page holds DefaultLimit entries unless ?limit= says
// otherwise, and never more than MaxLimit, so a listing of a long queue
// cannot exhaust the processor's memory (the admin API runs in it). A
// decision answers with its first ops.MaxShown entries and the count.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// query reads r's query and checks it (checkQuery); it reports false
// once it has answered 400 instead. Not r.URL.Query(), which drops what it
// cannot parse (a bare %, a semicolon) without a word: ?error=50% listed
// the whole queue as the filter's answer.
func query(w http.ResponseWriter, r *http.Request, known []string) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad query: " + err.Error() + " (escape % as %25 and ; as %3B)"})
		return nil, false
	}
	if err := checkQuery(q, known); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return nil, false
	}
	return q, true
}

// noQuery refuses any query parameter before next (a route that reads
// none), as the listing refuses one it does not read.
func noQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := query(w, r, nil); ok {
			next.ServeHTTP(w, r)
		}
	})
}

func (a *API) list(topic string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, ok := query(w, r, listParams)
		if !ok {
			return
		}
		if _, ok := q["id"]; ok {
			// One entry, as GET …/{id}: empty (?id=$ID unset) it listed
			// the whole queue, and a filter beside it was ignored.
			for k := range q {
				if k != "id" {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("id= shows one entry and takes no other parameter (got %q)", k)})
					return
				}
			}
			a.one(w, r, topic, q.Get("id"))
			return
		}
		f, err := filterFromQuery(q)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		group, err := queryBool(q, "group")
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if group {
			// The groups are one answer (bounded by ops.Groups), not
			// pages: limit= and after= were ignored, and a script paging
			// them got the same answer every time.
			var paging []string
			for _, k := range []string{"limit", "after"} {
				if _, ok := q[k]; ok {
					paging = append(paging, k+"=")
				}
			}
			if len(paging) > 0 {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "group=true answers every group at once and takes no " +
					strings.Join(paging, " or ") + " (those page a listing): drop " + strings.Join(paging, " and ")})
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.d.Timeout)
		defer cancel()
		if group {
			groups, n, err := a.d.Queues.Groups(ctx, topic, f)
			if err != nil {
				unavailable(w, err)
				return
			}
			if n == 0 && a.unknownSource(w, f.Source) {
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"count": n, "groups": groups})
			return
		}
		limit := DefaultLimit
		if s := q.Get("limit"); s != "" {
			if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > MaxLimit {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("limit %q: want 1 to %d", s, MaxLimit)})
				return
			}
		}
		l, err := a.d.Queues.Page(ctx, topic, f, q.Get("after"), limit)
		if errors.Is(err, ops.ErrBadPage) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err != nil {
			unavailable(w, err)
			return
		}
		if l.Total == 0 && a.unknownSource(w, f.Source) {
			return
		}
		body := map[string]any{"count": l.Total, "entries": entries(l.Entries, false)}
		if l.Next != "" {
			body["next"] = l.Next
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func (a *API) show(topic string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.one(w, r, topic, r.PathValue("id")) })
}

func (a *API) one(w http.ResponseWriter, r *http.Request, topic, id string) {
	ctx, cancel := context.WithTimeout(r.Context(), a.d.Timeout)
	defer cancel()
	if err := ops.CheckIDs([]string{id}); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	es, err := a.d.Queues.List(ctx, topic, ops.Filter{IDs: []string{id}})
	if err != nil {
		unavailable(w, err)
		return
	}
	if len(es) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no entry " + id + " on " + topic})
		return
	}
	writeJSON(w, http.StatusOK, entries(es, true)[0])
}

// DecideRequest is the body of a requeue or discard.
type DecideRequest struct {
	IDs    []string `json:"ids,omitempty"`
	Filter struct {
		Source    string    `json:"source,omitempty"`
		EventType string    `json:"type,omitempty"`
		ErrorText string    `json:"error,omitempty"`
		Since     time.Time `json:"since,omitzero"`
		Until     time.Time `json:"until,omitzero"`
	} `json:"filter"`
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// DecideResponse answers a requeue or discard: how many entries it
// decided, and the first ops.MaxShown of them (in log order); how many
// a requeue skipped, the first ops.MaxShown of them, and what to do with
// them (ops.Decided.Skipped); and the ids named that it found no entry to
// decide by, and why (ops.Decided.Unmatched).
type DecideResponse struct {
	Action           string           `json:"action"`
	DryRun           bool             `json:"dry_run"`
	Who              string           `json:"who"`
	Count            int              `json:"count"`
	Entries          []map[string]any `json:"entries"`
	Truncated        bool             `json:"entries_truncated,omitempty"`
	Skipped          int              `json:"skipped"`
	SkippedEntries   []ops.Skip       `json:"skipped_entries"`
	SkippedTruncated bool             `json:"skipped_truncated,omitempty"`
	ReplayHint       string           `json:"replay_hint,omitempty"` // when some were skipped
	Unmatched        []ops.Miss       `json:"unmatched"`
}

func (a *API) decide(queue, topic, action string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req DecideRequest
		if code, err := decodeBody(w, r, &req); err != nil {
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		if strings.TrimSpace(req.Reason) == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reason is required (it is audited)"})
			return
		}
		fl := req.Filter
		f := ops.Filter{IDs: req.IDs, Source: fl.Source, EventType: fl.EventType, ErrorText: fl.ErrorText, Since: fl.Since, Until: fl.Until}
		if !f.Selects() {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "name ids or a filter (source, type, error, since, until): refusing to act on the whole queue"})
			return
		}
		if err := f.CheckRange(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := ops.CheckIDs(f.IDs); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		actor := who(r)
		ctx, cancel := context.WithTimeout(r.Context(), a.d.Timeout)
		defer cancel()
		do := a.d.Queues.Requeue
		if action == "discard" {
			do = a.d.Queues.Discard
		}
		res, err := do(ctx, topic, f, actor, req.Reason, req.DryRun)
		if errors.Is(err, ops.ErrNoReason) || errors.Is(err, ops.ErrNoWho) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if errors.Is(err, ops.ErrNoEvent) || errors.Is(err, ops.ErrTooLarge) || errors.Is(err, ops.ErrNotEnvelope) {
			// The one entry named cannot be requeued: the request, not
			// the cluster, is at fault, and retrying will not help.
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		// Nothing named was there to decide: none of the ids is on the
		// queue, or every one was decided already (by whom, and how, in
		// unmatched). Neither is a success, and retrying will not help.
		if errors.Is(err, ops.ErrNotFound) || errors.Is(err, ops.ErrDecided) {
			code := http.StatusNotFound
			if errors.Is(err, ops.ErrDecided) {
				code = http.StatusConflict
			}
			writeJSON(w, code, map[string]any{"error": err.Error(), "unmatched": res.Unmatched})
			return
		}
		if !req.DryRun && res.Count > 0 {
			// Counted also when it stopped midway: what it committed stands.
			a.d.Log.Info("admin: "+action, "topic", topic, "who", actor, "reason", req.Reason, "count", res.Count, "skipped", res.Skipped, "error", err)
			a.actions.Add(r.Context(), int64(res.Count), metric.WithAttributes(attribute.String("queue", queue), attribute.String("action", action)))
		}
		if kafka.Refused(err) {
			// Another decision took over (or this one outlived its
			// transaction): not the cluster being down, and the same
			// call again goes on with the rest.
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "count": res.Count})
			return
		}
		if err != nil {
			// What it committed before it stopped stands: how many, for a
			// script as for the 409 above, not only in the text.
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "count": res.Count})
			return
		}
		if len(f.IDs) == 0 && res.Count == 0 && res.Skipped == 0 && a.unknownSource(w, f.Source) {
			return
		}
		writeJSON(w, http.StatusOK, NewDecideResponse(action, req.DryRun, actor, res))
	})
}

// unknownSource answers 400, naming the known sources, and reports true
// when a filter that matched nothing names a source not in Deps.Sources
// (see ops.UnknownSource).
func (a *API) unknownSource(w http.ResponseWriter, source string) bool {
	err := ops.UnknownSource(a.d.Sources, source)
	if err == nil {
		return false
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "known_sources": a.d.Sources})
	return true
}

// NewDecideResponse is the answer to a decision d: what the admin API
// sends and inletctl prints with --output json.
func NewDecideResponse(action string, dryRun bool, who string, d ops.Decided) DecideResponse {
	resp := DecideResponse{Action: action, DryRun: dryRun, Who: who, Count: d.Count,
		Entries: entries(d.Entries, false), Truncated: len(d.Entries) < d.Count,
		Skipped: d.Skipped, SkippedEntries: d.SkippedEntries, SkippedTruncated: len(d.SkippedEntries) < d.Skipped,
		Unmatched: d.Unmatched}
	if resp.SkippedEntries == nil {
		resp.SkippedEntries = []ops.Skip{} // as entries: [] for none
	}
	if resp.Unmatched == nil {
		resp.Unmatched = []ops.Miss{}
	}
	if d.Skipped > 0 {
		resp.ReplayHint = ops.SkipHint
	}
	return resp
}

func (a *API) depth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.d.Timeout)
	defer cancel()
	out := map[string]int{}
	for name, topic := range map[string]string{"dlq": a.d.Topics.DLQ, "invalid": a.d.Topics.Invalid} {
		n, err := a.d.Queues.Depth(ctx, topic)
		if err != nil {
			unavailable(w, err)
			return
		}
		out[name] = n
	}
	writeJSON(w, http.StatusOK, out)
}

// entries renders entries as JSON objects; withPayload adds the payload
// (as JSON when it is JSON, else as text, else as base64) and the kept
// request headers.
func entries(es []*ops.Entry, withPayload bool) []map[string]any {
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		b, _ := json.Marshal(e)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if withPayload {
			// As inletctl show --output json: bytes that are not UTF-8 as
			// base64 (as a string they became U+FFFD), "" for none.
			m["payload"] = ""
			if e.Payload != nil {
				m["payload"] = storedValue(e.Payload)
			}
			if len(e.Headers) > 0 {
				m["headers"] = e.Headers // the request headers the envelope kept
			}
			if e.Problem != "" && e.Payload == nil && !e.NoEvent {
				m["value"] = storedValue(e.Value) // no envelope: the value is all there is
			}
		}
		out = append(out, m)
	}
	return out
}

// storedValue is a value that is no envelope as JSON shows it: null for
// none, JSON as it is, text as a string, other bytes as base64.
func storedValue(v []byte) any {
	switch {
	case v == nil:
		return nil
	case json.Valid(v):
		return json.RawMessage(v)
	case utf8.Valid(v):
		return string(v)
	}
	return map[string][]byte{"base64": v}
}

func unavailable(w http.ResponseWriter, err error) {
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
