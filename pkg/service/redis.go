package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/flagenv"
)

// RedisConfig is how the processor (and inletctl replay, which processes
// too) reach Redis and name their keys there.
type RedisConfig struct {
	URL string
	// KeyPrefix starts every key the processor writes: dedup claims,
	// entity state, event history, replay progress. Processes sharing
	// state must use the same one; environments sharing a Redis, each
	// their own.
	KeyPrefix string
}

// RegisterFlags defines -redis-url and -redis-key-prefix.
func (c *RedisConfig) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.URL, "redis-url", "INLET_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL; rediss:// for TLS (password may be in the URL or REDIS_PASSWORD[_FILE])")
	fs.String(&c.KeyPrefix, "redis-key-prefix", "INLET_REDIS_KEY_PREFIX", "inlet:", "prefix of every Redis key the processor writes; the same for every processor and inletctl replay of one deployment")
}

// Options parses the URL and applies REDIS_PASSWORD[_FILE]. The URL often
// holds a password, so an error never quotes it.
func (c *RedisConfig) Options() (*redis.Options, error) {
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("-redis-url (INLET_REDIS_URL): not a redis:// or rediss:// URL (%s; the value is not shown: it may hold a password)", RedactedReason(err))
	}
	pass, err := flagenv.Secret("REDIS_PASSWORD")
	if err != nil {
		return nil, err
	}
	if pass != "" {
		opt.Password = pass
	}
	return opt, nil
}

// RedactedReason is what is wrong with a URL, without any of its text:
// url.Error quotes the URL whole, its port error quotes the start of a
// password holding '/', '?' or '#' (read as the end of the host), and
// go-redis's path and option errors quote the rest of one. Only the kind
// of mistake is named, with the hint that fixes the common one.
func RedactedReason(err error) string {
	const escapeHint = " (a password holding /, ? or # must be %-escaped)"
	var ue *url.Error
	if errors.As(err, &ue) {
		var esc url.EscapeError
		var host url.InvalidHostError
		switch {
		case errors.As(ue.Err, &esc) || errors.As(ue.Err, &host):
			return "a malformed %-escape or host"
		case strings.HasPrefix(ue.Err.Error(), "invalid port"):
			return "a malformed port" + escapeHint
		}
		return "malformed"
	}
	msg := err.Error()
	for _, c := range []struct{ prefix, reason string }{
		{"redis: invalid URL scheme", "the scheme is not redis:// or rediss://"},
		{"redis: invalid database number", "the path is not a database number"},
		{"redis: invalid URL path", "the path is not /<database number>" + escapeHint},
		{"redis: unexpected option", "an unknown query option" + escapeHint},
		{"redis: invalid ", "a query option with a malformed value"},
	} {
		if strings.HasPrefix(msg, c.prefix) {
			return c.reason
		}
	}
	return "not a URL it reads"
}

// RedisClientLog sends the go-redis client's own log lines (a pool that
// fails to dial, say: one per connection attempt while Redis is down) to
// log at debug, as JSON like every other line, instead of plain text on
// stderr, which broke log parsing. The outage itself is logged by the
// processor ("redis unavailable; waiting"). The client's logger is global
// to the process.
func RedisClientLog(log *slog.Logger) {
	redis.SetLogger(redisLog{log.With("component", "redis-client")})
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
