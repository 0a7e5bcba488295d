package reconcile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/inletdev/inlet/pkg/source"
)

// SenderEvent is one event the sender says it sent.
type SenderEvent struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Fetcher lists the events a sender sent in [since, until) (zero: open).
type Fetcher interface {
	Fetch(ctx context.Context, since, until time.Time) ([]SenderEvent, error)
}

// Column names accepted, in order of preference. The id is the one Inlet
// keys raw records by: Stripe's event id, GitHub's delivery guid
// (X-GitHub-Delivery), Shopify's webhook id (X-Shopify-Webhook-Id).
var (
	idFields   = []string{"guid", "webhook_id", "event_id", "delivery_id", "id"}
	timeFields = []string{"created", "created_at", "delivered_at", "triggered_at", "occurred_at", "timestamp"}
)

// ErrNoID is returned for a log line or row without a recognised id.
var ErrNoID = errors.New("no event id (want one of guid, webhook_id, event_id, delivery_id, id)")

// ReadLog reads a sender's event log: NDJSON (one object per line, or
// Stripe list pages {"data":[…]}), a JSON array, or CSV with a header row.
// It accepts a Stripe events export ({"id":"evt_…","created":…}), GitHub
// recent deliveries (guid, delivered_at) and a Shopify webhook log
// (webhook_id or id, created_at). Times are Unix seconds or RFC 3339.
//
// An error names where in the file it is: the 1-based line (blank lines
// counted) of an NDJSON value or a CSV row, the element of a JSON array
// or of a page's data. An empty log is no error here: it reads as no
// events, which Check and Validate refuse.
func ReadLog(r io.Reader) ([]SenderEvent, error) {
	br := bufio.NewReader(r)
	first, skipped, err := peekNonSpace(br)
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if first == '{' || first == '[' {
		return readJSON(br, 1+skipped, first == '[')
	}
	return readCSV(br, skipped)
}

// peekNonSpace skips leading white space and byte order marks, and says
// how many lines that was.
func peekNonSpace(br *bufio.Reader) (byte, int, error) {
	lines := 0
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, lines, err
		}
		if b == '\n' {
			lines++
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' && b != 0xef && b != 0xbb && b != 0xbf { // BOM too
			return b, lines, br.UnreadByte()
		}
	}
}

func readJSON(r io.Reader, firstLine int, array bool) ([]SenderEvent, error) {
	lr := &lineReader{r: r, line: firstLine}
	dec := json.NewDecoder(lr)
	dec.UseNumber()
	var out []SenderEvent
	var more bool // the last list page read says more follow
	n := 0
	if array {
		// A log that is one JSON array (GitHub's deliveries, an export) is
		// read element by element: decoded whole it took about four times
		// its size. Its errors name the element.
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("sender log: %w", err)
		}
		lr.advance(dec.InputOffset())
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("sender log: array element %d: %w", n+1, jsonError(err, "this value"))
			}
			lr.advance(dec.InputOffset())
			n++
			if err := collect(v, &out, &more); err != nil {
				return nil, fmt.Errorf("sender log: array element %d: %w", n, err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("sender log: after array element %d: %w", n, jsonError(err, "the array"))
		}
		lr.advance(dec.InputOffset())
	}
	// NDJSON, or whatever follows the array: a stream of values, each
	// named by the line it begins on.
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			if more {
				// stripe events list prints one page (10 events unless
				// --limit) and says has_more: read as the whole log, the
				// rest of the window read as never sent.
				return nil, errors.New("sender log: its last page of events says more follow (has_more: true): it is one page of a longer list; export every page (starting_after), or use --stripe")
			}
			return out, nil
		}
		at, line := lr.start()
		if err != nil {
			return nil, lr.syntaxError(at, line, err)
		}
		lr.advance(dec.InputOffset())
		if err := collect(v, &out, &more); err != nil {
			return nil, fmt.Errorf("sender log: line %d: %w", line, err)
		}
	}
}

// lineReader is the JSON decoder's input, and tells which line of the
// file a value begins on. It keeps what was read since the end of the
// last value decoded (the decoder's own buffer holds it too), so memory
// stays in the order of the largest value, as the decoder's.
type lineReader struct {
	r    io.Reader
	buf  []byte // the input from offset off on, from buf[head]
	head int
	off  int64 // input offset of buf[head]: the end of the last value
	line int   // the line of offset off
}

func (l *lineReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.buf = append(l.buf, p[:n]...)
	return n, err
}

// advance moves past the input up to offset end, the decoder's
// InputOffset after a value or token.
func (l *lineReader) advance(end int64) {
	k := min(max(int(end-l.off), 0), len(l.buf)-l.head)
	l.line += bytes.Count(l.buf[l.head:l.head+k], []byte("\n"))
	l.off += int64(k)
	l.head += k
	if l.head > len(l.buf)/2 { // compact: a copy of what is left, at most half
		l.buf = append(l.buf[:0], l.buf[l.head:]...)
		l.head = 0
	}
}

