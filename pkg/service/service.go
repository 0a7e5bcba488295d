// Package service holds the process wiring every Inlet binary shares:
// logging setup, the schema registry connection, topic creation, the Redis
// version check, and the signal handling of a thin main.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/store"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	Level  string
	Format string
}

// RegisterFlags defines -log-level and -log-format.
func (c *LogConfig) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.Level, "log-level", "INLET_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.String(&c.Format, "log-format", "INLET_LOG_FORMAT", "json", "json or text")
}

// Logger builds the process logger writing to w.
func (c *LogConfig) Logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("-log-level (INLET_LOG_LEVEL) %q: want debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.Format) {
	case "json":
		// A time.Duration as slog's JSON handler writes it is nanoseconds
		// ("retry_in":30000000000); as text ("30s") a person reads it, and
		// the text handler writes it so already.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				return slog.String(a.Key, a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format (INLET_LOG_FORMAT) %q: want json or text", c.Format)
}

// RegistryConfig is how a process reaches the schema registry. The password
// or bearer token comes only from INLET_SCHEMA_REGISTRY_PASSWORD[_FILE] or
// INLET_SCHEMA_REGISTRY_TOKEN[_FILE].
type RegistryConfig struct {
	URLs []string
	User string
}

// RegisterFlags defines the registry flags.
func (c *RegistryConfig) RegisterFlags(fs *flagenv.Set) {
	fs.List(&c.URLs, "schema-registry-url", "INLET_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081", "schema registry URL(s)")
	fs.String(&c.User, "schema-registry-user", "INLET_SCHEMA_REGISTRY_USER", "", "schema registry basic-auth user (password from INLET_SCHEMA_REGISTRY_PASSWORD[_FILE]); without a user, a bearer token from INLET_SCHEMA_REGISTRY_TOKEN[_FILE]")
}

// Client builds the registry client: basic auth with -schema-registry-user
// and INLET_SCHEMA_REGISTRY_PASSWORD[_FILE], or a bearer token from
// INLET_SCHEMA_REGISTRY_TOKEN[_FILE], or neither. A credential that would
// be ignored or sent empty is refused: a user without a password, a
// password without a user, a user and a token together. So is a URL with
// a user or password written into it: the URL is logged and quoted in
// errors, and secrets come only from the environment or files. Errors
// name the settings, never a secret's value.
func (c *RegistryConfig) Client() (*registry.Client, error) {
	if len(c.URLs) == 0 {
		return nil, errors.New("no schema registry URL")
	}
	for i, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("-schema-registry-url (INLET_SCHEMA_REGISTRY_URL) #%d: not a URL (%s; the value is not shown: it may hold a password)", i+1, RedactedReason(err))
		}
		if u.Opaque != "" || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("-schema-registry-url (INLET_SCHEMA_REGISTRY_URL) #%d %s: want an http:// or https:// URL with a host, such as http://127.0.0.1:8081%s",
				i+1, ShownURL(raw), schemeHint(u))
		}
		// "https://user:1234/pass@host" parses as host "user:1234" and path
		// "/pass@host": a password starting with digits.
		if u.User != nil || strings.Contains(u.Path, "@") {
			return nil, fmt.Errorf("-schema-registry-url (INLET_SCHEMA_REGISTRY_URL) %s has a user or password written into it (not shown): "+
				"give the user with -schema-registry-user (INLET_SCHEMA_REGISTRY_USER) and the password with INLET_SCHEMA_REGISTRY_PASSWORD "+
				"or INLET_SCHEMA_REGISTRY_PASSWORD_FILE; secrets come only from the environment or files, and a URL is logged", ShownURL(raw))
		}
		// url.Parse takes any number for a port: the start then waited
		// on it as on a registry outage.
		if p := u.Port(); p != "" {
			if !validPort(p) {
				return nil, fmt.Errorf("-schema-registry-url (INLET_SCHEMA_REGISTRY_URL) %s: the port is not a number from 1 to 65535", ShownURL(raw))
			}
		}
		// A query or fragment (an api_key=…) is quoted whole by the
		// registry client's errors: at start, at runtime, in inletctl
		// schemas check. Credentials have their own settings.
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return nil, fmt.Errorf("-schema-registry-url (INLET_SCHEMA_REGISTRY_URL) %s has a query or fragment (not shown): the registry client quotes its URL in errors, which are logged; "+
				"give a token with INLET_SCHEMA_REGISTRY_TOKEN or INLET_SCHEMA_REGISTRY_TOKEN_FILE, or basic auth with -schema-registry-user and INLET_SCHEMA_REGISTRY_PASSWORD", ShownURL(raw))
		}
	}
	pass, err := flagenv.Secret("INLET_SCHEMA_REGISTRY_PASSWORD")
	if err != nil {
		return nil, err
	}
	tok, err := flagenv.Secret("INLET_SCHEMA_REGISTRY_TOKEN")
	if err != nil {
		return nil, err
	}
	const (
		user     = "the schema registry user (-schema-registry-user, INLET_SCHEMA_REGISTRY_USER)"
		password = "a password (INLET_SCHEMA_REGISTRY_PASSWORD or INLET_SCHEMA_REGISTRY_PASSWORD_FILE)"
		token    = "a bearer token (INLET_SCHEMA_REGISTRY_TOKEN or INLET_SCHEMA_REGISTRY_TOKEN_FILE)"
	)
	switch {
	case c.User != "" && tok != "":
		return nil, errors.New("schema registry: " + user + " and " + token + " are both set: give basic auth or a token, not both")
	case c.User != "" && pass == "":
		return nil, errors.New("schema registry: " + user + " is set without " + password + ", or it is empty")
	case c.User == "" && pass != "":
		return nil, errors.New("schema registry: " + password + " is set without " + user)
	}
	opts := []sr.ClientOpt{sr.URLs(c.URLs...), sr.UserAgent("inlet")}
	if c.User != "" {
		opts = append(opts, sr.BasicAuth(c.User, pass))
	} else if tok != "" {
		opts = append(opts, sr.BearerToken(tok))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return registry.New(cl), nil
}

