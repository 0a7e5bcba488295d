package service

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAdminServerLimits: the admin listener is on the cluster network;
// with only a header timeout an idle keep-alive connection was held for
// good after one unauthenticated GET /healthz.
func TestAdminServerLimits(t *testing.T) {
	s := AdminServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v read %v write %v idle %v; want all set", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes >= http.DefaultMaxHeaderBytes {
		t.Errorf("MaxHeaderBytes %d: want set, below Go's 1 MiB default", s.MaxHeaderBytes)
	}
}

// TestRegistryCredentials: the registry client sends basic auth (user and
// password) or a bearer token, or nothing; a credential that would be
// ignored or sent empty is refused naming the settings, never a value.
// A password without a user and a token next to a user were ignored, and a
// user without a password sent an empty one.
func TestRegistryCredentials(t *testing.T) {
	var mu sync.Mutex
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	for _, c := range []struct {
		name, user, pass, token string
		want                    []string // in the error; none: the client is built
		auth                    string   // the Authorization scheme sent
	}{
		{name: "none"},
		{name: "basic", user: "inlet", pass: "pw-s3cr3t", auth: "Basic"},
		{name: "token", token: "tok-s3cr3t", auth: "Bearer"},
		{name: "user without password", user: "inlet", want: []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_PASSWORD"}},
		{name: "password without user", pass: "pw-s3cr3t", want: []string{"INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_USER"}},
		{name: "password and token without user", pass: "pw-s3cr3t", token: "tok-s3cr3t", want: []string{"INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_USER"}},
		{name: "user and token", user: "inlet", pass: "pw-s3cr3t", token: "tok-s3cr3t", want: []string{"INLET_SCHEMA_REGISTRY_USER", "INLET_SCHEMA_REGISTRY_TOKEN"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range map[string]string{"INLET_SCHEMA_REGISTRY_PASSWORD": c.pass, "INLET_SCHEMA_REGISTRY_TOKEN": c.token} {
				t.Setenv(k, v)
				t.Setenv(k+"_FILE", "")
			}
			rc := RegistryConfig{URLs: []string{srv.URL}, User: c.user}
			reg, err := rc.Client()
			if len(c.want) > 0 {
				if err == nil {
					t.Fatal("client built")
				}
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%v, want an error mentioning %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.SR().Subjects(t.Context()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if scheme, _, _ := strings.Cut(auth, " "); scheme != c.auth {
				t.Errorf("Authorization %q, want scheme %q", auth, c.auth)
			}
		})
	}
}

// Durations in JSON log lines are text, as in the text format: slog's JSON
// handler writes nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	c := LogConfig{Level: "info", Format: "json"}
	log, err := c.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.With("lease", time.Minute).Info("waiting", "retry_in", 30*time.Second, slog.Group("g", "d", 1500*time.Millisecond), "n", 3)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	g, _ := line["g"].(map[string]any)
	if line["retry_in"] != "30s" || line["lease"] != "1m0s" || g["d"] != "1.5s" || line["n"] != float64(3) {
		t.Errorf("line %s: want durations as text, other values as they are", buf.String())
	}
}

// TestLoggerNamesTheFlags: a log level or format not taken is refused
// naming the flag and the variable, and listing the values taken.
func TestLoggerNamesTheFlags(t *testing.T) {
	for _, c := range []struct {
		cfg  LogConfig
		want []string
	}{
		{LogConfig{Level: "loud", Format: "json"}, []string{"-log-level (INLET_LOG_LEVEL)", `"loud"`, "debug, info, warn or error"}},
		{LogConfig{Level: "info", Format: "yaml"}, []string{"-log-format (INLET_LOG_FORMAT)", `"yaml"`, "json or text"}},
	} {
		_, err := c.cfg.Logger(&bytes.Buffer{})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v, want an error mentioning %q", c.cfg, err, w)
			}
		}
	}
	for _, lvl := range []string{"debug", "INFO", "warn", "error", "info+2"} {
		if _, err := (&LogConfig{Level: lvl, Format: "text"}).Logger(&bytes.Buffer{}); err != nil {
			t.Errorf("level %q: %v", lvl, err)
		}
	}
}