// start returns where the next value begins (an index into what is kept)
// and its line: after the white space that follows the last value.
func (l *lineReader) start() (int, int) {
	pending := l.buf[l.head:]
	i := 0
	for i < len(pending) && (pending[i] == ' ' || pending[i] == '\t' || pending[i] == '\r' || pending[i] == '\n') {
		i++
	}
	return i, l.line + bytes.Count(pending[:i], []byte("\n"))
}

// syntaxError names the line of the value the decoder failed on, begun at
// index at of what is kept, on line, and the line of the fault itself
// when the value spans lines.
func (l *lineReader) syntaxError(at, line int, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("sender log: line %d: %w", line, jsonError(err, "this value"))
	}
	// Decoded again on its own, the value's fault is at an offset from
	// its start.
	value := l.buf[l.head+at:]
	d := json.NewDecoder(bytes.NewReader(value))
	var v any
	if err := d.Decode(&v); errors.As(err, &se) && se.Offset > 0 && se.Offset <= int64(len(value)) {
		if fault := line + bytes.Count(value[:se.Offset-1], []byte("\n")); fault != line {
			return fmt.Errorf("sender log: line %d: invalid JSON at line %d: %w", line, fault, err)
		}
	}
	return fmt.Errorf("sender log: line %d: invalid JSON: %w", line, err)
}

// jsonError says in words an end of input inside a JSON value.
func jsonError(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the file ends before %s does (a truncated export?)", what)
	}
	return err
}

// collect appends the events of v: an event object, a page of them or an
// array of either. more is set to what each page read says of pages after
// it (has_more).
func collect(v any, out *[]SenderEvent, more *bool) error {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			if err := collect(e, out, more); err != nil {
				return fmt.Errorf("array element %d: %w", i+1, err)
			}
		}
		return nil
	case map[string]any:
		if data, ok := x["data"].([]any); ok && isListPage(x) {
			*more, _ = x["has_more"].(bool)
			for i, e := range data {
				if err := collect(e, out, more); err != nil {
					return fmt.Errorf("data element %d: %w", i+1, err)
				}
			}
			return nil
		}
		get := func(k string) (string, bool) {
			switch f := x[k].(type) {
			case string:
				// Trimmed as ingest trims an id before keying the raw
				// record (and as CSV fields are): " evt_1" read as
				// never received.
				f = strings.TrimSpace(f)
				return f, f != ""
			case json.Number:
				return f.String(), true
			}
			return "", false
		}
		ev, err := event(get)
		if err != nil {
			return err
		}
		*out = append(*out, ev)
		return nil
	}
	return fmt.Errorf("got %s, want an event object", jsonKind(v))
}

// jsonKind names a decoded value in JSON's words.
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "JSON null"
	case bool:
		return fmt.Sprintf("JSON %t", x)
	case string:
		return "a JSON string"
	case json.Number:
		return "a JSON number"
	case []any:
		return "a JSON array"
	case map[string]any:
		return "a JSON object"
	}
	return "a JSON value"
}

// isListPage tells a page of events ({"object":"list","data":[…]}, as
// Stripe's API answers) from an event whose own payload has an array named
// data: a page says it is a list, or has no id of its own.
func isListPage(x map[string]any) bool {
	if o, _ := x["object"].(string); o == "list" {
		return true
	}
	for _, k := range idFields {
		if _, ok := x[k]; ok {
			return false
		}
	}
	return true
}

func event(get func(string) (string, bool)) (SenderEvent, error) {
	var ev SenderEvent
	for _, k := range idFields {
		if v, ok := get(k); ok {
			ev.ID = v
			break
		}
	}
	if ev.ID == "" {
		return ev, ErrNoID
	}
	for _, k := range timeFields {
		if v, ok := get(k); ok {
			t, err := parseWhen(v)
			if err != nil {
				return ev, fmt.Errorf("event %s: %s: %w", excerpt(ev.ID), k, err)
			}
			ev.At = t
			break
		}
	}
	return ev, nil
}

