package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestHelp: -h and -help print the usage and end run without an error,
// so ingest exits 0, not 1 with "flag: help requested".
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out bytes.Buffer
		if err := run([]string{arg}, &out); err != nil {
			t.Errorf("%s: %v, want nil (exit 0)", arg, err)
		}
		for _, want := range []string{"-kafka-brokers", "-schema-registry-url", "-admin-addr"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: the usage lacks %s:\n%s", arg, want, out.String())
			}
		}
	}
}

func startIngest(t *testing.T, args ...string) *servicetest.Started {
	t.Helper()
	setSourceSecrets(t)
	return servicetest.Start(t, "ingest", func(stderr io.Writer) error {
		return run(append([]string{"-sources", exampleSources, "-log-format", "json"}, args...), stderr)
	})
}

var (
	freeAddr = servicetest.FreeAddr
	get      = servicetest.Get
	sigterm  = servicetest.SIGTERM
	client   = &http.Client{Timeout: 5 * time.Second}
)

const waitingWarning = "schema registry unavailable: waiting for it before accepting webhooks (/readyz answers 503 meanwhile)"

// TestStartWaitsForRegistry: a registry that answers 503 at start makes
// ingest wait, not exit: a WARN names the registry and what ingest needs
// from it, the admin listener answers /healthz 200 and /readyz 503 saying
// so, and the ingest listener is closed (no webhook answered that could
// not be written). Once the registry answers, ingest registers the
// envelope, logs where it listens (admin address, registry, brokers; no
// credential), and takes webhooks.
func TestStartWaitsForRegistry(t *testing.T) {
	env := testenv.Embedded(t)
	reg := servicetest.NewOutage(t, env.RegistryURL)
	const password = "hunter2-registry-password"
	t.Setenv("INLET_SCHEMA_REGISTRY_USER", "ingest")
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD", password)
	regURL := reg.URL
	// The ingest address is chosen here, to check nothing listens there
	// during the wait: ingest does not hold it meanwhile.
	ingestAddr := freeAddr(t)
	subject := env.Prefix + ".raw-value"
	s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", regURL, "-admin-addr", servicetest.AnyPort, "-ingest-addr", ingestAddr)
	adminAddr := s.Addr(t, "ingest starting", "admin")
	warn := s.Await(t, waitingWarning)
	if warn["level"] != "WARN" || warn["schema_registry"] != reg.URL || !strings.Contains(warn["needs"].(string), subject) {
		t.Errorf("warning %v: want a WARN with schema_registry %s and needs naming %s", warn, reg.URL, subject)
	}
	if code, body := get(t, "http://"+adminAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %s, want 200", code, body)
	}
	code, body := get(t, "http://"+adminAddr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "schema registry") || !strings.Contains(body, subject) || !strings.Contains(body, reg.URL) {
		t.Errorf("/readyz while waiting: %d %s, want 503 saying it waits on the registry %s for %s", code, body, reg.URL, subject)
	}
	if c, err := net.DialTimeout("tcp", ingestAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the ingest listener %s accepts connections while the envelope schema cannot be registered", ingestAddr)
	}
	s.Until(t, "3 registrations tried", func() bool { return reg.Attempts() >= 3 }) // it keeps trying
	reg.End()

	up := s.Await(t, "ingest listening")
	want := map[string]any{"addr": ingestAddr, "admin": adminAddr, "schema_registry": reg.URL}
	for k, v := range want {
		if up[k] != v {
			t.Errorf("start line %s = %v, want %v", k, up[k], v)
		}
	}
	var brokers []string
	listed, _ := up["kafka_brokers"].([]any)
	for _, b := range listed {
		name, _ := b.(string)
		brokers = append(brokers, name)
	}
	if !slices.Equal(brokers, env.Brokers) {
		t.Errorf("start line kafka_brokers = %v, want %v", up["kafka_brokers"], env.Brokers)
	}
	servicetest.ReadyWithin(t, adminAddr, 20*time.Second)
	if code, body := postPing(t, "http://"+ingestAddr); code/100 != 2 {
		t.Errorf("a webhook after the registry came back: %d %s, want 2xx", code, body)
	}
	if strings.Contains(s.Log.String(), password) {
		t.Errorf("the log shows the registry password:\n%s", s.Log)
	}
	sigterm(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
}

// postPing sends GitHub's ping, signed with setSourceSecrets' secret.
func postPing(t *testing.T, base string) (int, string) {
	t.Helper()
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	mac := hmac.New(sha256.New, []byte("test"))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestStopWhileWaitingForRegistry: a registry that cannot be reached at
// all (connection refused) makes ingest wait too, and SIGTERM meanwhile
// ends it cleanly (run returns nil: exit 0), at once.
func TestStopWhileWaitingForRegistry(t *testing.T) {
	env := testenv.Embedded(t)
	closed := servicetest.ClosedAddr(t) // nothing listens there
	s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", "http://"+closed, "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort)
	adminAddr := s.Addr(t, "ingest starting", "admin")
	warn := s.Await(t, waitingWarning)
	if msg, _ := warn["error"].(string); warn["schema_registry"] != "http://"+closed || !strings.Contains(msg, "connection refused") {
		t.Errorf("warning %v: want schema_registry http://%s and the connection refused", warn, closed)
	}
	if code, body := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while waiting: %d %s, want 503", code, body)
	}
	sigterm(t)
	if err := s.Stopped(t, 5*time.Second); err != nil {
		t.Errorf("run after SIGTERM while waiting: %v, want nil (exit 0)", err)
	}
	if s.Line("ingest listening") != nil {
		t.Errorf("ingest listened without the registry:\n%s", s.Log)
	}
	if _, err := client.Get("http://" + adminAddr + "/healthz"); err == nil {
		t.Error("the admin listener still serves after run returned")
	}
}

// TestStartRefusedCredentials: a registry refusing ingest's credentials
// (401, 403) fails the start at once, naming the settings to fix: waiting
// would not mend them.
func TestStartRefusedCredentials(t *testing.T) {
	env := testenv.Embedded(t)
	for _, c := range []struct {
		status int
		body   string
	}{
		{http.StatusUnauthorized, `{"error_code":40101,"message":"Unauthorized"}`},
		{http.StatusForbidden, `{"error_code":40301,"message":"User is denied operation Write on Subject"}`},
	} {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			defer reg.Close()
			s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
				"-schema-registry-url", reg.URL, "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort)
			err := s.Stopped(t, 20*time.Second)
			for _, want := range []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_TOKEN", reg.URL, env.Prefix + ".raw-value"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("run: %v, want an error naming %s", err, want)
				}
			}
			if s.Line(waitingWarning) != nil {
				t.Errorf("ingest waited on refused credentials:\n%s", s.Log)
			}
		})
	}
}

