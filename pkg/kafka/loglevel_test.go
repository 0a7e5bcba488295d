package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestOutage: errors of a broker away or a coordinator moving, as Go's
// net package and franz-go make them, are outages; any other, and any
// holding another Kafka error code, is not.
func TestOutage(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 39199},
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused, as the client wraps it", fmt.Errorf("unable to dial: %w", refused), true},
		{"dial timed out", dialTimeout(t), true},
		{"read timed out", readTimeout(t), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, true},
		{"EOF", io.EOF, true},
		{"EOF mid-response", io.ErrUnexpectedEOF, true},
		{"NOT_COORDINATOR", kerr.NotCoordinator, true},
		{"COORDINATOR_NOT_AVAILABLE", kerr.CoordinatorNotAvailable, true},
		{"COORDINATOR_LOAD_IN_PROGRESS with the broker's message", fmt.Errorf("%w: loading", kerr.CoordinatorLoadInProgress), true},

		{"an unclassified error", errors.New("something else broke"), false},
		{"GROUP_AUTHORIZATION_FAILED", kerr.GroupAuthorizationFailed, false},
		{"TRANSACTIONAL_ID_AUTHORIZATION_FAILED", kerr.TransactionalIDAuthorizationFailed, false},
		{"FENCED_INSTANCE_ID", kerr.FencedInstanceID, false},
		{"UNKNOWN_MEMBER_ID", kerr.UnknownMemberID, false},
		{"UNKNOWN_SERVER_ERROR", kerr.UnknownServerError, false},
		{"a coordinator moved next to an authorization failure", fmt.Errorf("unable to commit transaction offsets: %w",
			errors.Join(kerr.NotCoordinator, kerr.GroupAuthorizationFailed)), false},
		{"a reset connection next to an authorization failure", errors.Join(io.EOF, kerr.TopicAuthorizationFailed), false},
		{"host not found", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "kafka-0", IsNotFound: true}}, false},
		{"dial not permitted", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "socket", Err: syscall.EACCES}}, false},
		{"client closed", kgo.ErrClientClosed, false},
		{"canceled", context.Canceled, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := outage(c.err); got != c.want {
				t.Errorf("outage(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

// dialTimeout is the error of a real dial whose deadline passed.
func dialTimeout(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:39199")
	if err == nil {
		conn.Close()
		t.Fatal("dialled past the deadline")
	}
	return err
}

// readTimeout is the error of a real read whose deadline passed.
func readTimeout(t *testing.T) error {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := a.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := a.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read past the deadline")
	}
	return err
}

// TestDemoteOutages: an error-level record whose errors are all outages
// passes at warn with its message, time and attributes; every other
// record passes as it came.
func TestDemoteOutages(t *testing.T) {
	var got []slog.Record
	log := slog.New(demoteOutages{recorded{&got}})
	last := func(t *testing.T) slog.Record {
		t.Helper()
		if len(got) != 1 {
			t.Fatalf("%d records passed, want 1", len(got))
		}
		r := got[0]
		got = got[:0]
		return r
	}
	manageErrored := func(level slog.Level, err any) {
		log.Log(context.Background(), level, "group manage loop errored",
			"group", "inlet-processor", "err", err, "consecutive_errors", 3, "backoff", 2*time.Second)
	}

	t.Run("outages come at warn with their attributes", func(t *testing.T) {
		refused := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp",
			Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
		for _, err := range []error{refused, io.EOF, kerr.CoordinatorNotAvailable} {
			manageErrored(slog.LevelError, err)
			r := last(t)
			if r.Level != slog.LevelWarn || r.Message != "group manage loop errored" || r.Time.IsZero() {
				t.Errorf("%v: %v %q at %v, want WARN with the message and time", err, r.Level, r.Message, r.Time)
			}
			if a := attrsOf(r); a != fmt.Sprintf("group=inlet-processor err=%v consecutive_errors=3 backoff=2s", err) {
				t.Errorf("%v: attributes %s", err, a)
			}
		}
	})
	t.Run("other errors stay errors", func(t *testing.T) {
		for _, err := range []any{errors.New("something else broke"), kerr.FencedInstanceID, "connection refused", nil} {
			manageErrored(slog.LevelError, err)
			if r := last(t); r.Level != slog.LevelError {
				t.Errorf("%v came at %v, want ERROR", err, r.Level)
			}
		}
		log.Error("fetch offsets: stale member epoch after 10 retries, giving up", "group", "g")
		if r := last(t); r.Level != slog.LevelError {
			t.Errorf("an error without an error attribute came at %v", r.Level)
		}
		log.Error("two errors", "err", io.EOF, "response_error", kerr.GroupAuthorizationFailed)
		if r := last(t); r.Level != slog.LevelError {
			t.Errorf("an outage next to another error came at %v, want ERROR", r.Level)
		}
	})
	t.Run("the commit's partition error counts too", func(t *testing.T) {
		log.Error("in default commit: unable to commit offsets for topic partition", "topic", "t", "partition", 0, "error", kerr.NotCoordinator)
		if r := last(t); r.Level != slog.LevelWarn {
			t.Errorf("came at %v, want WARN", r.Level)
		}
	})
	t.Run("other levels pass untouched", func(t *testing.T) {
		for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError + 4} {
			manageErrored(level, io.EOF)
			if r := last(t); r.Level != level || attrsOf(r) != "group=inlet-processor err=EOF consecutive_errors=3 backoff=2s" {
				t.Errorf("%v came at %v with %s", level, r.Level, attrsOf(r))
			}
		}
	})
	t.Run("a demoted record is dropped where warnings are off", func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(demoteOutages{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})}).With("component", "kafka")
		log.Error("group manage loop errored", "err", io.EOF)
		log.Error("group manage loop errored", "err", kerr.GroupAuthorizationFailed)
		if out := buf.String(); strings.Contains(out, "EOF") || !strings.Contains(out, "level=ERROR") ||
			!strings.Contains(out, "component=kafka") {
			t.Errorf("want only the authorization error, with its component:\n%s", out)
		}
	})
}

