package kafka

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/inletdev/inlet/pkg/flagenv"
)

// TestClientOptsSASLCredentials: a SASL mechanism authenticates with a
// user and a password; without either (or with an empty password file)
// the options are refused naming the settings, never a secret's value.
// They used to be built with an empty password, and --check-config said ok.
func TestClientOptsSASLCredentials(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		user      string
		pass      string // INLET_KAFKA_SASL_PASSWORD
		passFile  string // INLET_KAFKA_SASL_PASSWORD_FILE
		want      []string
		wantNoErr bool
	}{
		{name: "user and password", user: "inlet", pass: "s3cr3t", wantNoErr: true},
		{name: "no password", user: "inlet", want: []string{"INLET_KAFKA_SASL_PASSWORD", "INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "empty password file", user: "inlet", passFile: empty, want: []string{"INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "no user", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_USER"}},
		{name: "neither", want: []string{"INLET_KAFKA_SASL_USER", "INLET_KAFKA_SASL_PASSWORD"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("INLET_KAFKA_SASL_PASSWORD", c.pass)
			t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", c.passFile)
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASLMechanism: "scram-sha-256", SASLUser: c.user}
			_, err := cfg.ClientOpts(nil)
			if c.wantNoErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("options built")
			}
			for _, w := range append(c.want, "scram-sha-256") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("no mechanism", func(t *testing.T) {
		t.Setenv("INLET_KAFKA_SASL_PASSWORD", "")
		t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
		cfg := Config{Brokers: []string{"127.0.0.1:9092"}}
		if _, err := cfg.ClientOpts(nil); err != nil {
			t.Fatalf("no SASL: %v", err)
		}
	})
	// A user or password with no mechanism would be ignored: the client
	// would connect unauthenticated.
	for _, c := range []struct {
		name, user, pass, passFile string
		want                       []string
	}{
		{name: "user only", user: "inlet", want: []string{"INLET_KAFKA_SASL_USER"}},
		{name: "password only", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_PASSWORD"}},
		{name: "password file only", passFile: "/run/secrets/kafka", want: []string{"INLET_KAFKA_SASL_PASSWORD_FILE"}},
		{name: "user and password", user: "inlet", pass: "s3cr3t", want: []string{"INLET_KAFKA_SASL_USER", "INLET_KAFKA_SASL_PASSWORD"}},
	} {
		t.Run("no mechanism, "+c.name, func(t *testing.T) {
			t.Setenv("INLET_KAFKA_SASL_PASSWORD", c.pass)
			t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", c.passFile)
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASLUser: c.user}
			_, err := cfg.ClientOpts(nil)
			if err == nil {
				t.Fatal("options built; the credentials would be ignored")
			}
			for _, w := range append(c.want, "INLET_KAFKA_SASL_MECHANISM") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// TestRetryTiersFlag: -retry-tiers (INLET_RETRY_TIERS) takes increasing
// delays of at least 1s, or "none"; an empty value or entry (",", which
// used to give no tiers without a word), a delay given twice (30s,30s: one
// topic for two tiers), one under 1s (1ns) and delays out of order are
// refused, naming the flag and the variable.
func TestRetryTiersFlag(t *testing.T) {
	parse := func(t *testing.T, args []string) ([]time.Duration, error) {
		t.Helper()
		fs := flagenv.New("test")
		fs.SetOutput(io.Discard)
		tiers := RetryTiersFlag(fs, "retry tiers")
		if err := fs.Parse(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
		return tiers()
	}
	for _, c := range []struct {
		name, value string
		want        []time.Duration
	}{
		{"the default", "", DefaultRetryTiers},
		{"increasing", "5s, 1m,1h30m", []time.Duration{5 * time.Second, time.Minute, 90 * time.Minute}},
		{"the minimum", "1s", []time.Duration{time.Second}},
		{"none", "none", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("INLET_RETRY_TIERS", c.value)
			if c.value == "" {
				os.Unsetenv("INLET_RETRY_TIERS")
			}
			got, err := parse(t, nil)
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("INLET_RETRY_TIERS=%q: %v, %v; want %v", c.value, got, err, c.want)
			}
		})
	}
	for _, c := range []struct {
		name, value string
		want        []string
	}{
		{"empty", "", []string{"empty", "none"}},
		{"blank", "  ", []string{"empty", "none"}},
		{"only separators", ",", []string{"holds no delay", "none"}},
		{"only separators and blanks", " , ,", []string{"holds no delay"}},
		{"an empty entry", "30s,,2m", []string{"entry 2 of 3 is empty"}},
		{"a trailing separator", "30s,2m,", []string{"entry 3 of 3 is empty"}},
		{"not a duration", "soon", []string{`"soon"`}},
		{"zero", "0s", []string{`"0s"`}},
		{"under a second", "1ns", []string{"1ns", "minimum of 1s"}},
		{"under a second, later", "30s,2m,500ms", []string{"500ms", "minimum of 1s"}},
		{"twice", "30s,30s", []string{"30s", "twice"}},
		{"twice, written otherwise", "1m,60s", []string{"1m", "twice"}},
		{"decreasing", "2m,30s", []string{"increase", "30s comes after 2m"}},
		{"a repeat out of order", "30s,2m,30s", []string{"increase"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, how := range []string{"flag", "env"} {
				var args []string
				if how == "flag" {
					os.Unsetenv("INLET_RETRY_TIERS")
					args = []string{"-retry-tiers", c.value}
				} else {
					t.Setenv("INLET_RETRY_TIERS", c.value)
				}
				got, err := parse(t, args)
				if err == nil {
					t.Fatalf("%s %q: tiers %v, want an error", how, c.value, got)
				}
				for _, w := range append(c.want, "-retry-tiers (INLET_RETRY_TIERS)") {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s %q: %v, want an error mentioning %q", how, c.value, err, w)
					}
				}
			}
		})
	}
}

// TestValidateNamesTheFlags: each setting Validate refuses is named by
// its flag and variable.
func TestValidateNamesTheFlags(t *testing.T) {
	good := Config{Brokers: []string{"127.0.0.1:9092"}, TopicPrefix: "inlet", Partitions: 6, ReplicationFactor: -1}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no partitions", func(c *Config) { c.Partitions = 0 }, []string{"-topic-partitions (INLET_TOPIC_PARTITIONS)", "≥ 1"}},
		{"negative partitions", func(c *Config) { c.Partitions = -3 }, []string{"-topic-partitions (INLET_TOPIC_PARTITIONS) -3"}},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"-kafka-brokers (INLET_KAFKA_BROKERS)"}},
		{"no prefix", func(c *Config) { c.TopicPrefix = "" }, []string{"-topic-prefix (INLET_TOPIC_PREFIX)"}},
		{"unknown mechanism", func(c *Config) { c.SASLMechanism = "md5" }, []string{"-kafka-sasl-mechanism", "INLET_KAFKA_SASL_MECHANISM", `"md5"`}},
		{"cert without key", func(c *Config) { c.TLSCertFile = "/c.pem" }, []string{"-kafka-tls-key", "INLET_KAFKA_TLS_KEY"}},
		// Passed --check-config and failed at start, after the wait for
		// Kafka, as topic settings the cluster refused.
		{"replication 0", func(c *Config) { c.ReplicationFactor = 0 }, []string{"-topic-replication (INLET_TOPIC_REPLICATION) 0", "-1"}},
		{"replication -2", func(c *Config) { c.ReplicationFactor = -2 }, []string{"-topic-replication (INLET_TOPIC_REPLICATION) -2"}},
		{"min insync -2", func(c *Config) { c.MinInsyncReplicas = -2 }, []string{"-topic-min-insync-replicas (INLET_TOPIC_MIN_INSYNC_REPLICAS) -2"}},
		{"min insync over replication", func(c *Config) { c.ReplicationFactor, c.MinInsyncReplicas = 2, 3 }, []string{"-topic-min-insync-replicas (INLET_TOPIC_MIN_INSYNC_REPLICAS) 3", "-topic-replication 2", "refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			err := cfg.Validate()
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("%v, want an error mentioning %q", err, w)
				}
			}
		})
	}
}