const kafkaWarning = "kafka unavailable: waiting for it before accepting webhooks (/readyz answers 503 meanwhile)"

// TestStartWaitsForKafka: Kafka that cannot be reached at start (its
// broker not up yet) makes ingest wait, not exit: a WARN names the
// brokers, the admin listener answers /healthz 200 and /readyz 503 saying
// it waits on Kafka, the ingest listener is closed. Once the broker is up,
// ingest creates the topics, registers the envelope and takes webhooks.
// Before, ingest exited at once ("create topic ...: unable to dial").
func TestStartWaitsForKafka(t *testing.T) {
	env := testenv.Embedded(t) // for the registry; its Kafka is not used
	kafka := servicetest.NewLateKafka(t)
	// The ingest address is chosen here, to check nothing listens there
	// during the wait: ingest does not hold it meanwhile.
	ingestAddr := freeAddr(t)
	s := startIngest(t, "-kafka-brokers", kafka.Addr(), "-topic-prefix", env.Prefix,
		"-schema-registry-url", env.RegistryURL, "-admin-addr", servicetest.AnyPort, "-ingest-addr", ingestAddr)
	adminAddr := s.Addr(t, "ingest starting", "admin")
	warn := s.Await(t, kafkaWarning)
	if warn["level"] != "WARN" || warn["kafka_brokers"] != kafka.Addr() {
		t.Errorf("warning %v: want a WARN with kafka_brokers %s", warn, kafka.Addr())
	}
	if code, body := get(t, "http://"+adminAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %s, want 200", code, body)
	}
	if code, body := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "Kafka") || !strings.Contains(body, kafka.Addr()) {
		t.Errorf("/readyz while waiting: %d %s, want 503 saying it waits on Kafka %s", code, body, kafka.Addr())
	}
	if c, err := net.DialTimeout("tcp", ingestAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the ingest listener %s accepts connections while the topics cannot be created", ingestAddr)
	}
	kafka.Start(t)
	s.Await(t, "kafka reachable; topics ensured")
	s.Await(t, "ingest listening")
	if code, body := postPing(t, "http://"+ingestAddr); code/100 != 2 {
		t.Errorf("a webhook once Kafka is up: %d %s, want 2xx", code, body)
	}
	sigterm(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		t.Errorf("run after SIGTERM: %v, want nil", err)
	}
}

