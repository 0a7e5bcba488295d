package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/inletdev/inlet/pkg/admin"
	"github.com/inletdev/inlet/pkg/service"
)

// TestRedisOptions: a -redis-url is taken as the processor takes it, so
// REDIS_PASSWORD[_FILE] reaches the client; without one the embedded
// miniredis is used, and a REDIS_PASSWORD meant elsewhere does not.
func TestRedisOptions(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "from-env")
	t.Run("url", func(t *testing.T) {
		c := config{redis: service.RedisConfig{URL: "redis://127.0.0.1:6379/3"}}
		opt, err := c.redisOptions()
		if err != nil || opt == nil || opt.Server.Password != "from-env" || opt.DB() != 3 {
			t.Fatalf("options %+v, %v; want REDIS_PASSWORD and DB 3", opt, err)
		}
	})
	t.Run("password file", func(t *testing.T) {
		t.Setenv("REDIS_PASSWORD", "")
		t.Setenv("REDIS_PASSWORD_FILE", t.TempDir()+"/missing")
		c := config{redis: service.RedisConfig{URL: "redis://127.0.0.1:6379/0"}}
		if _, err := c.redisOptions(); err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD_FILE") {
			t.Fatalf("%v, want an unreadable REDIS_PASSWORD_FILE refused", err)
		}
	})
	t.Run("embedded", func(t *testing.T) {
		var c config
		if opt, err := c.redisOptions(); opt != nil || err != nil {
			t.Fatalf("options %+v, %v; want none (the embedded miniredis)", opt, err)
		}
	})
	// The banner's export line pasted in the shell that starts the stack
	// again: it names the embedded Redis, which was then taken for
	// another one, where nothing listened (events waited for Redis for
	// good, its snapshot was not restored).
	t.Run("the embedded one's own URL", func(t *testing.T) {
		for url, embedded := range map[string]bool{
			"redis://127.0.0.1:6390/0": true,
			"redis://localhost:6390/0": true,
			"redis://[::1]:6390":       true,
			"redis://127.0.0.1:6391/0": false,
			"redis://10.0.0.5:6390/0":  false,
		} {
			c := config{redisPort: 6390, redis: service.RedisConfig{URL: url}}
			opt, err := c.redisOptions()
			if err != nil || (opt == nil) != embedded || (c.redis.URL == "") != embedded {
				t.Errorf("%s: options %+v, URL now %q, %v; want embedded %v", url, opt, c.redis.URL, err, embedded)
			}
		}
	})
}