// attrsOf is r's attributes as key=value, space separated.
func attrsOf(r slog.Record) string {
	var as []string
	r.Attrs(func(a slog.Attr) bool {
		as = append(as, a.String())
		return true
	})
	return strings.Join(as, " ")
}

// TestClientOptsDemotesOutages: through the client's logger, a group
// error repeated while the broker is away comes once, at warn; an
// authorization failure comes every time, at error.
func TestClientOptsDemotesOutages(t *testing.T) {
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "")
	t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
	var buf bytes.Buffer
	log := clientLogger(t, Config{Brokers: []string{"127.0.0.1:39199"}}, &buf)
	refused := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
	for range 13 {
		log.Log(kgo.LogLevelError, "group manage loop errored", "group", "g", "err", refused)
	}
	for range 2 {
		log.Log(kgo.LogLevelError, "group manage loop errored", "group", "g", "err", kerr.GroupAuthorizationFailed)
	}
	out := buf.String()
	if n := strings.Count(out, `level=WARN msg="group manage loop errored"`); n != 1 || strings.Count(out, "connection refused") != 1 {
		t.Errorf("the refused connection logged %d times at warn, want once:\n%s", n, out)
	}
	if n := strings.Count(out, `level=ERROR msg="group manage loop errored"`); n != 2 || strings.Count(out, "GROUP_AUTHORIZATION_FAILED") != 2 {
		t.Errorf("the authorization failure logged %d times at error, want every one (2):\n%s", n, out)
	}
}

// clientLogger is the logger of a client built from cfg's ClientOpts,
// writing to w; it is closed with t.
func clientLogger(t *testing.T, cfg Config, w io.Writer) kgo.Logger {
	t.Helper()
	opts, err := cfg.ClientOpts(slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl.OptValue(kgo.WithLogger).(kgo.Logger)
}

// TestGroupManageLoopLevels: franz-go's own "group manage loop errored"
// comes at warn when the group's only broker dies (kfake closed), at
// error when the broker refuses the group.
func TestGroupManageLoopLevels(t *testing.T) {
	t.Setenv("INLET_KAFKA_SASL_PASSWORD", "")
	t.Setenv("INLET_KAFKA_SASL_PASSWORD_FILE", "")
	const manage = `msg="group manage loop errored"`

	t.Run("broker away: warn", func(t *testing.T) {
		c := groupCluster(t)
		var out syncbuf.Buffer
		assigned := make(chan struct{}, 1)
		groupClient(t, c, &out, kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
		select {
		case <-assigned:
		case <-time.After(20 * time.Second):
			t.Fatalf("never joined the group:\n%s", out.String())
		}
		c.Close()
		logs := waitFor(t, &out, manage)
		if !strings.Contains(logs, "level=WARN "+manage) || strings.Contains(logs, "level=ERROR") {
			t.Errorf("want the group's errors at warn, and no error:\n%s", logs)
		}
	})
	t.Run("group refused: error", func(t *testing.T) {
		c := groupCluster(t)
		c.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			return resp, nil, true
		})
		var out syncbuf.Buffer
		groupClient(t, c, &out)
		logs := waitFor(t, &out, manage)
		if !strings.Contains(logs, "level=ERROR "+manage) || !strings.Contains(logs, "GROUP_AUTHORIZATION_FAILED") {
			t.Errorf("want the authorization failure at error:\n%s", logs)
		}
	})
}

// groupCluster is a one-broker kfake cluster on a free loopback port with
// topic "t", closed with t. (Closed, its port refuses the client's dials.)
func groupCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// groupClient consumes "t" of c in group "g", logging through ClientOpts
// to w, retrying a request for half a second; it is closed with t.
func groupClient(t *testing.T, c *kfake.Cluster, w io.Writer, opts ...kgo.Opt) {
	t.Helper()
	cfg := Config{Brokers: c.ListenAddrs(), ClientID: "loglevel-test"}
	base, err := cfg.ClientOpts(slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	opts = append(base, append(opts, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.RetryTimeout(500*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
}

// waitFor polls w until it holds s, up to 20 s, and returns what it holds.
func waitFor(t *testing.T, w *syncbuf.Buffer, s string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := w.String()
		if strings.Contains(out, s) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 20 s:\n%s", s, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
