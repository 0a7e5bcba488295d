package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ControlEnv is the environment variable that allows fault tests to stop,
// kill and start the real Kafka broker and Redis server a Real Env runs
// against. make test-integration and .ci/run set it; nothing else should.
const ControlEnv = "INLET_SERVICES_CONTROL"

// Services stops and starts the real Kafka broker and redis-server behind a
// Real Env, through deploy/local/kafka/kafka.sh and deploy/local/redis/redis.sh,
// for fault tests. Get it with Env.Services.
//
// It exists only when it is safe to use: ControlEnv is "1", the Env points
// at one loopback broker and a loopback Redis, and both are processes those
// scripts started (their PID files and configuration name the same ports).
// A developer pointing INLET_KAFKA_BROKERS at a shared cluster never has it
// stopped: such tests skip.
//
// The broker keeps its data across stop, kill and start (kafka.sh keeps its
// data directory). Redis runs without persistence, so a Redis restart loses
// every key: dedup claims, done markers and entity state.
//
// Controlling the services affects every client of them: run the suite one
// package at a time (go test -p 1, as make test-integration does) and never
// from parallel tests.
type Services struct {
	root   string // repo root (where go.mod is)
	kafka  string // path of kafka.sh
	redis  string // path of redis.sh
	env    []string
	broker string // host:port
	rdb    string // host:port

	mu   sync.Mutex
	down map[string]bool // "kafka", "redis": stopped by a test, not started yet
}

// Services returns the controller of the services behind e, and skips t
// when e is not Real or its services may not be controlled (the skip says
// why).
func (e *Env) Services(t testing.TB) *Services {
	t.Helper()
	if !e.Real {
		t.Skip("fault test on real services: needs testenv.Real (INLET_KAFKA_BROKERS and INLET_REDIS_URL)")
	}
	if e.services == nil {
		t.Skipf("real Kafka/Redis are not controllable here, fault test skipped: %s", e.noControl)
	}
	return e.services
}

// Controllable reports whether Services would return a controller.
func (e *Env) Controllable() bool { return e.services != nil }

var (
	listenersRe  = regexp.MustCompile(`(?m)^listeners=(.*)$`)
	plaintextRe  = regexp.MustCompile(`PLAINTEXT://127\.0\.0\.1:([0-9]+)`)
	controllerRe = regexp.MustCompile(`CONTROLLER://127\.0\.0\.1:([0-9]+)`)
)

