// Package alert tells people when events land on the dead-letter or invalid
// topic: a webhook (generic JSON or a Slack-compatible body) carrying the
// source, event type, ids, a redacted payload excerpt, the error history and
// the runbook link. Alerts never block processing: Notify only folds the
// alert into its pending group, a burst of the same failure becomes one
// message with a count, and the send rate is capped.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/retry"
)

// Kinds of alert: they mean different things and go to different runbooks.
const (
	KindDLQ     = "dlq"     // a downstream kept failing: act on the runbook
	KindInvalid = "invalid" // a payload no longer fits its contract: update the integration
)

// Alert is one event that needs a person.
type Alert struct {
	Kind          string          `json:"kind"`
	Source        string          `json:"source"`
	EventType     string          `json:"event_type"`
	EventID       string          `json:"event_id"`
	CorrelationID string          `json:"correlation_id"`
	Reason        string          `json:"reason"`
	Error         string          `json:"error"`
	History       json.RawMessage `json:"error_history,omitempty"`
	Excerpt       string          `json:"payload_excerpt"`
	Runbook       string          `json:"runbook,omitempty"`
	Topic         string          `json:"topic"`
	At            time.Time       `json:"at"`
}

// Config is where alerts go and how often.
type Config struct {
	// WebhookURL receives alerts; empty disables sending (logs and metrics
	// still happen at the caller).
	WebhookURL string
	// Format is "json" (default) or "slack".
	Format string
	// Window groups alerts with the same kind, source, type and reason:
	// the first is sent at the end of its window with the count of the
	// others. Default 10s.
	Window time.Duration
	// MaxPerMinute caps messages sent; extra groups are dropped and
	// counted. Default 30.
	MaxPerMinute int
	// ExcerptBytes bounds the payload excerpt. Default 512.
	ExcerptBytes int
	Log          *slog.Logger
}

// Message is what the webhook receives in the json format: the first alert
// of a group and how many more were folded into it.
type Message struct {
	Alert
	Count       int       `json:"count"`
	WindowStart time.Time `json:"window_start"`
}

// Alerter groups alerts as Notify receives them and sends the groups from
// one goroutine, owned by Run.
type Alerter struct {
	cfg Config
	// Notify folds into pending, under mu, and Run takes groups out to
	// send. Folding there rather than in Run means a send in flight (up to
	// sendTimeout) never holds alike alerts back in a queue they can
	// overflow: only a new group when maxPending are pending is dropped.
	mu      sync.Mutex
	pending map[groupKey]*group
	cl      *http.Client
	dropped atomic.Int64 // alerts: too many groups pending or over the per-minute cap
	sent    atomic.Int64 // messages the webhook took
	// Alerts (not messages: one message folds a window's alike alerts)
	// in messages the webhook took, and in messages it did not.
	delivered, failed atomic.Int64
	resend            []time.Duration // resendAfter; tests shorten these
	shutdown          time.Duration   // shutdownBudget
	timeout           time.Duration   // sendTimeout
	// hook names the webhook in logs and errors: its URL is often a
	// credential (Slack's path is the token), so scheme and host only.
	hook string
}

