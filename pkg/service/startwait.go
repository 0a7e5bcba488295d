package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
)

// StartWait is how a service waits at start for a dependency that cannot
// be reached (Kafka, the schema registry): attempts First and Max apart
// (doubling), each bounded by Attempt (a peer that accepts connections and
// never answers must not hold the start silently), a WARN for the first
// failure and then at most one per WarnEvery unless the error changes.
type StartWait struct {
	First, Max, Attempt, WarnEvery time.Duration
}

// DefaultStartWait is the wait ingest and the processor use.
var DefaultStartWait = StartWait{First: 250 * time.Millisecond, Max: 5 * time.Second, Attempt: 10 * time.Second, WarnEvery: 30 * time.Second}

// waitSpec is one dependency a start waits for.
type waitSpec struct {
	warn   string // the WARN line's message
	ready  string // the INFO line's message once it answered after waiting
	attrs  []any  // where and what, on both lines
	try    func(ctx context.Context) error
	refuse func(err error) error // non-nil: fail at once with it
}

// await runs s.try until it succeeds, s.refuse says the error is final, or
// ctx ends (its error is returned then: SIGTERM during a start).
func (w StartWait) await(ctx context.Context, log *slog.Logger, s waitSpec) error {
	backoff := w.First
	start := time.Now()
	var lastWarn time.Time
	var lastErr string
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.Attempt)
		err := s.try(actx)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info(s.ready, append(s.attrs, "attempts", attempt, "waited", time.Since(start).Round(time.Millisecond))...)
			}
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if final := s.refuse(err); final != nil {
			return final
		}
		// A new error is worth a line at once, but not a new broker named in
		// the same one: with several seed brokers the last connection
		// attempt's names changes from try to try.
		msg := err.Error()
		kind, _, _ := strings.Cut(msg, " (last connection attempt: ")
		if attempt == 1 || kind != lastErr || time.Since(lastWarn) >= w.WarnEvery {
			log.Warn(s.warn, append(s.attrs, "attempts", attempt, "waiting_for", time.Since(start).Round(time.Second),
				"retry_in", backoff, "error", msg)...)
			lastWarn, lastErr = time.Now(), kind
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, w.Max)
	}
}