// schemeHint says what is wrong with u's scheme, when it can be said
// without quoting what may be a user name: "host:port" parses as scheme
// "host", and "user:pass@host" as scheme "user".
func schemeHint(u *url.URL) string {
	switch {
	case u.Opaque != "" || u.Scheme == "":
		return " (is http:// missing?)"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf(" (scheme %q)", u.Scheme)
	}
	return " (no host)"
}

// EnsureTopics creates Inlet's topics (if missing) with a short-lived admin
// client. A connection to a broker failing for good (SASL refused, TLS not
// matching) ends it at once with that error; any other connection failure
// is added to its error, which would otherwise say only that the context
// ended while the client retried.
func EnsureTopics(ctx context.Context, kcfg *kafka.Config, topics kafka.Topics, log *slog.Logger) error {
	opts, err := kcfg.ClientOpts(log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	conns := &connErrors{final: cancel}
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(conns))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	specs := kafka.WithMinInsync(topics.Specs(), kcfg.MinInsync())
	err = kafka.EnsureTopics(ctx, adm, kcfg.Partitions, kcfg.ReplicationFactor, specs)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause // a connection failed for good
	}
	if last := conns.last(); err != nil && last != nil && !strings.Contains(err.Error(), last.Error()) {
		return fmt.Errorf("%w (last connection attempt: %w)", err, last)
	}
	if err != nil {
		return err
	}
	warnUndurable(ctx, adm, specs, log)
	return nil
}

// warnUndurable warns, once at start, about Inlet topics (existing ones
// included: EnsureTopics leaves them as they are) that acknowledge an
// acks=all write held by one broker: an event answered 2xx, or a batch
// committed, is lost with that broker. Not an error: the cluster is the
// operator's, and a platform may have reasons; but nobody should find out
// from a lost event.
func warnUndurable(ctx context.Context, adm *kadm.Client, specs []kafka.TopicSpec, log *slog.Logger) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	weak, err := kafka.CheckDurability(ctx, adm, names...)
	if err != nil {
		// A principal without DESCRIBE_CONFIGS: nothing to go on.
		log.Info("could not check the topics' min.insync.replicas", "error", err)
		return
	}
	var unreplicated, weakISR []string
	for _, u := range weak {
		if u.Unreplicated() {
			unreplicated = append(unreplicated, u.String())
		} else {
			weakISR = append(weakISR, u.String())
		}
	}
	if len(unreplicated) > 0 {
		log.Warn("topics have a single replica on a multi-broker cluster: every event answered 2xx is on one broker's disk only, lost with it, and the topic takes no writes while that broker is down; "+
			"give them replication factor 3 (kafka-reassign-partitions.sh, or recreate them) with min.insync.replicas=2, and set INLET_TOPIC_REPLICATION=3 for topics Inlet creates (docs/run-on-real-kafka.md, Production durability)",
			"topics", unreplicated)
	}
	if len(weakISR) > 0 {
		log.Warn("replicated topics acknowledge acks=all writes held by the leader alone (min.insync.replicas below 2): once the other replicas fall out of sync, an event answered 2xx is lost with that broker; "+
			"set min.insync.replicas=2 on them (kafka-configs.sh --alter --entity-type topics --entity-name <topic> --add-config min.insync.replicas=2; docs/run-on-real-kafka.md, Production durability)",
			"topics", weakISR)
	}
}

