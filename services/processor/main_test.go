package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/service/servicetest"
	"github.com/inletdev/inlet/pkg/telemetry"
)

// TestCheckConfig: --check-config reads every setting a start reads, so a
// configuration it passes gets a start past its configuration, and one it
// refuses is refused without the secrets it holds in the message.
func TestCheckConfig(t *testing.T) {
	if err := run([]string{"-check-config", "-sources", exampleSources}, io.Discard); err != nil {
		t.Fatalf("the example configuration: %v", err)
	}
	for _, c := range []struct {
		env, value, want string
	}{
		{"INLET_RETRY_TIERS", "bogus", "bogus"},
		{"INLET_HISTORY_RETENTION", "-1h", "history-retention"},
		{"INLET_REDIS_URL", "redis://:pa%zzss@redis:6379/0", "INLET_REDIS_URL"},
		{"INLET_ADMIN_TOKEN_FILE", "/nonexistent/token", "INLET_ADMIN_TOKEN"},
		{"INLET_ALERT_FORMAT", "slak", "alert-format"},
		{"INLET_ALERT_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/SECRET", "alert-webhook-url"},
		{"INLET_CLAIM_LEASE", "40s", "-claim-lease"},
		// A source's own tiers (30s, 2m, 15m) that the processor has no
		// topic for: refused only after the wait for Kafka, before.
		{"INLET_RETRY_TIERS", "45s", "INLET_RETRY_TIERS"},
		{"INLET_ADMIN_ADDR", "garbage", "-admin-addr (INLET_ADMIN_ADDR)"},
		// Settings refused without naming their flag, or not refused.
		{"INLET_RETRY_TIERS", ",", "-retry-tiers (INLET_RETRY_TIERS)"},
		{"INLET_RETRY_TIERS", "30s,30s,2m,15m", "-retry-tiers (INLET_RETRY_TIERS)"},
		{"INLET_RETRY_TIERS", "1ns,30s,2m,15m", "-retry-tiers (INLET_RETRY_TIERS)"},
		{"INLET_SCHEMA_REGISTRY_URL", "ftp://x", "-schema-registry-url (INLET_SCHEMA_REGISTRY_URL)"},
		{"INLET_SCHEMA_REGISTRY_URL", "localhost:8081", "-schema-registry-url (INLET_SCHEMA_REGISTRY_URL)"},
		{"INLET_PROCESSOR_WORKERS", "0", "-workers (INLET_PROCESSOR_WORKERS)"},
		{"INLET_TOPIC_PARTITIONS", "0", "-topic-partitions (INLET_TOPIC_PARTITIONS)"},
		{"INLET_LOG_LEVEL", "loud", "-log-level (INLET_LOG_LEVEL) \"loud\": want debug, info, warn or error"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			err := run([]string{"-check-config", "-sources", exampleSources}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%s=%s: %v, want an error mentioning %q", c.env, c.value, err, c.want)
			}
			for _, secret := range []string{"pa%zzss", "SECRET"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestMissingSourcesFile: a sources file that is not there is refused
// naming the flag, the variable and the path.
func TestMissingSourcesFile(t *testing.T) {
	path := t.TempDir() + "/sources.yaml"
	for _, args := range [][]string{{"-sources", path}, nil} {
		t.Setenv("INLET_SOURCES", path)
		err := run(append([]string{"-check-config"}, args...), io.Discard)
		for _, want := range []string{"-sources (INLET_SOURCES)", path} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v: %v, want an error naming %s", args, err, want)
			}
		}
	}
}

// TestExitMessageSaysProcessorOnce: the processor's last line says
// "processor: " once, for pkg/processor's errors too, which begin so
// ("processor: processor: -batch-size …"). main runs in a child
// process: it exits.
func TestExitMessageSaysProcessorOnce(t *testing.T) {
	if args := os.Getenv("INLET_TEST_PROCESSOR_MAIN"); args != "" {
		os.Args = append([]string{"processor"}, strings.Split(args, " ")...)
		main()
		os.Exit(0)
	}
	for _, c := range []struct{ args, want string }{
		{"-check-config -sources " + exampleSources + " -batch-size 0", "processor: -batch-size (INLET_PROCESSOR_BATCH) 0: want 1 or more\n"},
		{"-check-config -sources " + exampleSources + " -retry-tiers 45s", "processor: source \"stripe\" retries after 30s"},
		{"-check-config -sources " + exampleSources + " -history-retention -1h", "processor: -history-retention"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExitMessageSaysProcessorOnce$")
		cmd.Env = append(os.Environ(), "INLET_TEST_PROCESSOR_MAIN="+c.args)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%s: %v, want exit 1; stderr:\n%s", c.args, err, stderr.String())
		}
		if out := stderr.String(); !strings.HasPrefix(out, c.want) || strings.Contains(out, "processor: processor:") {
			t.Errorf("%s: stderr\n%s\nwant it to begin %q, saying \"processor:\" once", c.args, out, c.want)
		}
	}
}

// TestCheckConfigKafka: --check-config builds the Kafka and registry client
// options a start builds, so a SASL, TLS or password-file setting that
// cannot work fails the check, not the first connection.
func TestCheckConfigKafka(t *testing.T) {
	servicetest.CheckKafkaSettings(t, func() error {
		return run([]string{"-check-config", "-sources", exampleSources}, io.Discard)
	})
}

// exampleSources is the shipped sources file the checks read.
const exampleSources = "../../deploy/sources.example.yaml"

// TestReadyz: /readyz says what it covers and lists the waits in progress;
// an outage leaves it 200 (see readyz for why), draining makes it 503.
func TestReadyz(t *testing.T) {
	var draining atomic.Bool
	var waits []processor.Wait
	h := readyz(&draining, func() []processor.Wait { return waits })
	get := func() (int, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: %s", err, rec.Body.String())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		return rec.Code, body
	}
	code, body := get()
	if code != http.StatusOK || body["status"] != "ready" || !strings.Contains(fmt.Sprint(body["covers"]), "not draining") {
		t.Fatalf("%d %v, want 200 ready saying what it covers", code, body)
	}
	if w, ok := body["waiting_on"].([]any); !ok || len(w) != 0 {
		t.Fatalf("waiting_on %#v, want an empty list", body["waiting_on"])
	}
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	waits = []processor.Wait{{On: "redis", Since: since}}
	code, body = get()
	if w, _ := body["waiting_on"].([]any); code != http.StatusOK || len(w) != 1 || w[0] != "redis since 2026-03-01T12:00:00Z" {
		t.Fatalf("during an outage: %d %v, want 200 waiting on redis since 2026-03-01T12:00:00Z", code, body)
	}
	draining.Store(true)
	if code, body = get(); code != http.StatusServiceUnavailable || body["status"] != "draining" {
		t.Fatalf("draining: %d %v", code, body)
	}
}

// TestStartLine: the "processor running" line names the schema registry and
// the Redis target (host:port, database), and no credential: not the Redis
// password (in the URL or REDIS_PASSWORD), not a registry URL's user,
// password or query (such a URL is refused at start; the line would not
// show it either).
func TestStartLine(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "")
	for _, c := range []struct {
		url, envPassword string
		secrets          []string
	}{
		{"redis://:url-secret-pw@redis.internal:6380/3", "", []string{"url-secret-pw"}},
		{"rediss://inlet:url-secret-pw@redis.internal:6380/3", "env-secret-pw", []string{"url-secret-pw", "env-secret-pw"}},
	} {
		t.Run(c.url[:strings.Index(c.url, ":")], func(t *testing.T) {
			t.Setenv("REDIS_PASSWORD", c.envPassword)
			rc := service.RedisConfig{URL: c.url}
			ropt, err := rc.Parse()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			regs := []string{"https://sr-user:reg-secret-pw@sr.internal:8081/?token=reg-secret-token", "http://sr2.internal:8081"}
			log.Info("processor running", startAttrs("inlet-processor", "inlet.raw", "127.0.0.1:9091", regs, ropt)...)
			line := buf.String()
			for _, secret := range append(c.secrets, "reg-secret-pw", "reg-secret-token") {
				if strings.Contains(line, secret) {
					t.Fatalf("the start line shows %q: %s", secret, line)
				}
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"redis": "redis.internal:6380", "redis_db": float64(3), "redis_tls": strings.HasPrefix(c.url, "rediss:"),
				"schema_registry": "https://sr.internal:8081/,http://sr2.internal:8081",
				"group":           "inlet-processor", "raw_topic": "inlet.raw",
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v in %s", k, m[k], v, line)
				}
			}
		})
	}
}

