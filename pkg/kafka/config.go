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
	"net/netip"
	"os"
	"strconv"
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
	// MinInsyncReplicas is the min.insync.replicas of the topics Inlet
	// creates: 0 picks one (see MinInsync), -1 leaves the broker's default.
	MinInsyncReplicas int

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
	fs.Int(&c.MinInsyncReplicas, "topic-min-insync-replicas", "INLET_TOPIC_MIN_INSYNC_REPLICAS", 0, "min.insync.replicas for topics Inlet creates: the replicas that must hold a write before acks=all acknowledges it (0: 2 when -topic-replication is 3 or more, else the broker default; -1: the broker default)")
	fs.String(&c.SASLMechanism, "kafka-sasl-mechanism", "INLET_KAFKA_SASL_MECHANISM", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (password from INLET_KAFKA_SASL_PASSWORD[_FILE])")
	fs.String(&c.SASLUser, "kafka-sasl-user", "INLET_KAFKA_SASL_USER", "", "SASL user")
	fs.Bool(&c.TLS, "kafka-tls", "INLET_KAFKA_TLS", false, "connect to Kafka over TLS (on too when a CA, client certificate or server name is given)")
	fs.String(&c.TLSCAFile, "kafka-tls-ca", "INLET_KAFKA_TLS_CA", "", "PEM CA bundle for Kafka TLS (default: system roots)")
	fs.String(&c.TLSCertFile, "kafka-tls-cert", "INLET_KAFKA_TLS_CERT", "", "PEM client certificate for mutual TLS")
	fs.String(&c.TLSKeyFile, "kafka-tls-key", "INLET_KAFKA_TLS_KEY", "", "PEM client key for mutual TLS")
	fs.String(&c.TLSServerName, "kafka-tls-server-name", "INLET_KAFKA_TLS_SERVER_NAME", "", "TLS server name to verify, when it is not the broker's address (turns TLS on)")
}

// NoRetryTiers is the -retry-tiers value for no retry tiers at all: no
// retry topics, and a failed event goes to the dead-letter topic at once.
const NoRetryTiers = "none"

// MinRetryTier is the shortest delay -retry-tiers takes: a shorter one
// (1ns, 10ms) is a typo for a longer one, or a retry loop against a sink
// that is down.
const MinRetryTier = time.Second

// retryTiersSetting names the setting in errors.
const retryTiersSetting = "-retry-tiers (INLET_RETRY_TIERS)"

// RetryTiersFlag defines -retry-tiers (INLET_RETRY_TIERS) on fs, the
// processor's retry tier delays, one topic each: every service and command
// that names retry topics takes them the same way. Call the function it
// returns after fs.Parse for the delays; it refuses an empty value or
// entry, a delay under MinRetryTier, and delays that do not increase
// (attempt n goes to the n-th tier and a requeue to the first, so the
// order is the escalation). NoRetryTiers gives none.
func RetryTiersFlag(fs *flagenv.Set, usage string) func() ([]time.Duration, error) {
	var tiers string
	fs.String(&tiers, "retry-tiers", "INLET_RETRY_TIERS", tierList(DefaultRetryTiers),
		usage+" (comma-separated, increasing, each at least "+TierName(MinRetryTier)+"; "+NoRetryTiers+": no retry tiers)")
	return func() ([]time.Duration, error) { return parseRetryTiersFlag(tiers) }
}

// parseRetryTiersFlag reads -retry-tiers' value; see RetryTiersFlag.
func parseRetryTiersFlag(v string) ([]time.Duration, error) {
	v = strings.TrimSpace(v)
	switch v {
	case NoRetryTiers:
		return nil, nil
	case "":
		return nil, fmt.Errorf("%s is empty: give the tier delays (the default is %s), or %q for no retry tiers",
			retryTiersSetting, tierList(DefaultRetryTiers), NoRetryTiers)
	}
	entries := strings.Split(v, ",")
	if strings.Trim(v, ", \t") == "" {
		return nil, fmt.Errorf("%s %q holds no delay: give the tier delays (the default is %s), or %q for no retry tiers",
			retryTiersSetting, v, tierList(DefaultRetryTiers), NoRetryTiers)
	}
	for i, e := range entries {
		if strings.TrimSpace(e) == "" {
			return nil, fmt.Errorf("%s %q: entry %d of %d is empty", retryTiersSetting, v, i+1, len(entries))
		}
	}
	tiers, err := ParseRetryTiers(entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", retryTiersSetting, err)
	}
	for i, d := range tiers {
		switch {
		case d < MinRetryTier:
			return nil, fmt.Errorf("%s: retry tier %s is under the minimum of %s", retryTiersSetting, TierName(d), TierName(MinRetryTier))
		case i > 0 && d == tiers[i-1]:
			return nil, fmt.Errorf("%s: retry tier %s is given twice (%q): each tier is one topic", retryTiersSetting, TierName(d), v)
		case i > 0 && d < tiers[i-1]:
			return nil, fmt.Errorf("%s %s: the delays must increase (attempt n waits on the n-th tier, a requeue on the first): %s comes after %s",
				retryTiersSetting, tierList(tiers), TierName(d), TierName(tiers[i-1]))
		}
	}
	return tiers, nil
}