// controlFor decides whether the services at brokers and redisURL may be
// controlled, and how. It returns a nil *Services and the reason when not.
func controlFor(brokers []string, redisURL string) (*Services, string) {
	if os.Getenv(ControlEnv) != "1" {
		return nil, ControlEnv + " is not 1 (make test-integration sets it for services it started)"
	}
	if len(brokers) != 1 {
		return nil, fmt.Sprintf("INLET_KAFKA_BROKERS names %d brokers; only one local broker started by kafka.sh is controlled", len(brokers))
	}
	kport, err := loopbackPort(brokers[0])
	if err != nil {
		return nil, "INLET_KAFKA_BROKERS: " + err.Error()
	}
	u, err := url.Parse(redisURL)
	if err != nil || u.Port() == "" {
		return nil, fmt.Sprintf("INLET_REDIS_URL %q has no host:port", redisURL)
	}
	rport, err := loopbackPort(u.Host)
	if err != nil {
		return nil, "INLET_REDIS_URL: " + err.Error()
	}
	if p := os.Getenv("INLET_KAFKA_PORT"); p != "" && p != kport {
		return nil, fmt.Sprintf("INLET_KAFKA_PORT=%s but INLET_KAFKA_BROKERS uses port %s", p, kport)
	}
	if p := os.Getenv("INLET_REDIS_PORT"); p != "" && p != rport {
		return nil, fmt.Sprintf("INLET_REDIS_PORT=%s but INLET_REDIS_URL uses port %s", p, rport)
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err.Error()
	}
	s := &Services{
		root:   root,
		kafka:  filepath.Join(root, "deploy", "local", "kafka", "kafka.sh"),
		redis:  filepath.Join(root, "deploy", "local", "redis", "redis.sh"),
		broker: brokers[0],
		rdb:    u.Host,
		down:   map[string]bool{},
	}
	for _, f := range []string{s.kafka, s.redis} {
		if _, err := os.Stat(f); err != nil {
			return nil, err.Error()
		}
	}
	// The same directories the scripts resolve, made absolute against the
	// repo root (the scripts run there).
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	cache := abs(os.Getenv("INLET_CACHE_DIR"))
	if cache == "" {
		cache = filepath.Join(root, "deploy", "local", ".cache")
	}
	kdata := abs(os.Getenv("INLET_KAFKA_DATA"))
	if kdata == "" {
		kdata = filepath.Join(cache, "kafka-data")
	}
	rdir := abs(os.Getenv("INLET_REDIS_DIR"))
	if rdir == "" {
		rdir = filepath.Join(cache, "redis-"+rport)
	}

	// The broker: kafka.sh's config in kdata must listen on our port, and
	// its PID file must name a live kafka.Kafka process. Otherwise the
	// broker on that port is not the one kafka.sh would stop.
	conf, err := os.ReadFile(filepath.Join(kdata, "server.properties"))
	if err != nil {
		return nil, fmt.Sprintf("no kafka.sh broker config (set INLET_KAFKA_DATA to the data directory the broker was started with): %v", err)
	}
	ls := listenersRe.FindSubmatch(conf)
	if ls == nil {
		return nil, "kafka.sh config has no listeners line"
	}
	pm, cm := plaintextRe.FindSubmatch(ls[1]), controllerRe.FindSubmatch(ls[1])
	if pm == nil || cm == nil || string(pm[1]) != kport {
		return nil, fmt.Sprintf("the kafka.sh broker in %s listens on %q, not on port %s", kdata, ls[1], kport)
	}
	cport := string(cm[1])
	if p := os.Getenv("INLET_KAFKA_CONTROLLER_PORT"); p != "" && p != cport {
		return nil, fmt.Sprintf("INLET_KAFKA_CONTROLLER_PORT=%s but the broker in %s was started with controller port %s", p, kdata, cport)
	}
	if err := pidRuns(filepath.Join(kdata, "kafka.pid"), "kafka.Kafka"); err != nil {
		return nil, "kafka.sh broker: " + err.Error()
	}
	// Redis: redis.sh's PID file must name a live redis-server on our port.
	if err := pidRuns(filepath.Join(rdir, "redis.pid"), ":"+rport); err != nil {
		return nil, "redis.sh server: " + err.Error()
	}

	s.env = append(os.Environ(),
		"INLET_CACHE_DIR="+cache,
		"INLET_KAFKA_PORT="+kport,
		"INLET_KAFKA_CONTROLLER_PORT="+cport,
		"INLET_KAFKA_DATA="+kdata,
		"INLET_REDIS_PORT="+rport,
		"INLET_REDIS_DIR="+rdir,
	)
	return s, ""
}

// loopbackPort returns the port of a 127.0.0.1 or localhost address.
func loopbackPort(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if host != "127.0.0.1" && host != "localhost" {
		return "", fmt.Errorf("%s is not on loopback; only services started by deploy/local are controlled", hostport)
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("bad port in %s", hostport)
	}
	return port, nil
}

// pidRuns checks that pidFile names a live process whose command line
// contains want.
func pidRuns(pidFile, want string) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("not started by the deploy/local script (no PID file): %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("bad PID file %s", pidFile)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("process %d from %s is not running: %w", pid, pidFile, err)
	}
	if !bytes.Contains(cmdline, []byte(want)) {
		return fmt.Errorf("process %d from %s is not the expected service (%q not in its command line)", pid, pidFile, want)
	}
	return nil
}