// TestHelp: -h and -help print the usage and end run without an error, so
// the processor exits 0, not 1 with "flag: help requested".
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help"} {
		if err := run([]string{arg}, io.Discard); err != nil {
			t.Errorf("%s: %v, want nil (exit 0)", arg, err)
		}
	}
}

// TestHelpListsTheSecretVariables: -h names every variable a secret comes
// from, as the README says it lists them all.
func TestHelpListsTheSecretVariables(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	var stdout strings.Builder
	_ = run([]string{"-h"}, &stdout)
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	all := string(out) + stdout.String()
	for _, v := range []string{"INLET_ADMIN_TOKEN", "INLET_ADMIN_READ_TOKEN", "INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_TOKEN", "INLET_KAFKA_SASL_PASSWORD"} {
		if !strings.Contains(all, v) {
			t.Errorf("-h does not name %s", v)
		}
	}
}

// TestCheckConfigRefusesStrayArguments: "-kafka-tls true" (a bool flag
// takes no separate value) dropped every flag after it, here -workers 0,
// which is refused alone, and --check-config said ok. Alert limits below
// zero were taken as the defaults.
func TestCheckConfigRefusesStrayArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-workers", "0"}, "workers"},
		{[]string{"-kafka-tls", "true", "-workers", "0"}, `unexpected argument "true"`},
		{[]string{"-alert-max-per-minute", "-5"}, "-alert-max-per-minute"},
		{[]string{"-alert-window", "-1s"}, "-alert-window"},
	} {
		err := run(append([]string{"-check-config", "-sources", exampleSources}, c.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// TestHealthzIsJSON: the processor's /healthz answers JSON as its /readyz
// and ingest's /healthz do; it was sniffed as text/plain.
func TestHealthzIsJSON(t *testing.T) {
	tel, err := telemetry.New(context.Background(), "inlet-processor")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := admin.New(admin.Tokens{}, admin.Deps{})
	var draining atomic.Bool
	rec := httptest.NewRecorder()
	adminMux(&draining, func() []processor.Wait { return nil }, tel, api).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || body["status"] != "ok" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %s (%v), want 200 application/json {\"status\":\"ok\"}", rec.Code, rec.Header().Get("Content-Type"), rec.Body, err)
	}
}

// TestUncleanedAdminPathIsJSON: a /v1/ path with an empty, "." or ".."
// segment is the admin API's JSON 404 on the admin listener, before the
// start and after it, not ServeMux's 307 text/html to the cleaned path
// (which a script following it might resend as a GET).
func TestUncleanedAdminPathIsJSON(t *testing.T) {
	tel, err := telemetry.New(context.Background(), "inlet-processor")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := admin.New(admin.Tokens{Write: "w-token-0123456789"}, admin.Deps{Queues: nilQueues{}})
	probes := &service.StartProbes{}
	check := func(t *testing.T) {
		t.Helper()
		for _, p := range []string{"/v1//dlq", "/v1/dlq/./x", "/v1/dlq/a/../b", "//v1/depth", "/v1"} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(method, "http://admin"+p, strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer w-token-0123456789")
				earlyMux(tel, probes).ServeHTTP(rec, req)
				var body map[string]any
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if rec.Code != http.StatusNotFound || rec.Header().Get("Location") != "" || rec.Header().Get("Content-Type") != "application/json" || body["error"] == nil {
					t.Errorf("%s %s: %d Location %q %q %s, want the API's JSON 404", method, p, rec.Code, rec.Header().Get("Location"), rec.Header().Get("Content-Type"), rec.Body)
				}
			}
		}
	}
	t.Run("starting", check)
	var draining atomic.Bool
	probes.Serve(adminMux(&draining, func() []processor.Wait { return nil }, tel, api))
	t.Run("running", check)
}

// nilQueues has no entries.
type nilQueues struct{ admin.Queues }

// TestAdminListenerAnswers: the processor's admin listener answers as
// ingest's and the dev stack's do, while it starts and once it runs: what
// no route takes is JSON (a path with an empty, "." or ".." segment
// outside /v1 included, which net/http redirected 307 as text/html), a
// route asked with another method 405 (during the start DELETE /healthz
// answered 200 and POST /metrics 503), the scrape and probes as before.
func TestAdminListenerAnswers(t *testing.T) {
	tel, err := telemetry.New(context.Background(), "inlet-processor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	api, _ := admin.New(admin.Tokens{Write: "w-token-0123456789"}, admin.Deps{Queues: nilQueues{}})
	probes := &service.StartProbes{}
	probes.Waiting("waiting on Kafka")
	srv := httptest.NewServer(earlyMux(tel, probes))
	t.Cleanup(srv.Close)
	t.Run("starting", func(t *testing.T) {
		servicetest.AdminListenerAnswers(t, srv.URL)
		// The admin API's routes are not there yet: 503 saying why.
		if code, body := servicetest.Get(t, srv.URL+"/v1/depth"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not started yet") {
			t.Errorf("GET /v1/depth: %d %s, want 503 not started yet", code, body)
		}
	})
	var draining atomic.Bool
	probes.Serve(adminMux(&draining, func() []processor.Wait { return nil }, tel, api))
	t.Run("running", func(t *testing.T) { servicetest.AdminListenerAnswers(t, srv.URL) })
}
