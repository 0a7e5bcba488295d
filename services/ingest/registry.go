package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/registry"
)

// registryWait is how ingest waits at start for a schema registry that
// cannot be reached: attempts first and max apart (doubling), each bounded
// by attempt (a registry that accepts connections and never answers must
// not hold the start silently), a WARN for the first failure and then at
// most one per warnEvery unless the error changes.
type registryWait struct {
	first, max, attempt, warnEvery time.Duration
}

var startWait = registryWait{first: 250 * time.Millisecond, max: 5 * time.Second, attempt: 10 * time.Second, warnEvery: 30 * time.Second}

// awaitCodec builds the envelope codec, which registers the envelope schema
// under subject. While the registry is unavailable (unreachable, 5xx, 408,
// 429, a timeout) it waits with backoff, logging what it waits for; it
// returns ctx's error once ctx ends (SIGTERM). Refused credentials fail at
// once: waiting does not fix them. Any other answer (an incompatible
// schema, say) fails at once too, as it did before.
func awaitCodec(ctx context.Context, reg *registry.Client, subject string, urls []string, w registryWait, log *slog.Logger) (*envelope.Codec, error) {
	where, redact := shownURLs(urls), redactor(urls)
	needs := "the envelope schema registered under " + subject
	fail := func(err error) error {
		return &redacted{err: err, msg: redact(err.Error())}
	}
	backoff := w.first
	start := time.Now()
	var lastWarn time.Time
	var lastErr string
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.attempt)
		codec, err := envelope.NewCodec(actx, reg, subject)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("schema registry reachable; envelope schema registered", "schema_registry", where, "subject", subject, "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))
			}
			return codec, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case registry.IsDenied(err):
			return nil, fail(fmt.Errorf("schema registry %s refused ingest's credentials, so it cannot have %s (which needs write access to that subject): "+
				"check INLET_SCHEMA_REGISTRY_USER (-schema-registry-user) with INLET_SCHEMA_REGISTRY_PASSWORD[_FILE], or INLET_SCHEMA_REGISTRY_TOKEN[_FILE], "+
				"and the user's permissions: %w", where, needs, err))
		case !registry.IsUnavailable(err):
			return nil, fail(fmt.Errorf("schema registry %s: %w", where, err))
		}
		if msg := redact(err.Error()); attempt == 1 || msg != lastErr || time.Since(lastWarn) >= w.warnEvery {
			log.Warn("schema registry unavailable: waiting for it before accepting webhooks (/readyz answers 503 meanwhile)",
				"schema_registry", where, "needs", needs, "attempts", attempt, "waiting_for", time.Since(start).Round(time.Second),
				"retry_in", backoff, "error", msg)
			lastWarn, lastErr = time.Now(), msg
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, w.max)
	}
}

// shownURLs is the registry URLs as they may be logged or served: without
// any user or password written into them.
func shownURLs(urls []string) string {
	shown := make([]string, len(urls))
	for i, s := range urls {
		shown[i] = shownURL(s)
	}
	return strings.Join(shown, ",")
}

func shownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)" // its text might hold a password
	}
	u.User = nil
	return u.String()
}

// redactor returns a function that removes from a text the user
// information (user and password) written into any of urls: the registry
// client's errors quote the URL it was given as it was given.
func redactor(urls []string) func(string) string {
	var pairs []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.User == nil {
			continue
		}
		authority, _, _ := strings.Cut(strings.TrimPrefix(s, u.Scheme+"://"), "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			pairs = append(pairs, authority[:i+1], "") // as written
		}
		pairs = append(pairs, u.User.String()+"@", "") // escaped
		if p, ok := u.User.Password(); ok && len(p) >= 4 {
			pairs = append(pairs, p, "***") // anywhere else (short ones would mangle the text)
		}
	}
	if len(pairs) == 0 {
		return func(s string) string { return s }
	}
	return strings.NewReplacer(pairs...).Replace
}

// redacted is an error whose text had credentials taken out.
type redacted struct {
	err error
	msg string
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