// repoRoot walks up from the working directory to the go.mod of this
// module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			ours := false
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "module github.com/inletdev/inlet" {
					ours = true
					break
				}
			}
			f.Close()
			if ours {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/inletdev/inlet above the working directory")
		}
		dir = parent
	}
}

// Broker is the address of the controlled broker.
func (s *Services) Broker() string { return s.broker }

// StopKafka stops the broker gracefully (SIGTERM, controlled shutdown) and
// returns once the process is gone. The broker is started again when t ends
// if the test has not done so.
func (s *Services) StopKafka(t testing.TB) time.Duration {
	t.Helper()
	return s.down1(t, "kafka", s.kafka, "stop")
}

// KillKafka SIGKILLs the broker. Starting it again takes longer (~15 s: the
// controller waits for the dead incarnation's session to expire).
func (s *Services) KillKafka(t testing.TB) time.Duration {
	t.Helper()
	return s.down1(t, "kafka", s.kafka, "kill")
}

// StartKafka starts the broker on its data directory and returns once it
// answers metadata requests with itself as a live broker.
func (s *Services) StartKafka(t testing.TB) time.Duration {
	t.Helper()
	return s.up1(t, "kafka", s.kafka)
}

// StopRedis stops redis-server (SIGTERM). Every key is lost: Redis runs
// without persistence.
func (s *Services) StopRedis(t testing.TB) time.Duration {
	t.Helper()
	return s.down1(t, "redis", s.redis, "stop")
}

// KillRedis SIGKILLs redis-server.
func (s *Services) KillRedis(t testing.TB) time.Duration {
	t.Helper()
	return s.down1(t, "redis", s.redis, "kill")
}

// StartRedis starts redis-server (empty) and returns once it answers PING.
func (s *Services) StartRedis(t testing.TB) time.Duration {
	t.Helper()
	return s.up1(t, "redis", s.redis)
}

func (s *Services) down1(t testing.TB, name, script, verb string) time.Duration {
	t.Helper()
	s.mu.Lock()
	first := !s.down[name]
	s.down[name] = true
	s.mu.Unlock()
	if first {
		// Registered before stopping, so it runs even if the stop fails
		// half-way; it runs before the cleanups registered earlier (topic
		// deletion, client shutdown), which need the service.
		t.Cleanup(func() {
			s.mu.Lock()
			still := s.down[name]
			s.mu.Unlock()
			if !still {
				return
			}
			if _, err := s.run(script, "start", 3*time.Minute); err != nil {
				t.Errorf("cleanup: starting %s again: %v", name, err)
				return
			}
			s.mu.Lock()
			s.down[name] = false
			s.mu.Unlock()
			t.Logf("cleanup: %s started again", name)
		})
	}
	d, err := s.run(script, verb, time.Minute)
	if err != nil {
		t.Fatalf("%s %s: %v", name, verb, err)
	}
	t.Logf("%s %s took %v", name, verb, d.Round(time.Millisecond))
	return d
}

func (s *Services) up1(t testing.TB, name, script string) time.Duration {
	t.Helper()
	d, err := s.run(script, "start", 3*time.Minute)
	if err != nil {
		t.Fatalf("%s start: %v", name, err)
	}
	s.mu.Lock()
	s.down[name] = false
	s.mu.Unlock()
	t.Logf("%s start took %v", name, d.Round(time.Millisecond))
	return d
}

// run runs script verb from the repo root with the pinned environment.
func (s *Services) run(script, verb string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, verb)
	cmd.Dir = s.root
	cmd.Env = s.env
	// The daemonized redis-server and the nohup'd broker inherit no pipe
	// that would keep Wait blocked: the scripts redirect their output.
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w\n%s", filepath.Base(script), verb, err, out)
	}
	return d, nil
}