// connErrors keeps the last failed broker connection's error and cancels
// with it one that waiting cannot fix.
type connErrors struct {
	final func(error)
	mu    sync.Mutex
	err   error
}

func (c *connErrors) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	err = fmt.Errorf("broker %s:%d: %w", meta.Host, meta.Port, err)
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	if kafkaFinal(err) != "" {
		c.final(err)
	}
}

func (c *connErrors) last() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// SignalContext is cancelled on the first SIGINT, SIGTERM or SIGHUP; a
// second one exits the process at once with status 1. SIGHUP (the
// terminal running `make run` closed) had Go's default action: the process
// died at once, with no drain and, for the dev stack, no Redis snapshot.
// Ignored at start (nohup), it stays ignored: Notify would undo that.
func SignalContext(log *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			log.Info("shutting down; send the signal again to force", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-ch
		log.Error("forced exit", "signal", s.String())
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// CheckRedis refuses a Redis too old for the store's commands (see
// store.CheckServer), and credentials Redis refuses, which waiting does
// not fix: a wrong password or user (WRONGPASS), none where one is
// required (NOAUTH), an ACL user that may not read the store's keys
// (NOPERM on a read of one, as processing makes). Its error names the
// settings, never the password. Redis being unreachable is only logged:
// the processor waits for it anyway. An ACL user that may not run INFO is
// not refused for it; the version is then not checked.
func CheckRedis(ctx context.Context, st *store.Store, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := st.CheckServer(cctx)
	if errors.Is(err, store.ErrServerTooOld) {
		return err
	}
	if redis.IsPermissionError(err) {
		log.Warn("could not check the Redis version: the ACL user may not run INFO", "error", err)
		err = nil
	}
	if err == nil {
		// INFO reads no key: read one, as processing does.
		_, err = st.EntityTimes(cctx, []string{"inlet-start-check"})
	}
	switch {
	case redis.IsAuthError(err):
		return fmt.Errorf("redis refused the credentials: check the user and password in -redis-url (INLET_REDIS_URL: redis://user:password@host:port/db) "+
			"and REDIS_PASSWORD or REDIS_PASSWORD_FILE (either overrides the URL's password): %w", err)
	case redis.IsPermissionError(err):
		return fmt.Errorf("redis refused the store's commands to the user of -redis-url (INLET_REDIS_URL): its ACL must allow them (reads, writes, scripts) "+
			"on the keys under -redis-key-prefix (INLET_REDIS_KEY_PREFIX): %w", err)
	case err != nil:
		log.Warn("could not check the Redis version and access; processing waits for Redis", "error", err)
	}
	return nil
}

// AdminServer is the HTTP server for a process's admin listener (/metrics,
// /healthz, /readyz and, on the processor, the admin API). Every limit is
// set: it listens on the cluster network, and one unauthenticated request
// must not hold a connection (a goroutine, a descriptor) for good. The
// write bound is long because a requeue or discard of a large queue
// answers only when done (it commits as it goes, so a cut one can be run
// again).
func AdminServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       time.Minute, // request bodies are at most 1 MiB
		WriteTimeout:      15 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// RunBounded runs run(ctx) and returns its error; once ctx has ended, it
// waits for run at most grace more, then returns late. For a stop that
// can outlast its bound through no fault of its own: a Kafka client's
// close or ping, once sent to a broker that answers nothing, waits for the
// client's own timeouts whatever its context says.
func RunBounded(ctx context.Context, run func(context.Context) error, grace time.Duration, late error) error {
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return late
	}
}
