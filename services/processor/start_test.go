package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/testenv"
)

func startProcessor(t *testing.T, args ...string) *servicetest.Started {
	t.Helper()
	return servicetest.Start(t, "processor", func(stderr io.Writer) error {
		return run(append([]string{"-sources", exampleSources, "-log-format", "json", "-history-retention", "0"}, args...), stderr)
	})
}

const (
	registryWarning = "schema registry unavailable: waiting for it before processing (/readyz answers 503 meanwhile)"
	kafkaWarning    = "kafka unavailable: waiting for it before processing (/readyz answers 503 meanwhile)"
)

// TestStartWaitsForRegistry: a registry answering 503 at start makes the
// processor wait, not exit 1: a WARN names the registry and the subject,
// the admin listener answers /healthz 200 and /readyz 503 saying what it
// waits on. Once the registry answers, the processor runs, and /readyz is
// its own (200, saying what it covers).
func TestStartWaitsForRegistry(t *testing.T) {
	env := testenv.Embedded(t)
	reg := servicetest.NewOutage(t, env.RegistryURL)
	subject := env.Prefix + ".raw-value"
	s := startProcessor(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", reg.URL, "-redis-url", env.RedisURL, "-admin-addr", servicetest.AnyPort)
	adminAddr := s.Addr(t, "processor starting", "admin")
	warn := s.Await(t, registryWarning)
	if warn["level"] != "WARN" || warn["schema_registry"] != reg.URL || !strings.Contains(warn["needs"].(string), subject) {
		t.Errorf("warning %v: want a WARN with schema_registry %s and needs naming %s", warn, reg.URL, subject)
	}
	if code, body := servicetest.Get(t, "http://"+adminAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %s, want 200", code, body)
	}
	if code, body := servicetest.Get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "schema registry") || !strings.Contains(body, subject) {
		t.Errorf("/readyz while waiting: %d %s, want 503 saying it waits on the registry for %s", code, body, subject)
	}
	s.Until(t, "2 registrations tried", func() bool { return reg.Attempts() >= 2 }) // it keeps trying
	reg.End()
	s.Await(t, "schema registry reachable; envelope schema registered")
	s.Await(t, "processor running")
	if body := servicetest.ReadyWithin(t, adminAddr, 20*time.Second); !strings.Contains(body, `"covers"`) || !strings.Contains(body, `"waiting_on":[]`) {
		t.Errorf("/readyz once running: %s, want the processor's own answer", body)
	}
	servicetest.SIGTERM(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
}

// TestStartWaitsForKafka: Kafka that cannot be reached at start makes the
// processor wait (before, it exited 1: "create topic ...: unable to
// dial"), with a WARN naming the brokers and /readyz 503 saying so; once
// the broker is up it creates the topics and runs.
func TestStartWaitsForKafka(t *testing.T) {
	env := testenv.Embedded(t) // for the registry and Redis; its Kafka is not used
	kafka := servicetest.NewLateKafka(t)
	s := startProcessor(t, "-kafka-brokers", kafka.Addr(), "-topic-prefix", env.Prefix,
		"-schema-registry-url", env.RegistryURL, "-redis-url", env.RedisURL, "-admin-addr", servicetest.AnyPort)
	adminAddr := s.Addr(t, "processor starting", "admin")
	warn := s.Await(t, kafkaWarning)
	if warn["level"] != "WARN" || warn["kafka_brokers"] != kafka.Addr() {
		t.Errorf("warning %v: want a WARN with kafka_brokers %s", warn, kafka.Addr())
	}
	if code, body := servicetest.Get(t, "http://"+adminAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %s, want 200", code, body)
	}
	if code, body := servicetest.Get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Kafka") || !strings.Contains(body, kafka.Addr()) {
		t.Errorf("/readyz while waiting: %d %s, want 503 saying it waits on Kafka %s", code, body, kafka.Addr())
	}
	kafka.Start(t)
	s.Await(t, "kafka reachable; topics ensured")
	s.Await(t, "processor running")
	servicetest.ReadyWithin(t, adminAddr, 20*time.Second)
	servicetest.SIGTERM(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
}

// TestStopWhileWaitingForKafka: SIGTERM while the processor waits for
// Kafka ends it cleanly (run returns nil: exit 0), its admin listener
// closed.
func TestStopWhileWaitingForKafka(t *testing.T) {
	kafka := servicetest.NewLateKafka(t)
	s := startProcessor(t, "-kafka-brokers", kafka.Addr(), "-schema-registry-url", "http://"+servicetest.ClosedAddr(t),
		"-redis-url", "redis://"+servicetest.ClosedAddr(t)+"/0", "-admin-addr", servicetest.AnyPort)
	adminAddr := s.Addr(t, "processor starting", "admin")
	s.Await(t, kafkaWarning)
	servicetest.SIGTERM(t)
	if err := s.Stopped(t, 5*time.Second); err != nil {
		t.Errorf("run after SIGTERM while waiting for Kafka: %v, want nil (exit 0)", err)
	}
	if servicetest.Serves(adminAddr) {
		t.Error("the admin listener still serves after run returned")
	}
}

// TestStartKafkaAuthRefused: a broker refusing the processor's SASL
// credentials fails the start at once, naming the settings to fix.
func TestStartKafkaAuthRefused(t *testing.T) {
	c := servicetest.SASLRefusingKafka(t)
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "a-wrong-sasl-password")
	s := startProcessor(t, "-kafka-brokers", strings.Join(c.ListenAddrs(), ","), "-kafka-sasl-mechanism", "scram-sha-256", "-kafka-sasl-user", "inlet",
		"-schema-registry-url", "http://"+servicetest.ClosedAddr(t), "-redis-url", "redis://"+servicetest.ClosedAddr(t)+"/0", "-admin-addr", servicetest.AnyPort)
	err := s.Stopped(t, 20*time.Second)
	for _, want := range []string{"SASL", "INLET_KAFKA_SASL_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run: %v, want an error naming %s", err, want)
		}
	}
	if s.Line(kafkaWarning) != nil {
		t.Errorf("the processor waited on refused credentials:\n%s", s.Log)
	}
}

