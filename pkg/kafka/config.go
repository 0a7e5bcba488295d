// Package kafka turns Inlet's Kafka settings into franz-go client options and
// owns the topic layout (names under a prefix, configs, idempotent creation).
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/inletdev/inlet/pkg/flagenv"
)

// Config is how a process reaches Kafka. Secrets (SASL password) come only
// from the environment or a file, never from flags.
type Config struct {
	Brokers     []string
	ClientID    string
	TopicPrefix string
	// Partitions and ReplicationFactor apply when Inlet creates its topics;
	// existing topics are left as they are.
	Partitions        int
	ReplicationFactor int

	SASLMechanism string // "", plain, scram-sha-256, scram-sha-512
	SASLUser      string
	// SASL password: $INLET_KAFKA_SASL_PASSWORD or $INLET_KAFKA_SASL_PASSWORD_FILE.

	TLS           bool
	TLSCAFile     string
	TLSCertFile   string
	TLSKeyFile    string
	TLSServerName string
}

// RegisterFlags defines the Kafka flags on fs, defaulting from INLET_KAFKA_*.
func (c *Config) RegisterFlags(fs *flagenv.Set) {
	fs.List(&c.Brokers, "kafka-brokers", "INLET_KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap brokers")
	fs.String(&c.ClientID, "kafka-client-id", "INLET_KAFKA_CLIENT_ID", "inlet", "Kafka client id")
	fs.String(&c.TopicPrefix, "topic-prefix", "INLET_TOPIC_PREFIX", "inlet", "prefix of every Inlet topic name")
	fs.Int(&c.Partitions, "topic-partitions", "INLET_TOPIC_PARTITIONS", 6, "partitions for topics Inlet creates (the unit of processor scale-out)")
	fs.Int(&c.ReplicationFactor, "topic-replication", "INLET_TOPIC_REPLICATION", -1, "replication factor for topics Inlet creates (-1: broker default)")
	fs.String(&c.SASLMechanism, "kafka-sasl-mechanism", "INLET_KAFKA_SASL_MECHANISM", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (password from INLET_KAFKA_SASL_PASSWORD[_FILE])")
	fs.String(&c.SASLUser, "kafka-sasl-user", "INLET_KAFKA_SASL_USER", "", "SASL user")
	fs.Bool(&c.TLS, "kafka-tls", "INLET_KAFKA_TLS", false, "connect to Kafka over TLS")
	fs.String(&c.TLSCAFile, "kafka-tls-ca", "INLET_KAFKA_TLS_CA", "", "PEM CA bundle for Kafka TLS (default: system roots)")
	fs.String(&c.TLSCertFile, "kafka-tls-cert", "INLET_KAFKA_TLS_CERT", "", "PEM client certificate for mutual TLS")
	fs.String(&c.TLSKeyFile, "kafka-tls-key", "INLET_KAFKA_TLS_KEY", "", "PEM client key for mutual TLS")
	fs.String(&c.TLSServerName, "kafka-tls-server-name", "INLET_KAFKA_TLS_SERVER_NAME", "", "TLS server name override")
}

// RetryTiersFlag defines -retry-tiers (INLET_RETRY_TIERS) on fs, the
// processor's retry tier delays, one topic each: every service and command
// that names retry topics takes them the same way. Call the function it
// returns after fs.Parse for the delays.
func RetryTiersFlag(fs *flagenv.Set, usage string) func() ([]time.Duration, error) {
	names := make([]string, len(DefaultRetryTiers))
	for i, d := range DefaultRetryTiers {
		names[i] = TierName(d)
	}
	var tiers []string
	fs.List(&tiers, "retry-tiers", "INLET_RETRY_TIERS", strings.Join(names, ","), usage)
	return func() ([]time.Duration, error) { return ParseRetryTiers(tiers) }
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers"))
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("kafka: empty topic prefix"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("kafka: topic partitions must be ≥ 1"))
	}
	switch c.SASLMechanism {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, fmt.Errorf("kafka: unknown SASL mechanism %q", c.SASLMechanism))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("kafka: TLS cert and key must be given together"))
	}
	return errors.Join(errs...)
}

// ClientOpts returns the connection options shared by every client: brokers,
// client id, SASL, TLS and logging. A SASL mechanism without a user or
// without a password (INLET_KAFKA_SASL_PASSWORD[_FILE] unset or empty) is
// refused: it would authenticate with an empty one. So are a user or a
// password without a mechanism, which would be ignored. Errors name the
// settings, never a secret's value.
func (c *Config) ClientOpts(log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
	}
	if log != nil {
		// The client logs every transaction at info; keep warnings and up.
		quiet := slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "kafka")
		opts = append(opts, kgo.WithLogger(kslog.New(quiet)))
	}
	if c.SASLMechanism == "" {
		// Credentials without a mechanism would be ignored: the client would
		// connect unauthenticated and fail later with an authorization or
		// connection error that does not point here.
		var set []string
		if c.SASLUser != "" {
			set = append(set, "a user (-kafka-sasl-user, INLET_KAFKA_SASL_USER)")
		}
		for _, name := range []string{"INLET_KAFKA_SASL_PASSWORD", "INLET_KAFKA_SASL_PASSWORD_FILE"} {
			if os.Getenv(name) != "" {
				set = append(set, name)
			}
		}
		if len(set) > 0 {
			return nil, fmt.Errorf("kafka: SASL %s set without a mechanism: set -kafka-sasl-mechanism (INLET_KAFKA_SASL_MECHANISM: plain, scram-sha-256 or scram-sha-512), or unset them", strings.Join(set, " and "))
		}
	}
	if c.SASLMechanism != "" {
		pass, err := flagenv.Secret("INLET_KAFKA_SASL_PASSWORD")
		if err != nil {
			return nil, err
		}
		var missing []string
		if c.SASLUser == "" {
			missing = append(missing, "a user (-kafka-sasl-user, INLET_KAFKA_SASL_USER)")
		}
		if pass == "" {
			missing = append(missing, "a password (INLET_KAFKA_SASL_PASSWORD or INLET_KAFKA_SASL_PASSWORD_FILE, unset or empty)")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("kafka: SASL mechanism %s (-kafka-sasl-mechanism, INLET_KAFKA_SASL_MECHANISM) without %s", c.SASLMechanism, strings.Join(missing, " and without "))
		}
		switch c.SASLMechanism {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: pass}.AsSha512Mechanism()))
		}
	}
	if c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka TLS CA %s: no certificates", c.TLSCAFile)
			}
			cfg.RootCAs = pool
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka TLS client cert: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts, nil
}

// minLevel drops records below level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.level}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{m.Handler.WithGroup(g), m.level} }