// excerpt quotes s from a sender's log for an error message: escapes
// shown, and no more than its start.
func excerpt(s string) string {
	const most = 64
	if len(s) <= most {
		return strconv.Quote(s)
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

func parseWhen(s string) (time.Time, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n == 0 {
		return time.Time{}, nil // a "no time" placeholder: undated
	}
	// The same reading as ingest's for an event's time, so a sender log
	// and the events it lists agree on when each happened.
	t, ok := source.ParseTimeText(s)
	if !ok {
		return t, fmt.Errorf("time %s: want Unix seconds, milliseconds, microseconds or nanoseconds, or RFC 3339, between 1971 and 9999", excerpt(s))
	}
	return t, nil
}

// readCSV reads a CSV log whose header row is on line skipped+1 of the
// file; errors name the line of the file.
func readCSV(r io.Reader, skipped int) ([]SenderEvent, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	fileLines := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			pe.StartLine += skipped
			pe.Line += skipped
		}
		return err
	}
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("sender log: CSV header: %w", fileLines(err))
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var out []SenderEvent
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sender log: CSV: %w", fileLines(err))
		}
		ev, err := event(func(k string) (string, bool) {
			i, ok := col[k]
			if !ok || i >= len(row) || strings.TrimSpace(row[i]) == "" {
				return "", false
			}
			return strings.TrimSpace(row[i]), true
		})
		if err != nil {
			line, _ := cr.FieldPos(0) // blank lines skipped by the reader counted
			return nil, fmt.Errorf("sender log: CSV line %d: %w", line+skipped, err)
		}
		out = append(out, ev)
	}
}

// Stripe lists events from the Stripe API (GET /v1/events), newest first,
// following has_more / starting_after.
type Stripe struct {
	// APIKey is a secret or restricted key with events read access
	// (STRIPE_API_KEY).
	APIKey string
	// BaseURL defaults to https://api.stripe.com.
	BaseURL string
	Client  *http.Client
}

// Fetch lists the events created in [since, until); a window holding no
// time is refused (ErrNoneInRange) without asking.
func (s *Stripe) Fetch(ctx context.Context, since, until time.Time) ([]SenderEvent, error) {
	if s.APIKey == "" {
		return nil, errors.New("stripe: no API key (STRIPE_API_KEY)")
	}
	if err := checkWindow(since, until); err != nil {
		return nil, err
	}
	base := s.BaseURL
	if base == "" {
		base = "https://api.stripe.com"
	}
	cl := s.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	var out []SenderEvent
	after := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {"100"}}
		// Stripe's created is whole seconds: created >= since and
		// created < until hold exactly for created >= ceil(since) and
		// created < ceil(until). until.Unix() rounded a fractional --until
		// down, leaving out the events of its last second, though they
		// are in the window.
		if !since.IsZero() {
			q.Set("created[gte]", strconv.FormatInt(ceilUnix(since), 10))
		}
		if !until.IsZero() {
			q.Set("created[lt]", strconv.FormatInt(ceilUnix(until), 10))
		}
		if after != "" {
			q.Set("starting_after", after)
		}
		body, err := s.page(ctx, cl, strings.TrimRight(base, "/")+"/v1/events?"+q.Encode())
		if err != nil {
			return nil, err
		}
		var pageBody struct {
			Data []struct {
				ID      string `json:"id"`
				Created int64  `json:"created"`
			} `json:"data"`
			HasMore bool `json:"has_more"`
		}
		if err := json.Unmarshal(body, &pageBody); err != nil {
			return nil, fmt.Errorf("stripe: list events: %w", err)
		}
		for _, e := range pageBody.Data {
			out = append(out, SenderEvent{ID: e.ID, At: time.Unix(e.Created, 0).UTC()})
		}
		if !pageBody.HasMore || len(pageBody.Data) == 0 {
			return out, nil
		}
		after = pageBody.Data[len(pageBody.Data)-1].ID
	}
}

// stripeTries bounds the tries of one page; stripeBackoff is the first
// wait between them, doubled each time (a var for tests).
const stripeTries = 5

var stripeBackoff = time.Second

// page gets one page of events. A rate limit (429: the key's limit is
// shared with the account's production traffic) or a Stripe server error
// is asked again after a growing wait, or Retry-After when it says: one
// failed page failed a whole listing.
func (s *Stripe) page(ctx context.Context, cl *http.Client, u string) ([]byte, error) {
	wait := stripeBackoff
	for try := 1; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
		resp, err := cl.Do(req)
		if err != nil {
			return nil, fmt.Errorf("stripe: list events: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("stripe: list events: %w", err)
		}
		if resp.StatusCode == http.StatusOK {
			return body, nil
		}
		again := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !again || try == stripeTries {
			// The key is blotted out before the cut: an API, proxy or
			// mock echoing the key it refused put it on stderr.
			if len(s.APIKey) >= 4 {
				body = bytes.ReplaceAll(body, []byte(s.APIKey), []byte("[redacted]"))
			}
			return nil, fmt.Errorf("stripe: list events: %s: %s", resp.Status, bytes.TrimSpace(body[:min(len(body), 300)]))
		}
		d := wait
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 && n <= 60 {
			d = time.Duration(n) * time.Second
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stripe: list events: %s, and %w while waiting to ask again", resp.Status, ctx.Err())
		case <-time.After(d):
		}
		wait *= 2
	}
}

// ceilUnix is t in Unix seconds, rounded up: the first whole second at or
// after t.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}
