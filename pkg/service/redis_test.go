package service

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/flagenv"
)

// TestRedisOptionsNeverQuoteTheURL: the URL holds the password; a typo in
// it must not print the password to the log.
func TestRedisOptionsNeverQuoteTheURL(t *testing.T) {
	const secret = "s3cr3t%zzpass"
	for _, u := range []string{
		"redis://:" + secret + "@redis:6379/0",          // bad escape
		"redis://:" + secret + "@redis:port/0",          // bad port
		"http://:" + secret + "@redis:6379/0",           // wrong scheme
		"redis://:" + secret + "@redis:6379/notanumber", // bad database
		// A password holding /, ? or # ends the host early: url.Parse's
		// port error quoted its start, go-redis's path and option errors
		// its rest.
		"redis://default:s3cr3t/tail@redis:6379/0",
		"redis://default:s3cr3t#tail@redis:6379/0",
		"redis://:1234/s3cr3t@redis:6379/0",
		"redis://u:1234?s3cr3t@redis:6379/0",
	} {
		c := RedisConfig{URL: u}
		_, err := c.Options()
		if err == nil {
			t.Errorf("%q parsed", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "INLET_REDIS_URL") {
			t.Errorf("%q: %v — want an error naming the setting, without the password", u, err)
		}
	}
}

func TestRedisOptionsPassword(t *testing.T) {
	c := RedisConfig{URL: "redis://127.0.0.1:6379/2"}
	t.Setenv("REDIS_PASSWORD", "")
	f := t.TempDir() + "/p"
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REDIS_PASSWORD_FILE", f)
	opt, err := c.Options()
	if err != nil || opt.Password != "from-file" || opt.DB != 2 {
		t.Fatalf("options %+v, %v", opt, err)
	}
	t.Setenv("REDIS_PASSWORD_FILE", f+".missing")
	if _, err := c.Options(); err == nil {
		t.Fatal("an unreadable REDIS_PASSWORD_FILE was ignored")
	}
}

// TestRedisRefusesThePlaceholder: a Redis password that is the Kubernetes
// Secret example's placeholder or starts with it (its INLET_REDIS_URL is
// redis://:REPLACE_ME@...), in the URL, REDIS_PASSWORD[_FILE] or
// SENTINEL_PASSWORD, is refused naming the setting, never the value. It
// was taken, and Redis either refused it at the first command or, set up
// from the same example, accepted a password anyone can read.
func TestRedisRefusesThePlaceholder(t *testing.T) {
	for _, tt := range []struct {
		name, url, env, val, want string
	}{
		{"the example's URL", "redis://:REPLACE_ME@redis.example.internal:6379/0", "", "", "INLET_REDIS_URL"},
		{"a user and the placeholder", "rediss://inlet:replace_me_0123456789@redis:6379/0", "", "", "INLET_REDIS_URL"},
		{"sentinel URL", "redis+sentinel://:REPLACE_ME@s1:26379,s2:26379/mymaster", "", "", "INLET_REDIS_URL"},
		{"cluster URL", "redis+cluster://:REPLACE_ME@n1:6379,n2:6379", "", "", "INLET_REDIS_URL"},
		{"REDIS_PASSWORD", "redis://redis:6379/0", "REDIS_PASSWORD", "REPLACE_ME_0123", "REDIS_PASSWORD"},
		{"REDIS_PASSWORD over the URL's", "redis://:good@redis:6379/0", "REDIS_PASSWORD", "REPLACE_ME", "REDIS_PASSWORD"},
		{"SENTINEL_PASSWORD", "redis+sentinel://s1:26379/mymaster", "SENTINEL_PASSWORD", "REPLACE_ME", "SENTINEL_PASSWORD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range []string{"REDIS_PASSWORD", "SENTINEL_PASSWORD"} {
				t.Setenv(e, "")
				t.Setenv(e+"_FILE", "")
			}
			if tt.env != "" {
				t.Setenv(tt.env, tt.val)
			}
			c := RedisConfig{URL: tt.url}
			_, err := c.Parse()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "placeholder") ||
				strings.Contains(strings.ToUpper(err.Error()), "REPLACE_ME") {
				t.Fatalf("Parse = %v; want an error naming %s as the placeholder, not quoting it", err, tt.want)
			}
		})
	}
	t.Setenv("REDIS_PASSWORD", "")
	t.Setenv("SENTINEL_PASSWORD", "")
	c := RedisConfig{URL: "redis://:pass-REPLACE_ME@redis:6379/0"}
	if _, err := c.Parse(); err != nil {
		t.Fatalf("a password holding the placeholder after its start: %v; want it taken", err)
	}
}