// TestRegistryURLScheme: a registry URL that is not http(s) with a host
// (ftp://x, or localhost:8081 without a scheme, which parses as scheme
// "localhost") is refused when the client is built, naming the flag; it
// used to be retried at start as if the registry were down. Credentials
// in such a URL are not shown.
func TestRegistryURLScheme(t *testing.T) {
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD_FILE", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_TOKEN", "")
	t.Setenv("INLET_SCHEMA_REGISTRY_TOKEN_FILE", "")
	const secret = "pw-s3cr3t"
	for _, c := range []struct {
		urls []string
		want []string
	}{
		{[]string{"ftp://x"}, []string{"ftp://x", `scheme "ftp"`}},
		{[]string{"localhost:8081"}, []string{"http:// missing"}},
		{[]string{"sr.internal"}, []string{"http:// missing"}},
		{[]string{"http://"}, []string{"no host"}},
		{[]string{"http://sr-a:8081", "sr-b:8081"}, []string{"#2"}},
		{[]string{"inlet:" + secret + "@sr.internal:8081"}, []string{"not shown"}},
		{[]string{"ftp://inlet:" + secret + "@sr.internal:8081"}, []string{"ftp://sr.internal:8081"}},
	} {
		_, err := (&RegistryConfig{URLs: c.urls}).Client()
		if err == nil {
			t.Errorf("%v: client built", c.urls)
			continue
		}
		for _, w := range append(c.want, "-schema-registry-url (INLET_SCHEMA_REGISTRY_URL)", "http://") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want an error mentioning %q", c.urls, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "inlet") {
			t.Errorf("%v: the error shows a credential: %v", c.urls, err)
		}
	}
	// A port out of range: retried at start as if the registry were down.
	for _, urls := range [][]string{{"http://sr:99999"}, {"http://sr-a:8081", "https://sr-b:0"}} {
		_, err := (&RegistryConfig{URLs: urls}).Client()
		if err == nil || !strings.Contains(err.Error(), "-schema-registry-url (INLET_SCHEMA_REGISTRY_URL)") || !strings.Contains(err.Error(), "1 to 65535") {
			t.Errorf("%v: %v, want refused naming the flag and the port range", urls, err)
		}
	}
	for _, urls := range [][]string{{"http://127.0.0.1:8081"}, {"https://sr.example.com/api/sr", "HTTP://sr-b:8081"}, {"http://sr:65535"}} {
		if _, err := (&RegistryConfig{URLs: urls}).Client(); err != nil {
			t.Errorf("%v: %v", urls, err)
		}
	}
}

// TestRegistryURLQueryNotQuoted: a token in the schema registry URL's
// query or fragment was quoted whole by every registry error (the start's
// "schema registry unavailable" warning, runtime errors, inletctl schemas
// check). Such a URL is refused, without quoting it.
func TestRegistryURLQueryNotQuoted(t *testing.T) {
	for _, k := range []string{"INLET_SCHEMA_REGISTRY_PASSWORD", "INLET_SCHEMA_REGISTRY_PASSWORD_FILE", "INLET_SCHEMA_REGISTRY_TOKEN", "INLET_SCHEMA_REGISTRY_TOKEN_FILE"} {
		t.Setenv(k, "")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused: the registry is down
	for _, u := range []string{
		"http://" + addr + "/?api_key=CANARY-srquery-7f3a",
		"http://" + addr + "/#CANARY-srfragment-7f3a",
	} {
		c, err := (&RegistryConfig{URLs: []string{u}}).Client()
		if err != nil {
			if strings.Contains(err.Error(), "CANARY") {
				t.Errorf("%s refused quoting its secret: %v", u, err)
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err = c.Register(ctx, "s-value", `"string"`)
		cancel()
		if err == nil || strings.Contains(err.Error(), "CANARY") {
			t.Errorf("registry down at %s: %v, want an error that does not quote the query or fragment", u, err)
		}
	}
}
