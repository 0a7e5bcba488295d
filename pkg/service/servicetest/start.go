package servicetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// Started is a service's run in the background, its log (JSON) kept.
type Started struct {
	Log  *syncbuf.Buffer
	done chan error
	name string
}

// Start runs run (a service's run, writing its log to stderr) in the
// background. When t ends with it still running, it is stopped with
// SIGTERM, so that the next test's signal finds no leftover handler.
func Start(t *testing.T, name string, run func(stderr io.Writer) error) *Started {
	t.Helper()
	s := &Started{Log: &syncbuf.Buffer{}, done: make(chan error, 1), name: name}
	go func() { s.done <- run(s.Log) }()
	t.Cleanup(func() {
		select {
		case err := <-s.done:
			s.done <- err
		default:
			SIGTERM(t)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop", name)
			}
		}
	})
	return s
}

// Line is the first log record with message msg, or nil.
func (s *Started) Line(msg string) map[string]any {
	for _, l := range s.Log.Lines() {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// Await waits for the log record with message msg; it fails t if run
// ends first.
func (s *Started) Await(t *testing.T, msg string) map[string]any {
	t.Helper()
	var rec map[string]any
	s.Until(t, fmt.Sprintf("%q logged", msg), func() bool {
		rec = s.Line(msg)
		return rec != nil
	})
	return rec
}

// Until waits up to 30 s for cond (what names it in a failure); it fails t
// if run ends first.
func (s *Started) Until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("%s ended (%v) before %s; log:\n%s", s.name, err, what, s.Log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("not %s within 30s; log:\n%s", what, s.Log)
}

// ReadyWithin polls adminAddr's /readyz until it answers 200 and returns
// its body; it fails t after within.
func ReadyWithin(t *testing.T, adminAddr string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := Get(t, "http://"+adminAddr+"/readyz")
		if code == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s after %v", code, body, within)
		}
		time.Sleep(20 * time.Millisecond) // between polls of a deadline-bound wait
	}
}

// Stopped waits up to within for run's result.
func (s *Started) Stopped(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("%s still running after %v; log:\n%s", s.name, within, s.Log)
		return nil
	}
}

// Running fails t if run has ended.
func (s *Started) Running(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		t.Fatalf("%s ended: %v; log:\n%s", s.name, err, s.Log)
	default:
	}
}

// SIGTERM signals this process as an orchestrator stops a service; the
// service's run handles it (it must be running, past its signal setup).
func SIGTERM(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// AnyPort is the listen address to give a service under test: it binds a
// port of its own choosing, which no other process can take between the
// test choosing it and the service binding it (go test runs packages in
// parallel, each binding ports). Addr reads the port bound from the log.
const AnyPort = "127.0.0.1:0"

// Addr is the string field key of the log record with message msg (such
// as the address a service bound for AnyPort), waiting for the record.
func (s *Started) Addr(t *testing.T, msg, key string) string {
	t.Helper()
	addr, _ := s.Await(t, msg)[key].(string)
	if addr == "" {
		t.Fatalf("%q logged without %s; log:\n%s", msg, key, s.Log)
	}
	return addr
}

// ClosedAddr is a loopback address that refuses connections until t
// ends: its port is bound without listening, so no other process can
// take it and answer there (as one could at a FreeAddr).
func ClosedAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// FreeAddr is a loopback address nothing listens on (a port just freed).
// Another process may take it meanwhile: give services AnyPort, and use
// ClosedAddr for an address that must refuse.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var client = &http.Client{Timeout: 5 * time.Second}

// Get GETs u and returns the status and body.
func Get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Serves reports whether something answers HTTP at addr.
func Serves(addr string) bool {
	res, err := client.Get("http://" + addr + "/healthz")
	if err == nil {
		res.Body.Close()
	}
	return err == nil
}

// Outage is a schema registry in front of target that answers 503 to
// everything until End, as one restarting behind a load balancer does.
type Outage struct {
	*httptest.Server
	over     atomic.Bool
	attempts atomic.Int32 // envelope registrations tried while it lasted
}

// NewOutage starts an Outage in front of the registry at target.
func NewOutage(t *testing.T, target string) *Outage {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	o := &Outage{}
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

// Attempts is how many envelope registrations were tried during the
// outage.
func (o *Outage) Attempts() int { return int(o.attempts.Load()) }

// End ends the outage: requests reach the registry from now on.
func (o *Outage) End() { o.over.Store(true) }

// LateKafka is a Kafka broker address that exists before the broker: it
// listens from the start and closes every connection at once (a broker
// not up yet), until Start puts a kfake cluster behind the same listener.
// Nothing else can take the port meanwhile, so a test of a service
// waiting for Kafka is deterministic.
type LateKafka struct {
	ln    net.Listener
	mu    sync.Mutex
	up    chan net.Conn // nil until Start
	conns atomic.Int32  // connections closed before Start
}

// NewLateKafka listens on a loopback port; the listener and any cluster
// are closed when t ends.
func NewLateKafka(t *testing.T) *LateKafka {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &LateKafka{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				k.mu.Lock()
				if k.up != nil {
					close(k.up)
				}
				k.mu.Unlock()
				return
			}
			k.mu.Lock()
			up := k.up
			k.mu.Unlock()
			if up == nil {
				k.conns.Add(1)
				c.Close()
				continue
			}
			select {
			case up <- c:
			case <-time.After(5 * time.Second): // the cluster is closed
				c.Close()
			}
		}
	}()
	return k
}

// Addr is the broker address (host:port).
func (k *LateKafka) Addr() string { return k.ln.Addr().String() }

// Refused is how many connections were closed before Start.
func (k *LateKafka) Refused() int { return int(k.conns.Load()) }

// Start puts a one-broker kfake cluster with opts behind the listener.
func (k *LateKafka) Start(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	up := make(chan net.Conn)
	k.mu.Lock()
	k.up = up
	k.mu.Unlock()
	c, err := kfake.NewCluster(append(opts, kfake.NumBrokers(1), kfake.ListenFn(func(string, string) (net.Listener, error) {
		return &chanListener{conns: up, addr: k.ln.Addr()}, nil
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// chanListener hands out the connections LateKafka accepted.
type chanListener struct {
	conns  chan net.Conn
	addr   net.Addr
	closed atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	l.once.Do(func() { l.done = make(chan struct{}) })
	select {
	case c, ok := <-l.conns:
		if !ok {
			return nil, net.ErrClosed
		}
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { l.done = make(chan struct{}) })
	if l.closed.CompareAndSwap(false, true) {
		close(l.done)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// SASLRefusingKafka is a one-broker kfake cluster with SASL on that
// refuses every authentication as a real broker does: a SaslAuthenticate
// answer with SASL_AUTHENTICATION_FAILED (kfake itself closes the
// connection on bad credentials, which a client cannot tell from a broker
// going away).
func SASLRefusingKafka(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "inlet", "the-right-password"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	return c
}