// TestMinInsync: the min.insync.replicas of created topics is 2 from 3
// replicas up unless the flag says otherwise, and none (the broker's
// default) for fewer replicas, the broker's replication, or -1.
func TestMinInsync(t *testing.T) {
	for _, tt := range []struct{ replication, flag, want int }{
		{-1, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 2}, {5, 0, 2},
		{3, -1, 0}, {3, 3, 3}, {-1, 2, 2}, {2, 1, 1},
	} {
		c := Config{ReplicationFactor: tt.replication, MinInsyncReplicas: tt.flag}
		if got := c.MinInsync(); got != tt.want {
			t.Errorf("replication %d, -topic-min-insync-replicas %d: %d, want %d", tt.replication, tt.flag, got, tt.want)
		}
	}
}

// TestClientOptsTLS: a server name to verify turns TLS on, as a CA or a
// client certificate does (given alone it was ignored, and the client
// spoke plain text); SASL plain without TLS warns that the password
// crosses in clear text.
func TestClientOptsTLS(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, false},
		{Config{TLS: true}, true},
		{Config{TLSCAFile: "/ca.pem"}, true},
		{Config{TLSCertFile: "/c.pem", TLSKeyFile: "/k.pem"}, true},
		{Config{TLSServerName: "kafka.internal"}, true},
	} {
		if got := c.cfg.tlsOn(); got != c.want {
			t.Errorf("%+v: TLS %v, want %v", c.cfg, got, c.want)
		}
	}
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "s3cr3t-sasl")
	t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
	for _, tlsOn := range []bool{false, true} {
		var buf bytes.Buffer
		cfg := Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "inlet", SASLMechanism: "plain", SASLUser: "inlet", TLS: tlsOn}
		if _, err := cfg.ClientOpts(slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(buf.String(), "clear text"); warned == tlsOn || strings.Contains(buf.String(), "s3cr3t") {
			t.Errorf("SASL plain, TLS %v: log %q; want a warning only without TLS, never the password", tlsOn, buf.String())
		}
	}
}