// New returns an Alerter; call Run to start sending.
func New(cfg Config) *Alerter {
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.MaxPerMinute <= 0 {
		cfg.MaxPerMinute = 30
	}
	if cfg.ExcerptBytes <= 0 {
		cfg.ExcerptBytes = 512
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Alerter{cfg: cfg, pending: map[groupKey]*group{}, cl: noRedirects, resend: resendAfter, shutdown: shutdownBudget, timeout: sendTimeout, hook: redactURL(cfg.WebhookURL)}
}

// noRedirects is the alerter's client: a redirect is answered, not
// followed. Followed, a 301, 302 or 303 turned the POST into a GET
// without the alert, and a 2xx to that counted the alert sent while
// nobody received it; a 307 or 308 posted it to wherever it pointed.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// maxPending bounds the groups waiting to be sent, and so memory: each
// holds its first alert.
const maxPending = 1024

// Notify folds al into the pending group of alerts alike to it (same kind,
// source, type and reason), or starts one. It never waits on the webhook:
// the lock it takes is held only for map updates. When maxPending groups
// are pending, an alert that starts a new one is dropped and counted
// (Dropped); one alike to a pending group never is.
func (a *Alerter) Notify(al Alert) {
	if a == nil || a.cfg.WebhookURL == "" {
		return
	}
	now := time.Now()
	k := groupKey{al.Kind, al.Source, al.EventType, al.Reason}
	a.mu.Lock()
	defer a.mu.Unlock()
	if g, ok := a.pending[k]; ok {
		g.count++
		return
	}
	if len(a.pending) >= maxPending {
		a.dropped.Add(1)
		return
	}
	a.pending[k] = &group{key: k, msg: Message{Alert: al, WindowStart: now}, due: now.Add(a.cfg.Window), count: 1}
}

// Excerpt returns a redacted, size-bounded excerpt of a payload.
func (a *Alerter) Excerpt(payload []byte) string { return Excerpt(payload, a.cfg.ExcerptBytes) }

// Dropped counts alerts not sent (too many groups pending, or rate cap).
func (a *Alerter) Dropped() int64 { return a.dropped.Load() }

// Sent counts messages delivered to the webhook.
func (a *Alerter) Sent() int64 { return a.sent.Load() }

// Failed counts alerts in messages the webhook did not take: refused
// (4xx), or still failing after the resends (see resendAfter).
func (a *Alerter) Failed() int64 { return a.failed.Load() }

// Instrument reports the alerts' fate as inlet.alerts{outcome}: sent,
// failed (the webhook did not take them) and dropped (maxPending groups
// pending or over the per-minute cap). An alert pipeline that stopped
// working is otherwise silent: the events are safe on their topics, but
// nobody hears of them.
func (a *Alerter) Instrument(meter metric.Meter) error {
	c, err := meter.Int64ObservableCounter("inlet.alerts",
		metric.WithDescription("Alerts (one per dead-lettered or invalid event) by outcome: sent, failed (webhook unreachable or refusing), dropped (too many groups pending or over the per-minute cap)."))
	if err != nil {
		return err
	}
	outcomes := []struct {
		n   *atomic.Int64
		set metric.ObserveOption
	}{
		{&a.delivered, metric.WithAttributes(attribute.String("outcome", "sent"))},
		{&a.failed, metric.WithAttributes(attribute.String("outcome", "failed"))},
		{&a.dropped, metric.WithAttributes(attribute.String("outcome", "dropped"))},
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, oc := range outcomes {
			o.ObserveInt64(c, oc.n.Load(), oc.set)
		}
		return nil
	}, c)
	return err
}

type groupKey struct{ kind, source, eventType, reason string }

type group struct {
	key   groupKey
	msg   Message
	due   time.Time
	count int
	tries int // sends that failed and may be tried again
}

// A message the webhook did not take for a reason that may pass
// (unreachable, timeout, 5xx, 408, 429) is sent again after each of these
// waits, then given up (counted failed).
var resendAfter = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second}

// sendTimeout bounds one send.
const sendTimeout = 10 * time.Second

// shutdownBudget bounds the final flush: a webhook that is down must not
// hold a processor's SIGTERM for 10 s per pending message.
const shutdownBudget = 5 * time.Second