func TestRedisFlags(t *testing.T) {
	t.Setenv("INLET_REDIS_KEY_PREFIX", "staging:")
	fs := flagenv.New("t")
	var c RedisConfig
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil || c.KeyPrefix != "staging:" || c.URL != "redis://127.0.0.1:6379/0" {
		t.Fatalf("%+v %v", c, err)
	}
}

// -redis-wait-replicas: from the environment, with its timeout; a
// negative count, a timeout WAIT takes as forever and Redis Cluster are
// refused, naming the setting.
func TestRedisWaitReplicasFlags(t *testing.T) {
	t.Setenv("INLET_REDIS_WAIT_REPLICAS", "1")
	t.Setenv("INLET_REDIS_WAIT_TIMEOUT", "250ms")
	fs := flagenv.New("t")
	var c RedisConfig
	c.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil || c.WaitReplicas != 1 || c.WaitTimeout != 250*time.Millisecond {
		t.Fatalf("%+v %v", c, err)
	}
	for _, u := range []string{"redis://127.0.0.1:6379/0", "redis+sentinel://127.0.0.1:26379/mymaster", "redis://127.0.0.1:6379/0?read_timeout=-1"} {
		if _, err := (&RedisConfig{URL: u, WaitReplicas: 1, WaitTimeout: time.Second}).Parse(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, bad := range []RedisConfig{
		{URL: "redis://127.0.0.1:6379/0", WaitReplicas: -1, WaitTimeout: time.Second},
		{URL: "redis://127.0.0.1:6379/0", WaitReplicas: 1},
		{URL: "redis+cluster://127.0.0.1:7000", WaitReplicas: 1, WaitTimeout: time.Second},
		{URL: "redis://127.0.0.1:6379/0", WaitReplicas: 1, WaitTimeout: 3 * time.Second},                  // go-redis's read timeout
		{URL: "redis://127.0.0.1:6379/0?read_timeout=500ms", WaitReplicas: 1, WaitTimeout: time.Second},   // the URL's
		{URL: "redis+sentinel://127.0.0.1:26379/mymaster", WaitReplicas: 1, WaitTimeout: 4 * time.Second}, // Sentinel's
	} {
		if _, err := bad.Parse(); err == nil || !strings.Contains(err.Error(), "INLET_REDIS_WAIT_") {
			t.Errorf("%+v: %v; want refused, naming the setting", bad, err)
		}
	}
	if _, err := (&RedisConfig{URL: "redis+cluster://127.0.0.1:7000", WaitTimeout: time.Second}).Parse(); err != nil {
		t.Errorf("cluster without a replica wait: %v", err)
	}
}

// The go-redis client's own lines go to the service's log as JSON at
// debug, not as plain text on stderr.
func TestRedisClientLogIsJSON(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	redisLog{log.With("component", "redis-client")}.Printf(context.Background(), "pool.go:770: redis: connection pool: failed to dial after %d attempts: %s\n", 5, "connection refused")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if line["level"] != "DEBUG" || line["component"] != "redis-client" || line["msg"] != "pool.go:770: redis: connection pool: failed to dial after 5 attempts: connection refused" {
		t.Fatalf("line %v", line)
	}
}

// The processor bounds lock renewals, claim releases and shutdown's
// confirms by contexts; go-redis ignores a context's deadline unless told
// not to, and a slow Redis then held a 200 ms renewal for 2.5 s.
func TestRedisClientsHonourContextDeadlines(t *testing.T) {
	for _, url := range []string{"redis://127.0.0.1:6379/0", "redis+sentinel://127.0.0.1:26379/mymaster", "redis+cluster://127.0.0.1:7000"} {
		o, err := ParseRedisURL(url)
		if err != nil {
			t.Fatal(err)
		}
		rdb := o.NewClient()
		var enabled bool
		switch c := rdb.(type) {
		case *redis.Client:
			enabled = c.Options().ContextTimeoutEnabled
		case *redis.ClusterClient:
			enabled = c.Options().ContextTimeoutEnabled
		default:
			t.Fatalf("%s: client %T", url, rdb)
		}
		rdb.Close()
		if !enabled {
			t.Errorf("%s: the client ignores context deadlines (ContextTimeoutEnabled false)", url)
		}
	}
}
