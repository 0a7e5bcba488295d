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
func ReadLog(r io.Reader) ([]SenderEvent, error) {
	br := bufio.NewReader(r)
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if first == '{' || first == '[' {
		return readJSON(br, first == '[')
	}
	return readCSV(br)
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' && b != 0xef && b != 0xbb && b != 0xbf { // BOM too
			return b, br.UnreadByte()
		}
	}
}

func readJSON(r io.Reader, array bool) ([]SenderEvent, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var out []SenderEvent
	n := 0
	if array {
		// A log that is one JSON array (GitHub's deliveries, an export) is
		// read element by element: decoded whole it took about four times
		// its size.
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("sender log: %w", err)
		}
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("sender log: array element %d: %w", n+1, err)
			}
			n++
			if err := collect(v, &out); err != nil {
				return nil, fmt.Errorf("sender log: array element %d: %w", n, err)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("sender log: after array element %d: %w", n, err)
		}
	}
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("sender log: JSON value %d: %w", n+1, err)
		}
		n++
		if err := collect(v, &out); err != nil {
			return nil, fmt.Errorf("sender log: JSON value %d: %w", n, err)
		}
	}
}

func collect(v any, out *[]SenderEvent) error {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := collect(e, out); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if data, ok := x["data"].([]any); ok && isListPage(x) {
			return collect(data, out)
		}
		get := func(k string) (string, bool) {
			switch f := x[k].(type) {
			case string:
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
	return fmt.Errorf("want an object, got %T", v)
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
				return ev, fmt.Errorf("event %s: %s: %w", ev.ID, k, err)
			}
			ev.At = t
			break
		}
	}
	return ev, nil
}

func parseWhen(s string) (time.Time, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n == 0 {
		return time.Time{}, nil // a "no time" placeholder: undated
	}
	// The same reading as ingest's for an event's time, so a sender log
	// and the events it lists agree on when each happened.
	t, ok := source.ParseTimeText(s)
	if !ok {
		return t, fmt.Errorf("time %q: want Unix seconds, milliseconds, microseconds or nanoseconds, or RFC 3339, between 1971 and 9999", s)
	}
	return t, nil
}

func readCSV(r io.Reader) ([]SenderEvent, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("sender log: CSV header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var out []SenderEvent
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sender log: CSV: %w", err)
		}
		ev, err := event(func(k string) (string, bool) {
			i, ok := col[k]
			if !ok || i >= len(row) || strings.TrimSpace(row[i]) == "" {
				return "", false
			}
			return strings.TrimSpace(row[i]), true
		})
		if err != nil {
			return nil, fmt.Errorf("sender log: CSV line %d: %w", line, err)
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

// Fetch lists the events created in [since, until).
func (s *Stripe) Fetch(ctx context.Context, since, until time.Time) ([]SenderEvent, error) {
	if s.APIKey == "" {
		return nil, errors.New("stripe: no API key (STRIPE_API_KEY)")
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
		if !since.IsZero() {
			q.Set("created[gte]", strconv.FormatInt(since.Unix(), 10))
		}
		if !until.IsZero() {
			q.Set("created[lt]", strconv.FormatInt(until.Unix(), 10))
		}
		if after != "" {
			q.Set("starting_after", after)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/events?"+q.Encode(), nil)
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
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("stripe: list events: %s: %s", resp.Status, bytes.TrimSpace(body[:min(len(body), 300)]))
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