// Run sends the groups Notify folds until ctx ends, then sends what is
// pending once more, within shutdownBudget altogether.
func (a *Alerter) Run(ctx context.Context) {
	tick := time.NewTicker(a.cfg.Window / 4)
	defer tick.Stop()
	var minute time.Time
	sentThisMinute := 0
	flush := func(sctx context.Context, now time.Time, final bool) {
		due := a.take(now, final)
		for i, g := range due {
			if !final && sctx.Err() != nil {
				a.putBack(due[i:]...) // shutting down: the final flush sends them
				return
			}
			if now.Sub(minute) >= time.Minute {
				minute, sentThisMinute = now, 0
			}
			if sentThisMinute >= a.cfg.MaxPerMinute {
				a.dropped.Add(int64(g.count))
				continue
			}
			sentThisMinute++
			g.msg.Count = g.count
			switch again, err := a.send(sctx, g.msg); {
			case err != nil && !final && sctx.Err() != nil:
				// Cut short by shutdown: neither a try nor a message sent.
				sentThisMinute--
				a.putBack(g)
			case err == nil:
				a.sent.Add(1)
				a.delivered.Add(int64(g.count))
			case again && !final && g.tries < len(a.resend):
				a.cfg.Log.Warn("alert webhook did not take the alert; sending it again", "kind", g.msg.Kind, "count", g.count, "retry_in", a.resend[g.tries], "webhook", a.hook, "error", err)
				g.due = now.Add(a.resend[g.tries])
				g.tries++
				a.putBack(g)
			default:
				a.failed.Add(int64(g.count))
				a.cfg.Log.Error("alert webhook did not take the alert; alert lost (the event itself is safe on its topic)", "kind", g.msg.Kind, "count", g.count, "tries", g.tries+1, "webhook", a.hook, "error", err)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), a.shutdown)
			flush(sctx, time.Now(), true)
			cancel()
			return
		case now := <-tick.C:
			// ctx: a SIGTERM cuts a send to a hanging webhook short (it
			// is tried again in the final flush) instead of waiting out
			// 10 s per message.
			flush(ctx, now, false)
		}
	}
}

// take removes and returns the pending groups due at now; all of them when
// final.
func (a *Alerter) take(now time.Time, final bool) []*group {
	a.mu.Lock()
	defer a.mu.Unlock()
	var due []*group
	for k, g := range a.pending {
		if final || !now.Before(g.due) {
			due = append(due, g)
			delete(a.pending, k)
		}
	}
	return due
}

// putBack returns taken groups to pending. Alike alerts that Notify folded
// into a new group meanwhile join the older one, which keeps its first
// alert, due time and tries. It may exceed maxPending by the groups taken
// out, so pending stays within twice that.
func (a *Alerter) putBack(gs ...*group) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range gs {
		if n, ok := a.pending[g.key]; ok {
			g.count += n.count
		}
		a.pending[g.key] = g
	}
}