// TestStopWhileWaitingForKafka: SIGTERM while ingest waits for Kafka ends
// it cleanly (run returns nil: exit 0), at once, its admin listener closed.
func TestStopWhileWaitingForKafka(t *testing.T) {
	kafka := servicetest.NewLateKafka(t)
	s := startIngest(t, "-kafka-brokers", kafka.Addr(), "-schema-registry-url", "http://"+servicetest.ClosedAddr(t),
		"-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort)
	adminAddr := s.Addr(t, "ingest starting", "admin")
	s.Await(t, kafkaWarning)
	sigterm(t)
	if err := s.Stopped(t, 5*time.Second); err != nil {
		t.Errorf("run after SIGTERM while waiting for Kafka: %v, want nil (exit 0)", err)
	}
	if s.Line("ingest stopped while waiting for Kafka") == nil {
		t.Errorf("no line saying the wait ended:\n%s", s.Log)
	}
	if servicetest.Serves(adminAddr) {
		t.Error("the admin listener still serves after run returned")
	}
}

// TestStartKafkaAuthRefused: a broker refusing ingest's SASL credentials
// fails the start at once, naming the settings to fix, without waiting.
func TestStartKafkaAuthRefused(t *testing.T) {
	c := servicetest.SASLRefusingKafka(t)
	const wrong = "a-wrong-sasl-password"
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", wrong)
	s := startIngest(t, "-kafka-brokers", strings.Join(c.ListenAddrs(), ","), "-kafka-sasl-mechanism", "scram-sha-256", "-kafka-sasl-user", "inlet",
		"-schema-registry-url", "http://"+servicetest.ClosedAddr(t), "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort)
	err := s.Stopped(t, 20*time.Second)
	for _, want := range []string{"SASL", "INLET_KAFKA_SASL_PASSWORD", c.ListenAddrs()[0]} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run: %v, want an error naming %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), wrong) {
		t.Errorf("run: %v shows the password", err)
	}
	if s.Line(kafkaWarning) != nil {
		t.Errorf("ingest waited on refused credentials:\n%s", s.Log)
	}
}

// TestRegistryURLWithPassword: a schema registry URL with a user and
// password written into it is refused at start (and by -check-config),
// naming the settings to use instead and never the password. Before, it
// was used, and the registry client's errors quoted it.
func TestRegistryURLWithPassword(t *testing.T) {
	const secret = "url-secret-in-userinfo"
	for _, args := range [][]string{
		{"-check-config"},
		{"-kafka-brokers", servicetest.ClosedAddr(t), "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort},
	} {
		s := startIngest(t, append([]string{"-schema-registry-url", "http://someone:" + secret + "@" + servicetest.ClosedAddr(t)}, args...)...)
		err := s.Stopped(t, 20*time.Second)
		for _, want := range []string{"-schema-registry-user", "INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD_FILE"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %v, want an error naming %s", args, err, want)
			}
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%v: %v shows the password", args, err)
		}
	}
}