// AwaitCodec builds the envelope codec, which registers the envelope
// schema under subject, for the service named who ("ingest",
// "processor"), which waits for it before until ("accepting webhooks").
// While the registry is unavailable (unreachable, 5xx, 408, 429, a
// timeout) it waits with backoff, logging what it waits for; it returns
// ctx's error once ctx ends (SIGTERM). Refused credentials fail at once:
// waiting does not fix them. Any other answer (an incompatible schema,
// say) fails at once too.
func (w StartWait) AwaitCodec(ctx context.Context, reg *registry.Client, subject string, urls []string, who, until string, log *slog.Logger) (*envelope.Codec, error) {
	where := ShownURLs(urls)
	needs := "the envelope schema registered under " + subject
	var codec *envelope.Codec
	err := w.await(ctx, log, waitSpec{
		warn:  "schema registry unavailable: waiting for it before " + until + " (/readyz answers 503 meanwhile)",
		ready: "schema registry reachable; envelope schema registered",
		attrs: []any{"schema_registry", where, "needs", needs},
		try: func(ctx context.Context) (err error) {
			codec, err = envelope.NewCodec(ctx, reg, subject)
			return err
		},
		refuse: func(err error) error {
			switch {
			case registry.IsDenied(err):
				return fmt.Errorf("schema registry %s refused %s's credentials, so it cannot have %s (which needs write access to that subject): "+
					"check INLET_SCHEMA_REGISTRY_USER (-schema-registry-user) with INLET_SCHEMA_REGISTRY_PASSWORD[_FILE], or INLET_SCHEMA_REGISTRY_TOKEN[_FILE], "+
					"and the user's permissions: %w", where, who, needs, err)
			case !registry.IsUnavailable(err):
				return fmt.Errorf("schema registry %s: %w", where, err)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return codec, nil
}

// AwaitTopics is EnsureTopics waiting, as AwaitCodec does, while Kafka
// cannot be reached or answers with an error that may pass (a broker or
// controller not available yet, a timeout). Errors waiting cannot fix fail
// at once: SASL authentication refused, an authorization failure (a topic
// this client may not create and that does not exist; one that exists
// counts as ensured), an invalid topic config, partition count or
// replication factor, a TLS certificate or handshake mismatch.
func (w StartWait) AwaitTopics(ctx context.Context, kcfg *kafka.Config, topics kafka.Topics, until string, log *slog.Logger) error {
	brokers := strings.Join(kcfg.Brokers, ",")
	return w.await(ctx, log, waitSpec{
		warn:  "kafka unavailable: waiting for it before " + until + " (/readyz answers 503 meanwhile)",
		ready: "kafka reachable; topics ensured",
		attrs: []any{"kafka_brokers", brokers, "needs", "topics " + topics.Raw + " and the others under prefix " + kcfg.TopicPrefix + " present"},
		try: func(ctx context.Context) error {
			return EnsureTopics(ctx, kcfg, topics, log)
		},
		refuse: func(err error) error {
			if why := kafkaFinal(err); why != "" {
				return fmt.Errorf("kafka %s: %s: %w", brokers, why, err)
			}
			return nil
		},
	})
}

// kafkaFinal says why err is an answer waiting cannot change, or "" when
// it may pass.
func kafkaFinal(err error) string {
	for _, e := range []*kerr.Error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState} {
		if errors.Is(err, e) {
			return "SASL authentication refused: check -kafka-sasl-mechanism, -kafka-sasl-user (INLET_KAFKA_SASL_USER) and INLET_KAFKA_SASL_PASSWORD[_FILE]"
		}
	}
	for _, e := range []*kerr.Error{kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed} {
		if errors.Is(err, e) {
			return "not authorized: grant the principal CREATE on the topics (or create them: docs/run-on-real-kafka.md lists the settings) and DESCRIBE on them"
		}
	}
	for _, e := range []*kerr.Error{kerr.InvalidConfig, kerr.InvalidReplicationFactor, kerr.InvalidPartitions, kerr.InvalidTopicException,
		kerr.InvalidReplicaAssignment, kerr.PolicyViolation, kerr.InvalidRequest} {
		if errors.Is(err, e) {
			return "the topic settings are refused: check -topic-partitions, -topic-replication and -topic-prefix"
		}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &header) {
		return "TLS failed: check -kafka-tls, -kafka-tls-ca and -kafka-tls-server-name against the brokers' listener"
	}
	return ""
}

// ShownURLs is urls as they may be logged or served: each without user
// information, query or fragment (a query may carry a token).
func ShownURLs(urls []string) string {
	shown := make([]string, len(urls))
	for i, s := range urls {
		shown[i] = ShownURL(s)
	}
	return strings.Join(shown, ",")
}

// ShownURL is ShownURLs for one URL; one that does not parse is not
// shown, nor one without a host: "user:pass@host:port" parses as scheme
// "user" and an opaque rest, password included.
func ShownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	if u.Opaque != "" || u.Host == "" {
		return "(not a URL like http://host:port, not shown)"
	}
	if strings.Contains(u.Path, "@") {
		// "https://user:1234/pass@host" parses as host "user:1234" and
		// path "/pass@host": a password that starts with digits.
		return "(a URL with @ in its path, not shown)"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.String()
}

// StartProbes answers /healthz and /readyz on a service's admin listener
// from the moment it listens: while the service starts (topics, the schema
// registry) /healthz is 200, the process is alive and should not be
// restarted, and /readyz (and any other path it is mounted on) is 503
// saying what the start waits on (in "status", and in "error" on paths
// other than /readyz). Once Serve is called, every request is
// the handler's.
type StartProbes struct {
	status  atomic.Pointer[string]
	handler atomic.Pointer[http.Handler]
}

// Waiting sets what /readyz says the start waits on.
func (p *StartProbes) Waiting(status string) { p.status.Store(&status) }

// Serve hands every request on to h.
func (p *StartProbes) Serve(h http.Handler) { p.handler.Store(&h) }

func (p *StartProbes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := p.handler.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	status := "starting"
	if s := p.status.Load(); s != nil {
		status = *s
	}
	body := map[string]string{"status": status}
	if r.URL.Path != "/readyz" {
		// Every other answer on the listener says why in "error", which
		// is what inletctl and scripts read: without it inletctl trace
		// said only "503 Service Unavailable: ".
		body["error"] = "not started yet: " + status
	}
	writeJSON(w, http.StatusServiceUnavailable, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v) // a map of strings always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