// TestClientOptsLimitsRepeatedWarnings: the client's logger passes a
// warning repeated unchanged once (a broker down logged about 13 a
// second), and every error and distinct warning.
func TestClientOptsLimitsRepeatedWarnings(t *testing.T) {
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "")
	t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
	var buf bytes.Buffer
	cfg := Config{Brokers: []string{"127.0.0.1:47101"}}
	opts, err := cfg.ClientOpts(slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	log := cl.OptValue(kgo.WithLogger).(kgo.Logger)
	buf.Reset() // whatever the client logged starting
	for range 13 {
		log.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "127.0.0.1:47101", "err", "connection refused")
	}
	log.Log(kgo.LogLevelWarn, "unable to open connection to broker", "addr", "127.0.0.1:47102", "err", "connection refused")
	log.Log(kgo.LogLevelError, "fatal", "err", "x")
	log.Log(kgo.LogLevelError, "fatal", "err", "x")
	log.Log(kgo.LogLevelInfo, "transaction begun")
	out := buf.String()
	if n := strings.Count(out, "47101"); n != 1 {
		t.Errorf("the repeated warning logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "47102"); n != 1 {
		t.Errorf("a distinct warning logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "msg=fatal"); n != 2 {
		t.Errorf("errors logged %d times, want every one (2):\n%s", n, out)
	}
	if strings.Contains(out, "transaction begun") || !strings.Contains(out, "component=kafka") {
		t.Errorf("info passed or the component is not named:\n%s", out)
	}
}

// TestValidateBrokerAddresses: a broker address the client cannot dial
// whatever the network does (a URL such as a listener's PLAINTEXT://,
// a port that is not a number or out of range) is refused naming it;
// --check-config passed them, and a start waited on them for good as
// "kafka unavailable". The forms the client takes are accepted.
func TestValidateBrokerAddresses(t *testing.T) {
	good := Config{TopicPrefix: "inlet", Partitions: 6, ReplicationFactor: -1}
	for _, b := range []string{"kafka-1:9092", "kafka-1", "10.0.0.1:9093", "[2001:db8::1]:9092", "[2001:db8::1]", "::1", "fe80::1%eth0", "kafka:65535", ":9092"} {
		cfg := good
		cfg.Brokers = []string{b}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%q: %v", b, err)
		}
	}
	for _, b := range []string{"PLAINTEXT://kafka:9092", "http://kafka:9092", "kafka:abc", "kafka:99999", "kafka:0", "kafka:-1", "kafka:", "kafka:9092:1", "[2001:db8::1]:x", "[2001:db8::1"} {
		cfg := good
		cfg.Brokers = []string{"kafka-1:9092", b}
		err := cfg.Validate()
		if err == nil {
			t.Errorf("%q: accepted", b)
			continue
		}
		for _, w := range []string{"-kafka-brokers (INLET_KAFKA_BROKERS)", strconv.Quote(b)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error mentioning %s", b, err, w)
			}
		}
	}
}

// TestSASLMechanismAnyCase: Kafka's own configs write PLAIN and
// SCRAM-SHA-256; the same names were refused as unknown here.
func TestSASLMechanismAnyCase(t *testing.T) {
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "s3cr3t")
	t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
	for mech, want := range map[string]string{"PLAIN": "PLAIN", "SCRAM-SHA-256": "SCRAM-SHA-256", "Scram-Sha-512": "SCRAM-SHA-512", "plain": "PLAIN"} {
		cfg := Config{Brokers: []string{"127.0.0.1:9092"}, TopicPrefix: "inlet", Partitions: 1, ReplicationFactor: 1, SASLMechanism: mech, SASLUser: "inlet", TLS: true}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", mech, err)
			continue
		}
		opts, err := cfg.ClientOpts(nil)
		if err != nil {
			t.Errorf("%s: %v", mech, err)
			continue
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range cl.OptValues(kgo.SASL) {
			for _, mm := range m.([]sasl.Mechanism) {
				got = append(got, mm.Name())
			}
		}
		cl.Close()
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: mechanisms %v, want %s", mech, got, want)
		}
	}
}
