package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
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

// outage is a schema registry in front of target that answers 503 to
// everything until it is ended, as one restarting behind a load balancer
// does.
type outage struct {
	*httptest.Server
	over     atomic.Bool
	attempts atomic.Int32 // envelope registrations tried while it lasted
}

func newOutage(t *testing.T, target string) *outage {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	o := &outage{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.over.Load() {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/versions") {
				o.attempts.Add(1)
			}
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error_code":50301,"message":"service unavailable"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

// freeAddr is a loopback address nothing listens on (a port just freed).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// started is a run of ingest in the background.
type started struct {
	log  *syncbuf.Buffer
	done chan error
}

func startIngest(t *testing.T, args ...string) *started {
	t.Helper()
	setSourceSecrets(t)
	s := &started{log: &syncbuf.Buffer{}, done: make(chan error, 1)}
	go func() {
		s.done <- run(append([]string{"-sources", exampleSources, "-log-format", "json"}, args...), s.log)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			// Still running (the test failed): stop it, so that the next
			// test's signal finds no leftover handler.
			sigterm(t)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				t.Error("ingest did not stop")
			}
		}
	})
	return s
}

// line is the first log record with message msg, or nil.
func (s *started) line(msg string) map[string]any {
	for _, l := range s.log.Lines() {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// await waits for the log record with message msg; it fails t if run
// ends first.
func (s *started) await(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if rec := s.line(msg); rec != nil {
			return rec
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("ingest ended (%v) before logging %q; log:\n%s", err, msg, s.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q logged within 30s; log:\n%s", msg, s.log)
	return nil
}

// stopped waits for run's result.
func (s *started) stopped(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("ingest still running %v after SIGTERM; log:\n%s", within, s.log)
		return nil
	}
}

// sigterm signals this process as an orchestrator stops ingest; run
// handles it (it must be running).
func sigterm(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

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
	reg := newOutage(t, env.RegistryURL)
	const password, urlSecret = "hunter2-registry-password", "url-secret-in-userinfo"
	t.Setenv("INLET_SCHEMA_REGISTRY_USER", "ingest")
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD", password)
	regURL := strings.Replace(reg.URL, "http://", "http://someone:"+urlSecret+"@", 1)
	adminAddr, ingestAddr := freeAddr(t), freeAddr(t)
	subject := env.Prefix + ".raw-value"
	s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", regURL, "-admin-addr", adminAddr, "-ingest-addr", ingestAddr)

	warn := s.await(t, waitingWarning)
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
	for reg.attempts.Load() < 3 { // it keeps trying
		select {
		case err := <-s.done:
			t.Fatalf("ingest ended while the registry was down: %v; log:\n%s", err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	reg.over.Store(true)

	up := s.await(t, "ingest listening")
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = get(t, "http://"+adminAddr+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the registry came back: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := postPing(t, "http://"+ingestAddr); code/100 != 2 {
		t.Errorf("a webhook after the registry came back: %d %s, want 2xx", code, body)
	}
	for _, secret := range []string{password, urlSecret} {
		if strings.Contains(s.log.String(), secret) {
			t.Errorf("the log shows a credential (%s):\n%s", secret, s.log)
		}
	}
	sigterm(t)
	if err := s.stopped(t, 30*time.Second); err != nil {
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
// ends it cleanly (run returns nil: exit 0), at once. A password written
// into the registry URL stays out of the log, although the registry
// client's errors quote the URL.
func TestStopWhileWaitingForRegistry(t *testing.T) {
	env := testenv.Embedded(t)
	const secret = "url-secret-in-userinfo"
	closed := freeAddr(t) // nothing listens there
	adminAddr := freeAddr(t)
	s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
		"-schema-registry-url", "http://someone:"+secret+"@"+closed, "-admin-addr", adminAddr, "-ingest-addr", freeAddr(t))
	warn := s.await(t, waitingWarning)
	if msg, _ := warn["error"].(string); warn["schema_registry"] != "http://"+closed || !strings.Contains(msg, "connection refused") {
		t.Errorf("warning %v: want schema_registry http://%s and the connection refused", warn, closed)
	}
	if code, body := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while waiting: %d %s, want 503", code, body)
	}
	if strings.Contains(s.log.String(), secret) {
		t.Errorf("the log shows the password in the registry URL:\n%s", s.log)
	}
	sigterm(t)
	if err := s.stopped(t, 5*time.Second); err != nil {
		t.Errorf("run after SIGTERM while waiting: %v, want nil (exit 0)", err)
	}
	if s.line("ingest listening") != nil {
		t.Errorf("ingest listened without the registry:\n%s", s.log)
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
			const secret = "url-secret-in-userinfo"
			s := startIngest(t, "-kafka-brokers", strings.Join(env.Brokers, ","), "-topic-prefix", env.Prefix,
				"-schema-registry-url", strings.Replace(reg.URL, "http://", "http://someone:"+secret+"@", 1),
				"-admin-addr", freeAddr(t), "-ingest-addr", freeAddr(t))
			var err error
			select {
			case err = <-s.done:
				s.done <- err
			case <-time.After(20 * time.Second):
				t.Fatalf("ingest still starting 20s after the registry refused its credentials; log:\n%s", s.log)
			}
			for _, want := range []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_TOKEN", reg.URL, env.Prefix + ".raw-value"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("run: %v, want an error naming %s", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("run: %v: the error shows the password in the registry URL", err)
			}
			if s.line(waitingWarning) != nil {
				t.Errorf("ingest waited on refused credentials:\n%s", s.log)
			}
		})
	}
}