// tierList renders delays as -retry-tiers takes them: 30s,2m,15m.
func tierList(ds []time.Duration) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = TierName(d)
	}
	return strings.Join(names, ",")
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers: set -kafka-brokers (INLET_KAFKA_BROKERS)"))
	}
	for _, b := range c.Brokers {
		if why := badBroker(b); why != "" {
			errs = append(errs, fmt.Errorf("kafka: -kafka-brokers (INLET_KAFKA_BROKERS) %q: %s; want host:port, such as kafka-1:9092", b, why))
		}
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("kafka: -topic-prefix (INLET_TOPIC_PREFIX) is empty"))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafka: -topic-partitions (INLET_TOPIC_PARTITIONS) %d: topic partitions must be ≥ 1", c.Partitions))
	}
	if c.ReplicationFactor < 1 && c.ReplicationFactor != -1 {
		errs = append(errs, fmt.Errorf("kafka: -topic-replication (INLET_TOPIC_REPLICATION) %d: want -1 (the broker's default) or ≥ 1", c.ReplicationFactor))
	}
	switch m := c.MinInsyncReplicas; {
	case m < -1:
		errs = append(errs, fmt.Errorf("kafka: -topic-min-insync-replicas (INLET_TOPIC_MIN_INSYNC_REPLICAS) %d: want -1 (the broker's default), 0 (2 from -topic-replication 3 up) or ≥ 1", m))
	case m > 0 && c.ReplicationFactor > 0 && m > c.ReplicationFactor:
		errs = append(errs, fmt.Errorf("kafka: -topic-min-insync-replicas (INLET_TOPIC_MIN_INSYNC_REPLICAS) %d is more than -topic-replication %d: every write would be refused", m, c.ReplicationFactor))
	}
	// Any case: Kafka's own configs write PLAIN and SCRAM-SHA-256.
	switch strings.ToLower(c.SASLMechanism) {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, fmt.Errorf("kafka: unknown SASL mechanism %q (-kafka-sasl-mechanism, INLET_KAFKA_SASL_MECHANISM): want plain, scram-sha-256 or scram-sha-512", c.SASLMechanism))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("kafka: TLS cert and key must be given together (-kafka-tls-cert and -kafka-tls-key, INLET_KAFKA_TLS_CERT and INLET_KAFKA_TLS_KEY)"))
	}
	return errors.Join(errs...)
}

// badBroker says why the client could never dial the broker address b, or
// "" when it could: host, host:port, [ipv6]:port, [ipv6] or a bare IPv6
// address, as the client reads them (no port: 9092). The client takes
// anything else for a host, or fails to start, and either way a start
// waited on it for good as on a Kafka outage.
func badBroker(b string) string {
	if strings.Contains(b, "://") {
		return "a URL (a listener's PLAINTEXT:// or SASL_SSL://?), not an address (TLS is -kafka-tls)"
	}
	port := ""
	switch {
	case strings.HasPrefix(b, "["):
		end := strings.IndexByte(b, ']')
		if end < 0 {
			return "no ] after the IPv6 address"
		}
		port = b[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "not :port after the ]"
			}
			port = port[1:]
			if port == "" {
				return "no port after the colon"
			}
		}
	case strings.Count(b, ":") == 1:
		_, port, _ = strings.Cut(b, ":")
		if port == "" {
			return "no port after the colon"
		}
	case strings.Contains(b, ":") && !isAddr(b):
		return "more than one colon, and not an IPv6 address (write [address]:port)"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "port " + strconv.Quote(port) + " is not a number from 1 to 65535"
		}
	}
	return ""
}

// isAddr reports whether s is an IP address (an IPv6 one with a zone too).
func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
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
		// The client logs every transaction at info; keep warnings and up,
		// a warning repeated unchanged (a broker down: about 13 a second)
		// once per RepeatEvery. Its errors from a broker being away or a
		// coordinator moving come as warnings, before the limiter (loglevel.go).
		quiet := slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "kafka")
		limited := newRepeatLimiter(quiet.Handler(), RepeatEvery, time.Now)
		opts = append(opts, kgo.WithLogger(kslog.New(slog.New(demoteOutages{limited}))))
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
			return nil, fmt.Errorf("kafka: SASL mechanism %s (-kafka-sasl-mechanism, INLET_KAFKA_SASL_MECHANISM): %w", c.SASLMechanism, err)
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
		switch strings.ToLower(c.SASLMechanism) {
		case "plain":
			if !c.tlsOn() && log != nil {
				log.Warn("kafka: SASL plain without TLS sends the password in clear text; set -kafka-tls (INLET_KAFKA_TLS) unless the network between here and the brokers is trusted")
			}
			opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: pass}.AsSha512Mechanism()))
		}
	}
	if c.tlsOn() {
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

// tlsOn reports whether the brokers are dialled over TLS: asked for, or
// implied by a CA, a client certificate or a server name to verify (one
// given without -kafka-tls was ignored, and the client spoke plain text).
func (c *Config) tlsOn() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSServerName != ""
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

// MinInsync is the min.insync.replicas set on the topics Inlet creates, 0
// for none (the broker's default): -topic-min-insync-replicas, or when it
// is 0, AutoMinInsync of -topic-replication.
func (c *Config) MinInsync() int {
	switch {
	case c.MinInsyncReplicas > 0:
		return c.MinInsyncReplicas
	case c.MinInsyncReplicas == 0:
		return AutoMinInsync(c.ReplicationFactor)
	}
	return 0
}

// AutoMinInsync is the min.insync.replicas for a topic of replication
// replicas: 2 from 3 replicas up, else 0 (the broker's default, 1 unless
// its operator changed it). Without it acks=all is answered by the leader
// alone once the other replicas fall out of sync, and an event Inlet
// answered 2xx for is lost with that broker. Two replicas get no minimum:
// 2 of 2 would refuse every write while one broker restarts.
func AutoMinInsync(replication int) int {
	if replication >= 3 {
		return 2
	}
	return 0
}