// send posts m once, bounded by sendTimeout and ctx. again says whether a
// failure may pass if tried later. Its errors name the webhook by a.hook
// only.
func (a *Alerter) send(ctx context.Context, m Message) (again bool, err error) {
	var body []byte
	if a.cfg.Format == "slack" {
		body, _ = json.Marshal(map[string]string{"text": slackText(m)})
	} else {
		body, _ = json.Marshal(m)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("bad webhook URL: %w", a.withoutURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cl.Do(req)
	if err != nil {
		return true, fmt.Errorf("unreachable: %w", a.withoutURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c < 300:
		return false, nil
	case c >= 500, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return true, fmt.Errorf("answered %s", resp.Status)
	case c < 400:
		return false, fmt.Errorf("answered %s, a redirect, which Inlet does not follow: set -alert-webhook-url to where it points", resp.Status)
	default:
		return false, fmt.Errorf("refused: %s", resp.Status)
	}
}

func slackText(m Message) string {
	title := "Dead-lettered"
	if m.Kind == KindInvalid {
		title = "Invalid (schema changed? update the integration)"
	}
	more := ""
	if m.Count > 1 {
		more = fmt.Sprintf(" (+%d more like it)", m.Count-1)
	}
	e := slackEscape
	// What the alert lacks is left out, not printed empty: a source
	// without a runbook printed "*runbook* " and nothing, an alert
	// without an error text a reason ending in a colon.
	var b strings.Builder
	fmt.Fprintf(&b, ":rotating_light: *%s* %s/%s%s\n", title, e(m.Source), e(m.EventType), more)
	var ids []string
	if m.EventID != "" {
		ids = append(ids, "*event* `"+e(m.EventID)+"`")
	}
	if m.CorrelationID != "" {
		ids = append(ids, "*correlation* `"+e(m.CorrelationID)+"`")
	}
	if len(ids) > 0 {
		b.WriteString(strings.Join(ids, "  ") + "\n")
	}
	b.WriteString("*reason* " + e(m.Reason))
	if m.Error != "" {
		b.WriteString(": " + e(m.Error))
	}
	b.WriteString("\n" + slackHistory(m.History))
	if m.Runbook != "" {
		b.WriteString("*runbook* " + e(m.Runbook) + "\n")
	}
	if m.Excerpt != "" {
		b.WriteString("```" + e(m.Excerpt) + "```")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Slack shows the failures before the last (the reason line has that
// one), newest slackHistoryLines of them, each cut to slackHistoryText
// bytes: enough to tell a 401 that turned into 503s from five 503s, short
// enough to read in a channel. The JSON format carries the whole history.
const (
	slackHistoryLines = 5
	slackHistoryText  = 200
)

// slackHistory renders an alert's error history (retry's inlet-errors
// header, oldest first, the last entry the failure the alert is about)
// as lines for slackText; "" when there was no failure before the last.
func slackHistory(raw json.RawMessage) string {
	var hist []struct {
		At    time.Time `json:"at"`
		Stage string    `json:"stage"`
		Error string    `json:"error"`
	}
	if json.Unmarshal(raw, &hist) != nil || len(hist) < 2 {
		return ""
	}
	earlier := hist[:len(hist)-1]
	var b strings.Builder
	b.WriteString("*before that*")
	if n := len(earlier) - slackHistoryLines; n > 0 {
		fmt.Fprintf(&b, " (%d older not shown)", n)
		earlier = earlier[n:]
	}
	b.WriteString("\n")
	for _, h := range earlier {
		fmt.Fprintf(&b, "• %s %s: %s\n", h.At.UTC().Format(time.RFC3339), slackEscape(h.Stage), slackEscape(retry.Truncate(h.Error, slackHistoryText)))
	}
	return b.String()
}

// slackEscaper makes event data plain text in Slack's mrkdwn: Slack reads
// <!channel> and <url|text> as a mention and a link, so a sender could
// page a whole channel or plant a phishing link through an event type, and
// a backtick ends the code span or block the value sits in (the excerpt's
// "```" would let the rest render as markup). & < > are escaped as Slack
// asks; a backtick becomes ˋ (U+02CB), which looks the same.
//
// A line break, or any other control character, is written as its Go
// escape (\n, \x1b, \u2028): each value keeps to its line. An error
// names the path of the value it refuses, and a map's keys are the
// sender's, so a key holding "\n*runbook* …" added lines of the sender's
// to the alert, a runbook link among them.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb")

func slackEscape(s string) string {
	s = slackEscaper.Replace(s)
	if !strings.ContainsFunc(s, breaksLine) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if breaksLine(r) {
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u2028'
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// breaksLine reports whether r is a control character (C0, DEL, C1), a
// Unicode line or paragraph separator, or a bidirectional embedding,
// override or isolate (which reorder the rest of the line as shown).
func breaksLine(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// redactURL names a webhook without its secret parts: scheme and host,
// then "/…" (https://hooks.slack.com/…). Path, query, fragment and
// userinfo may all carry a token.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)" // its text could be all secret
	}
	if strings.Contains(u.Path, "@") {
		// "https://user:12/34@host" parses as host "user:12": a password
		// with an unescaped slash, its start shown as the port.
		return u.Scheme + "://(host not shown: @ in the URL's path)/…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// withoutURL rewrites the *url.Error that net/http returns, whose text
// holds the whole URL, as "Op scheme://host/…: inner error", as the sink
// does; errors.Is and As still see the inner error.
func (a *Alerter) withoutURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s %s: %w", ue.Op, a.hook, ue.Err)
}

// envWebhookURL is the webhook URL's environment variable; LoadSecrets
// also reads the file named by envWebhookURL_FILE.
const envWebhookURL = "INLET_ALERT_WEBHOOK_URL"

// LoadSecrets fills WebhookURL, when neither -alert-webhook-url nor
// INLET_ALERT_WEBHOOK_URL gave it, from the file named by
// INLET_ALERT_WEBHOOK_URL_FILE (flagenv.Secret: the Docker/Kubernetes
// secret-file convention; trailing newlines dropped). Call it after
// parsing flags and before Validate. A file that cannot be read, or is
// empty, is an error: alerts would silently go nowhere.
func (c *Config) LoadSecrets() error {
	if c.WebhookURL != "" {
		return nil
	}
	v, err := flagenv.Secret(envWebhookURL)
	if err != nil {
		return fmt.Errorf("alert webhook URL: %w", err)
	}
	if v == "" && os.Getenv(envWebhookURL+"_FILE") != "" {
		return fmt.Errorf("alert webhook URL: the file named by %s_FILE is empty", envWebhookURL)
	}
	c.WebhookURL = v
	return nil
}

// Validate reports settings that cannot work: an unknown format (Slack
// refuses a json body with 400, so every alert would fail) and a webhook
// URL that is not http(s) with a host. Its errors never quote the URL:
// it is often a credential.
func (c *Config) Validate() error {
	var errs []error
	switch c.Format {
	case "", "json", "slack":
	default:
		errs = append(errs, fmt.Errorf("alert: unknown -alert-format (INLET_ALERT_FORMAT) %q: want json or slack", c.Format))
	}
	// Zero is the default (New's); below it was taken as the default
	// too, without a word.
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("alert: -alert-window (INLET_ALERT_WINDOW) %v: want a positive duration (0: the default, 10s)", c.Window))
	}
	if c.MaxPerMinute < 0 {
		errs = append(errs, fmt.Errorf("alert: -alert-max-per-minute (INLET_ALERT_MAX_PER_MINUTE) %d: want a positive count (0: the default, 30; no -alert-webhook-url sends none)", c.MaxPerMinute))
	}
	if c.WebhookURL != "" {
		const which = "alert: -alert-webhook-url (INLET_ALERT_WEBHOOK_URL or the file named by INLET_ALERT_WEBHOOK_URL_FILE)"
		switch u, err := url.Parse(c.WebhookURL); {
		case err != nil:
			errs = append(errs, errors.New(which+" does not parse as a URL"))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, errors.New(which+" must start with https:// or http://"))
		case u.Host == "":
			errs = append(errs, errors.New(which+" has no host"))
		case strings.ContainsFunc(c.WebhookURL, unicode.IsSpace):
			// url.Parse takes "https://host/path extra" (a file with two
			// words, or a pasted comment): alerts would go elsewhere.
			errs = append(errs, errors.New(which+" holds white space: a URL has none (a second word in the file?)"))
		}
	}
	return errors.Join(errs...)
}

// RegisterFlags defines the alert flags, defaulting from INLET_ALERT_*.
// The webhook URL may also come from a file: see LoadSecrets.
func (c *Config) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.WebhookURL, "alert-webhook-url", envWebhookURL, "", "where DLQ and invalid alerts are posted (empty: logs and metrics only); often a secret: prefer "+envWebhookURL+"_FILE, a file holding it")
	fs.String(&c.Format, "alert-format", "INLET_ALERT_FORMAT", "json", "alert body: json or slack")
	fs.Duration(&c.Window, "alert-window", "INLET_ALERT_WINDOW", 10*time.Second, "alerts of the same kind, source, type and reason within this window are sent as one (0: 10s)")
	fs.Int(&c.MaxPerMinute, "alert-max-per-minute", "INLET_ALERT_MAX_PER_MINUTE", 30, "cap on alert messages per minute (0: 30; to send none, leave -alert-webhook-url empty)")
}
