// Package sink delivers processed events to downstream systems over HTTP,
// classifying every failure for the retry package: 408, 425, 429, 5xx and
// network errors are transient (with the server's Retry-After honoured);
// other 4xx are permanent.
package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"golang.org/x/net/http/httpguts"

	"github.com/inletdev/inlet/pkg/redact"
	"github.com/inletdev/inlet/pkg/retry"
)

// DefaultRetryableStatus are the statuses worth retrying.
var DefaultRetryableStatus = []int{408, 425, 429, 500, 502, 503, 504}

// HTTPConfig is one HTTP sink.
type HTTPConfig struct {
	URL    string
	Method string // default POST
	// Headers are sent with every request (values already resolved from
	// the environment by the caller; they may be credentials).
	Headers map[string]string
	Timeout time.Duration // default 10s
	// RetryableStatus overrides DefaultRetryableStatus; any 5xx not listed
	// is still retryable.
	RetryableStatus []int
}

// HTTP posts events to one endpoint.
type HTTP struct {
	cfg HTTPConfig
	cl  *http.Client
	// where names the sink in errors: scheme and host only, since a path
	// or query may hold a token, and errors go to the DLQ and alerts.
	where string
	// secrets are what redact blots out of an answer, longest first: the
	// header values, their credentials, the URL's path, query and
	// password, each also as a server may quote it escaped.
	secrets redact.Set
}

// NewHTTP returns a sink for cfg.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.URL == "" {
		return nil, errors.New("sink: no URL")
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if len(cfg.RetryableStatus) == 0 {
		cfg.RetryableStatus = DefaultRetryableStatus
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("sink: the URL must be http(s) with a host")
	}
	// Refused here, not by every delivery: Go refuses such a header on
	// each request, which read as a transient failure, and each event
	// spent its retry tiers before the DLQ. A value is never quoted.
	for k, v := range cfg.Headers {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			return nil, fmt.Errorf("sink: header %q is not a valid header name", k)
		case !httpguts.ValidHeaderFieldValue(v):
			return nil, fmt.Errorf("sink: the value of header %s holds a line break or another control character (a file or variable ending in a newline?)", k)
		case slices.Contains(ownHeaders, http.CanonicalHeaderKey(k)):
			// Set after Inlet's, it replaced them: one value for every
			// event, so the downstream deduplicated unrelated events
			// as one, or traced them all to one correlation id.
			return nil, fmt.Errorf("sink: header %s is one Inlet sets per event (%s): it cannot be configured", k, strings.Join(ownHeaders, ", "))
		}
	}
	// A transport of its own, keeping idle as many connections as a
	// processor's batches deliver at once (16 per batch, per worker): the
	// default transport keeps 2 per host, so every batch closed the others
	// and dialled them again (702 connections for 50 batches of 16), each
	// left in TIME_WAIT, each a new TLS handshake.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	cl := &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// A redirect is answered as a failure, not followed: Go would
		// resend a POST after 301/302/303 as a GET without its body (and
		// the event would count as delivered), and after 307/308 send the
		// payload and the configured headers, secrets included, to
		// wherever the Location points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	where := u.Scheme + "://" + u.Host
	if strings.Contains(u.Path, "@") {
		// "https://user:12/34@host" parses as host "user:12": a password
		// with an unescaped slash, its start shown as the port.
		where = u.Scheme + "://(host not shown: @ in the URL's path)"
	}
	return &HTTP{cfg: cfg, cl: cl, where: where, secrets: redact.Forms(slices.Collect(maps.Values(cfg.Headers)), u)}, nil
}

// StatusError is a non-2xx answer from the sink.
type StatusError struct {
	Status int
	Body   string // first bytes, for the error history; "" when it had none
}

// Error is "sink answered <status>: <body>", or without ": <body>" when
// the answer had no body (or only whitespace): a colon before nothing
// read as if something were cut off in the DLQ entry and the alert.
func (e *StatusError) Error() string {
	if strings.TrimSpace(e.Body) == "" {
		return fmt.Sprintf("sink answered %d", e.Status)
	}
	return fmt.Sprintf("sink answered %d: %s", e.Status, e.Body)
}

// ownHeaders are the headers Send sets per event, canonical.
var ownHeaders = []string{"Idempotency-Key", "X-Correlation-Id", "Traceparent", "Tracestate", "Baggage"}

// sinkPropagator writes the event's trace context and the sender's
// baggage, as the processed records carry them.
var sinkPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Send delivers body. idempotencyKey goes in the Idempotency-Key header so
// the downstream can drop a redelivery (Inlet delivers at least once),
// the correlation id in X-Correlation-ID, and ctx's W3C trace context in
// traceparent (and tracestate). The error is nil, retry.Retryable (with the Retry-After asked for) or
// retry.Permanent.
func (s *HTTP) Send(ctx context.Context, body []byte, contentType, idempotencyKey, correlationID string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return retry.Permanent(fmt.Errorf("sink request: %w", err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Idempotency-Key", idempotencyKey)
	req.Header.Set("X-Correlation-ID", correlationID)
	// The event's trace context (ctx's span), so the downstream's own
	// spans join the event's trace; nothing when ctx holds none.
	sinkPropagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.cl.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text is the whole URL, query included
		}
		return retry.Retryable(fmt.Errorf("sink %s: %w", s.where, err), 0)
	}
	defer resp.Body.Close()
	// The status decides; the body is only an excerpt for the error and a
	// drain for reusing the connection. A sink that trickles it (a proxy,
	// a streaming endpoint) held every delivery to the whole timeout, its
	// batch's other deliveries ran out of time and went to retry tiers,
	// though each was accepted at once.
	stopReading := time.AfterFunc(answerBodyGrace, cancel)
	defer stopReading.Stop()
	// Read past the excerpt's end by the longest secret, so that one
	// straddling the cut is read whole, and redacted, before the cut.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, int64(answerExcerpt+s.secrets.Longest())))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	excerpt := s.redact(string(snippet))
	if len(excerpt) > answerExcerpt {
		excerpt = excerpt[:answerExcerpt]
	}
	se := &StatusError{Status: resp.StatusCode, Body: excerpt}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		se.Body = "a redirect, which Inlet does not follow: set the sink's url to where it points"
	}
	if resp.StatusCode >= 500 || slices.Contains(s.cfg.RetryableStatus, resp.StatusCode) {
		return retry.Retryable(se, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	}
	return retry.Permanent(se)
}

// answerExcerpt is how much of a failed answer goes into the error.
const answerExcerpt = 256

// answerBodyGrace bounds reading an answer's body once its status came.
const answerBodyGrace = time.Second

// redact replaces, in a sink's answer, every configured header value (and
// the credential after an Authorization-style scheme, and a Basic one's
// decoded parts) and the URL's user and password, path (whole, and each
// segment that is not a plain word) and query, as they are or escaped:
// an API answering 401 often quotes the key it refused, a 404 page the
// path, and the answer goes into the error history, logs and alerts.
func (s *HTTP) redact(body string) string { return s.secrets.Apply(body) }

// maxRetryAfter bounds Retry-After so a hostile value cannot park an event
// forever.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses Retry-After as seconds or an HTTP date, bounded by
// maxRetryAfter. A number of seconds past it is the bound, not an
// overflow to none.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