// TestSIGTERMWithKafkaHungEndsInBound guards the drain's bound: SIGTERM
// while the broker answers nothing ends ingest within -drain-timeout (and
// the 1-2 s the Kafka clients' close takes); the readiness probe's ping
// made it 9-13 s for 2 s.
func TestSIGTERMWithKafkaHungEndsInBound(t *testing.T) {
	env := testenv.Embedded(t) // for the registry
	k := servicetest.NewHungKafka(t)
	s := startIngest(t, "-kafka-brokers", k.Addr(), "-topic-prefix", env.Prefix,
		"-schema-registry-url", env.RegistryURL, "-ingest-addr", servicetest.AnyPort, "-admin-addr", servicetest.AnyPort,
		"-drain-timeout", "2s", "-ack-timeout", "1s")
	addr := s.Addr(t, "ingest listening", "addr")
	if code, body := postPing(t, "http://"+addr); code != 202 {
		t.Fatalf("before the broker hangs: %d %s", code, body)
	}
	k.Freeze()
	// Its record stays in the producer, which the drain's flush waits on.
	if code, body := postPing(t, "http://"+addr); code/100 == 2 {
		t.Errorf("with the broker hung: %d %s, want no 2xx", code, body)
	}
	s.Await(t, "not ready") // the readiness probe found the broker hung
	// Its next ping is sent: the probe waits on it as a client waits on a
	// broker that does not answer.
	held := k.Held()
	s.Until(t, "another request held by the broker", func() bool { return k.Held() > held })
	start := time.Now()
	sigterm(t)
	const bound = 2 * time.Second
	err := s.Stopped(t, bound+30*time.Second)
	if took := time.Since(start); took > bound+2500*time.Millisecond {
		t.Errorf("stopped %v after SIGTERM (%v), want within -drain-timeout %v", took.Round(100*time.Millisecond), err, bound)
	}
}

// metricValue is the value of the first sample of name on adminAddr's
// /metrics, or -1.
func metricValue(t *testing.T, adminAddr, name string) int64 {
	t.Helper()
	_, body := get(t, "http://"+adminAddr+"/metrics")
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name); ok && (rest[0] == '{' || rest[0] == ' ') {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %q", name, line)
			}
			return int64(v)
		}
	}
	return -1
}

// TestMaxConnsAdminUnaffected: with the webhook listener at -max-conns,
// a further webhook waits unserved while the admin listener's probes and
// metrics answer, the start line and the metrics say the limit, and
// SIGTERM still stops ingest.
func TestMaxConnsAdminUnaffected(t *testing.T) {
	env := testenv.Embedded(t)
	s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", env.RegistryURL, "-admin-addr", servicetest.AnyPort, "-ingest-addr", servicetest.AnyPort,
		"-max-conns", "2", "-read-header-timeout", "1m")
	up := s.Await(t, "ingest listening")
	adminAddr, ingestAddr := s.Addr(t, "ingest listening", "admin"), s.Addr(t, "ingest listening", "addr")
	if up["max_conns"] != float64(2) {
		t.Errorf("start line max_conns = %v, want 2", up["max_conns"])
	}
	servicetest.ReadyWithin(t, adminAddr, 20*time.Second)
	for range 2 { // senders that never finish their header block
		c, err := net.Dial("tcp", ingestAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /webhooks/github HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	s.Until(t, "2 open webhook connections", func() bool { return metricValue(t, adminAddr, "inlet_ingest_connections_open") == 2 })
	third, err := net.Dial("tcp", ingestAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if _, err := io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = third.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if resp, err := http.ReadResponse(bufio.NewReader(third), nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a third connection with -max-conns 2 was answered: %v %v", resp, err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, "http://"+adminAddr+path); code != http.StatusOK {
			t.Errorf("admin %s with the webhook listener full: %d %s", path, code, body)
		}
	}
	if n := metricValue(t, adminAddr, "inlet_ingest_connections_limit"); n != 2 {
		t.Errorf("inlet_ingest_connections_limit %d, want 2", n)
	}
	if n := metricValue(t, adminAddr, "inlet_ingest_connections_limit_reached_total"); n < 1 {
		t.Errorf("inlet_ingest_connections_limit_reached_total %d, want at least 1", n)
	}
	if s.Line("webhook connections at -max-conns (INLET_MAX_CONNS): new connections wait unserved until one closes; many slow or idle clients, or too few replicas for the load") == nil {
		t.Errorf("no warning for the limit reached:\n%s", s.Log)
	}
	sigterm(t)
	if err := s.Stopped(t, 30*time.Second); err != nil {
		t.Errorf("run after SIGTERM with the limit full: %v, want nil", err)
	}
}