// TestRegistryURLWithPassword: a registry URL with a password in it is
// refused (by --check-config too), the password never in the error.
func TestRegistryURLWithPassword(t *testing.T) {
	const secret = "url-secret-in-userinfo"
	err := run([]string{"-check-config", "-sources", exampleSources, "-schema-registry-url", "https://inlet:" + secret + "@sr.internal:8081"}, io.Discard)
	for _, want := range []string{"https://sr.internal:8081", "-schema-registry-user", "INLET_SCHEMA_REGISTRY_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want an error naming %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("%v shows the password", err)
	}
}

// TestStartRedisAuthRefused: Redis refusing the processor's password fails
// the start at once, naming the settings and not the password; it was
// logged as Redis unreachable and the processor started, to wait on Redis
// for good.
func TestStartRedisAuthRefused(t *testing.T) {
	const secret = "wrong-redis-s3cr3t"
	env := testenv.Embedded(t) // Kafka and the registry; its Redis is not used
	m := miniredis.RunT(t)
	m.RequireAuth("the-right-one")
	t.Setenv("REDIS_PASSWORD", "")
	t.Setenv("REDIS_PASSWORD_FILE", "")
	s := startProcessor(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", env.RegistryURL, "-redis-url", "redis://:"+secret+"@"+m.Addr()+"/0", "-admin-addr", servicetest.AnyPort)
	err := s.Stopped(t, 30*time.Second)
	for _, want := range []string{"WRONGPASS", "INLET_REDIS_URL", "REDIS_PASSWORD"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run: %v, want an error naming %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), secret) || strings.Contains(s.Log.String(), secret) {
		t.Errorf("the password is shown: %v\n%s", err, s.Log)
	}
	if s.Line("processor running") != nil {
		t.Errorf("the processor ran on refused credentials:\n%s", s.Log)
	}
}

// TestSIGTERMWithKafkaHungEndsInBound guards the stop's bound: SIGTERM
// while the broker answers nothing ends the processor within
// -batch-deadline + -drain-timeout + 5 s, what docs/run-on-real-kafka.md
// tells the orchestrator to allow (it took 31 s here, 83 s with defaults).
func TestSIGTERMWithKafkaHungEndsInBound(t *testing.T) {
	env := testenv.Embedded(t) // for the registry and Redis
	k := servicetest.NewHungKafka(t)
	s := startProcessor(t, "-kafka-brokers", k.Addr(), "-topic-prefix", env.Prefix, "-group", env.Prefix+"-g",
		"-schema-registry-url", env.RegistryURL, "-redis-url", env.RedisURL, "-admin-addr", servicetest.AnyPort,
		"-batch-deadline", "1s", "-drain-timeout", "1s", "-claim-lease", "10s")
	s.Await(t, "processor running")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	s.Until(t, "the group stable with its workers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := adm.DescribeGroups(ctx, env.Prefix+"-g")
		g := gs[env.Prefix+"-g"]
		return err == nil && g.State == "Stable" && len(g.Members) == 2
	})
	cl.Close()
	k.Freeze()
	start := time.Now()
	servicetest.SIGTERM(t)
	const bound = 1*time.Second + 1*time.Second + 5*time.Second
	err = s.Stopped(t, bound+25*time.Second)
	if took := time.Since(start); took > bound {
		t.Errorf("stopped %v after SIGTERM (%v), want within %v (-batch-deadline + -drain-timeout + 5 s)", took.Round(100*time.Millisecond), err, bound)
	}
}
