package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv/syncbuf"
)

// TestRegistryURLCredentials: a registry URL with a user (and password)
// written into it is refused, naming the settings that carry them, and
// never quoting the password; neither is an unparsable URL quoted.
func TestRegistryURLCredentials(t *testing.T) {
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD_FILE", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_TOKEN", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_TOKEN_FILE", "")
	const secret = "pw-s3cr3t"
	for _, urls := range [][]string{
		{"http://inlet:" + secret + "@sr.internal:8081"},
		{"http://sr-a:8081", "https://inlet:" + secret + "@sr-b:8081/?x=1"},
		{"http://" + secret + "@sr.internal:8081"}, // a user alone: as good as a password
		{"http://inlet:" + secret + "%zz@sr.internal:8081"},
		// A password holding / ends the host early; the port error quoted
		// its start.
		{"https://inlet:" + secret + "/tail@sr.internal:8081"},
		// One starting with digits parses as host "inlet:1234" and path
		// "/pw-s3cr3t@…": accepted, and shown whole in logs and /readyz.
		{"https://inlet:1234/" + secret + "@sr.internal:8081"},
	} {
		rc := RegistryConfig{URLs: urls}
		_, err := rc.Client()
		if err == nil {
			t.Errorf("%v: client built", urls)
			continue
		}
		want := []string{"-schema-registry-user", "INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_PASSWORD_FILE"}
		if last := urls[len(urls)-1]; strings.Contains(last, "%zz") || strings.Contains(last, "/tail@") {
			want = []string{"INLET_SCHEMA_REGISTRY_URL", "not shown"}
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want an error naming %s", urls, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%v: the error shows the password: %v", urls, err)
		}
	}
}

// TestShownURLs: URLs as logged lose user information, query and fragment.
func TestShownURLs(t *testing.T) {
	got := ShownURLs([]string{"https://u:p@sr:8081/a?token=t#f", "http://sr2:8081", "http://bad%zz", "u:p@sr:8081", "https://u:1234/pass@sr:8081"})
	if want := "https://sr:8081/a,http://sr2:8081,(unparsable URL, not shown),(not a URL like http://host:port, not shown),(a URL with @ in its path, not shown)"; got != want {
		t.Errorf("ShownURLs = %q, want %q", got, want)
	}
}

var quickWait = StartWait{First: 10 * time.Millisecond, Max: 50 * time.Millisecond, Attempt: 5 * time.Second, WarnEvery: time.Minute}

// TestAwaitTopicsNotAuthorized: a principal without CREATE fails the start
// at once when a topic is missing (waiting does not grant it), and starts
// when they all exist already.
func TestAwaitTopicsNotAuthorized(t *testing.T) {
	topics := kafka.TopicNames("inlet", kafka.DefaultRetryTiers)
	for _, exist := range []bool{false, true} {
		var opts []kfake.Opt
		if exist {
			for _, s := range topics.Specs() {
				opts = append(opts, kfake.SeedTopics(1, s.Name))
			}
		}
		c, err := kfake.NewCluster(append(opts, kfake.NumBrokers(1))...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
			for _, rt := range req.(*kmsg.CreateTopicsRequest).Topics {
				st := kmsg.NewCreateTopicsResponseTopic()
				st.Topic = rt.Topic
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
		kcfg := &kafka.Config{Brokers: c.ListenAddrs(), ClientID: "test", TopicPrefix: "inlet", Partitions: 1, ReplicationFactor: -1}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		err = quickWait.AwaitTopics(ctx, kcfg, topics, "testing", slog.New(slog.NewTextHandler(io.Discard, nil)))
		cancel()
		switch {
		case exist && err != nil:
			t.Errorf("topics exist, creation refused: %v, want them ensured", err)
		case !exist && (!errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), "not authorized")):
			t.Errorf("topics missing, creation refused: %v, want TOPIC_AUTHORIZATION_FAILED at once", err)
		case !exist && time.Since(start) > 5*time.Second:
			t.Errorf("refused after %v: it waited", time.Since(start))
		}
	}
}

// TestAwaitTopicsStops: the wait ends with ctx (SIGTERM), returning its
// error.
func TestAwaitTopicsStops(t *testing.T) {
	kcfg := &kafka.Config{Brokers: []string{"127.0.0.1:1"}, ClientID: "test", TopicPrefix: "inlet", Partitions: 1, ReplicationFactor: -1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- quickWait.AwaitTopics(ctx, kcfg, kafka.TopicNames("inlet", nil), "testing", slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("AwaitTopics after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AwaitTopics still waiting 10s after its context ended")
	}
}

// A wait warns at its first failure, again when the error changes, and
// otherwise at most once per WarnEvery: a different broker named in the
// same error ("last connection attempt") is not a new error.
func TestStartWaitWarnsOncePerError(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	w := StartWait{First: time.Millisecond, Max: time.Millisecond, Attempt: time.Second, WarnEvery: time.Hour}
	errs := []string{
		"unable to dial (last connection attempt: broker 127.0.0.1:1: refused)",
		"unable to dial (last connection attempt: broker 127.0.0.1:2: refused)",
		"unable to dial (last connection attempt: broker 127.0.0.1:3: refused)",
		"not authorized yet", // a new error: a new line
		"not authorized yet",
	}
	n := 0
	err := w.await(context.Background(), log, waitSpec{warn: "waiting", ready: "ready",
		try: func(context.Context) error {
			if n == len(errs) {
				return nil
			}
			n++
			return errors.New(errs[n-1])
		},
		refuse: func(error) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	warns := 0
	for _, l := range buf.Lines() {
		if strings.Contains(l, `"msg":"waiting"`) {
			warns++
		}
	}
	if warns != 2 {
		t.Errorf("%d warnings for 2 distinct errors over 5 tries, want 2:\n%s", warns, buf.String())
	}
}

// TestEnsureTopicsDurability: with -topic-replication 3 Inlet's topics are
// created with min.insync.replicas 2, and nothing is said; with the
// broker's default (-topic-min-insync-replicas -1, 1 on kfake as on
// Apache Kafka) the start warns, naming every such topic, since an
// acks=all write could be acknowledged by the leader alone.
func TestEnsureTopicsDurability(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, tt := range []struct {
		prefix string
		flag   int
		warn   bool
	}{{"auto", 0, false}, {"broker", -1, true}} {
		t.Run(tt.prefix, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			kcfg := &kafka.Config{Brokers: c.ListenAddrs(), ClientID: "t", TopicPrefix: tt.prefix, Partitions: 1, ReplicationFactor: 3, MinInsyncReplicas: tt.flag}
			topics := kafka.TopicNames(tt.prefix, kafka.DefaultRetryTiers)
			if err := EnsureTopics(t.Context(), kcfg, topics, log); err != nil {
				t.Fatal(err)
			}
			warned := strings.Contains(logs.String(), "min.insync.replicas below 2")
			if warned != tt.warn {
				t.Fatalf("warned %v, want %v:\n%s", warned, tt.warn, logs.String())
			}
			if tt.warn {
				for _, s := range topics.Specs() {
					if !strings.Contains(logs.String(), s.Name+" (replication 3, min.insync.replicas 1)") {
						t.Errorf("the warning does not name %s:\n%s", s.Name, logs.String())
					}
				}
			}
		})
	}
}