// TestBadRedisURL: a -redis-url that does not parse stops the start with
// an error naming the setting, never the password in it.
func TestBadRedisURL(t *testing.T) {
	for k, v := range devSecrets {
		t.Setenv(k, v) // run sets them otherwise, for the whole test process
	}
	t.Setenv(admin.EnvWriteToken, "test-token-0123456789")
	const secret = "s3cr3t%zzpass"
	err := run([]string{
		"-redis-url", "redis://:" + secret + "@127.0.0.1:6379/0",
		"-sources", "../../deploy/sources.example.yaml",
		"-data-dir", t.TempDir(), "-kafka-port", "0", "-registry-port", "0", "-redis-port", "0",
		"-ingest-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-level", "error",
	})
	if err == nil || !strings.Contains(err.Error(), "INLET_REDIS_URL") {
		t.Fatalf("%v, want an error naming INLET_REDIS_URL", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

// TestProcessorFlags: the embedded processor's settings are flags of the
// dev command, listed by -h, and read as the processor reads them: a
// malformed variable is refused naming it, and settings that cannot work
// are refused, before anything starts. They used to come from a flag set
// never parsed: errors were dropped, and the value left at zero.
func TestProcessorFlags(t *testing.T) {
	// A start that got past the settings stops at the sources file.
	missing := []string{"-sources", t.TempDir() + "/no-sources.yaml", "-data-dir", t.TempDir()}
	t.Run("listed by -h", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := os.Stderr
		os.Stderr = w
		err = run([]string{"-h"})
		os.Stderr = stderr
		w.Close()
		out, _ := io.ReadAll(r)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("-h: %v", err)
		}
		for _, f := range []string{"-batch-size", "-workers", "-claim-lease", "-txn-timeout", "-backoff-max", "-batch-deadline", "-drain-timeout"} {
			if !strings.Contains(string(out), "  "+f+" ") {
				t.Errorf("-h lacks %s:\n%s", f, out)
			}
		}
	})
	for _, c := range []struct {
		name string
		env  [2]string
		args []string
		want string
	}{
		{"duration without a unit", [2]string{"INLET_BATCH_DEADLINE", "30"}, nil, "INLET_BATCH_DEADLINE"},
		{"malformed transaction timeout", [2]string{"INLET_TXN_TIMEOUT", "sixty"}, nil, "INLET_TXN_TIMEOUT"},
		{"workers not a number", [2]string{"INLET_PROCESSOR_WORKERS", "two"}, nil, "INLET_PROCESSOR_WORKERS"},
		{"transaction timeout under a batch", [2]string{}, []string{"-txn-timeout", "40s"}, "-txn-timeout"},
		{"claim lease under a batch", [2]string{}, []string{"-drain-timeout", "40s"}, "-claim-lease"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			err := run(append(slices.Clone(missing), c.args...))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// TestShownURL: the banner never prints a Redis password.
func TestShownURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:s3cret@db.internal:6379/2":     "redis://:xxxxx@db.internal:6379/2",
		"rediss://app:s3cret@db.internal:6380/0": "rediss://app:xxxxx@db.internal:6380/0",
		"redis://127.0.0.1:6390/0":               "redis://127.0.0.1:6390/0",
	} {
		if got := shownURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("shownURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAdminToken: the dev stack makes up an admin token only when the
// operator set none, and returns only one it made up (the banner prints
// that one, never the operator's).
func TestAdminToken(t *testing.T) {
	t.Run("made up", func(t *testing.T) {
		t.Setenv(admin.EnvWriteToken, "")
		t.Setenv(admin.EnvWriteToken+"_FILE", "")
		tok := adminToken()
		if tok == "" || os.Getenv(admin.EnvWriteToken) != tok {
			t.Fatalf("made %q, %s=%q; want one made up and set", tok, admin.EnvWriteToken, os.Getenv(admin.EnvWriteToken))
		}
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv(admin.EnvWriteToken, "operators-own")
		t.Setenv(admin.EnvWriteToken+"_FILE", "")
		if tok := adminToken(); tok != "" || os.Getenv(admin.EnvWriteToken) != "operators-own" {
			t.Fatalf("made %q, %s=%q; want none made and the operator's kept", tok, admin.EnvWriteToken, os.Getenv(admin.EnvWriteToken))
		}
	})
	t.Run("file", func(t *testing.T) {
		t.Setenv(admin.EnvWriteToken, "")
		t.Setenv(admin.EnvWriteToken+"_FILE", t.TempDir()+"/token")
		if tok := adminToken(); tok != "" || os.Getenv(admin.EnvWriteToken) != "" {
			t.Fatalf("made %q, %s=%q; want none (the _FILE is the operator's)", tok, admin.EnvWriteToken, os.Getenv(admin.EnvWriteToken))
		}
	})
}

// TestBanner: every export the banner prints sets a real value, ready to
// paste; an admin token the operator set and a Redis password are never
// printed, and a note says what to set instead.
func TestBanner(t *testing.T) {
	base := banner{
		dataDir: ".inlet", ingestURL: "http://127.0.0.1:8080", adminAddr: "127.0.0.1:9090",
		brokers: "127.0.0.1:9092", prefix: "inlet", registryURL: "http://127.0.0.1:8081",
		redisURL: "redis://127.0.0.1:6390/0", curl: "  curl ...", raw: "inlet.raw", processed: "inlet.processed",
		sources: "deploy/sources.example.yaml",
	}
	for _, c := range []struct {
		name      string
		token     string // made up for the run; "" when the operator set one
		redisURL  string
		adminAddr string   // "": base's
		want      []string // lines
		notWant   []string // substrings
	}{
		{
			name: "made-up token, embedded redis", token: "0123abcd", redisURL: base.redisURL,
			want: []string{
				"Operate it (the admin API token is made up for this run):",
				"  export INLET_ADMIN_TOKEN=0123abcd INLET_ADMIN_URL=http://127.0.0.1:9090 INLET_KAFKA_BROKERS=127.0.0.1:9092 INLET_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
				"  export INLET_REDIS_URL=redis://127.0.0.1:6390/0 INLET_SOURCES=deploy/sources.example.yaml",
			},
			notWant: []string{"you configured", "not printed"},
		},
		{
			name: "operator's token", redisURL: base.redisURL,
			want: []string{
				"  export INLET_ADMIN_URL=http://127.0.0.1:9090 INLET_KAFKA_BROKERS=127.0.0.1:9092 INLET_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081",
				"The admin API token is the one you configured (INLET_ADMIN_TOKEN or INLET_ADMIN_TOKEN_FILE), not printed: set it where you run these.",
			},
			notWant: []string{"INLET_ADMIN_TOKEN=", "made up"},
		},
		{
			name: "redis url with a password", token: "0123abcd", redisURL: "rediss://app:s3cret@db.internal:6380/2",
			want: []string{
				"  redis:           rediss://app:xxxxx@db.internal:6380/2",
				"  export INLET_SOURCES=deploy/sources.example.yaml",
				"INLET_REDIS_URL is not printed, as the -redis-url you gave holds a password: export it yourself with that URL.",
			},
			notWant: []string{"s3cret", "INLET_REDIS_URL=", "xxxxx@db.internal:6380/2 "},
		},
		{
			name: "redis url with a user alone", token: "0123abcd", redisURL: "redis://app@db.internal:6379/0",
			want:    []string{"  export INLET_REDIS_URL=redis://app@db.internal:6379/0 INLET_SOURCES=deploy/sources.example.yaml"},
			notWant: []string{"not printed"},
		},
		{
			// inletctl trace defaults to 127.0.0.1:9090: a stack elsewhere
			// must say where, or trace asks whatever owns that port.
			name: "admin on another port", token: "0123abcd", redisURL: base.redisURL, adminAddr: "127.0.0.1:19090",
			want: []string{"  export INLET_ADMIN_TOKEN=0123abcd INLET_ADMIN_URL=http://127.0.0.1:19090 INLET_KAFKA_BROKERS=127.0.0.1:9092 INLET_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081"},
		},
		{
			name: "admin on every interface", token: "0123abcd", redisURL: base.redisURL, adminAddr: "[::]:19090",
			want: []string{"  export INLET_ADMIN_TOKEN=0123abcd INLET_ADMIN_URL=http://127.0.0.1:19090 INLET_KAFKA_BROKERS=127.0.0.1:9092 INLET_SCHEMA_REGISTRY_URL=http://127.0.0.1:8081"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := base
			b.token, b.redisURL = c.token, c.redisURL
			if c.adminAddr != "" {
				b.adminAddr = c.adminAddr
			}
			out := b.String()
			lines := strings.Split(out, "\n")
			for _, w := range c.want {
				if !slices.Contains(lines, w) {
					t.Errorf("no line %q in:\n%s", w, out)
				}
			}
			for _, nw := range c.notWant {
				if strings.Contains(out, nw) {
					t.Errorf("%q in:\n%s", nw, out)
				}
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "  export ") {
					continue
				}
				for _, kv := range strings.Fields(strings.TrimPrefix(l, "  export ")) {
					if k, v, _ := strings.Cut(kv, "="); v == "" || strings.ContainsAny(v, "<>") || strings.Contains(v, "xxxxx") {
						t.Errorf("export of %s pastes %q: %s", k, v, l)
					}
				}
			}
		})
	}
}
