package service

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestParseRedisURL: each form gives its kind of client options, with
// hosts, master name, database, credentials and TLS where the URL says.
func TestParseRedisURL(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		o, err := ParseRedisURL("rediss://u:p@redis.internal:6380/3")
		if err != nil || o.Kind != RedisServer || o.Addr != "redis.internal:6380" || o.DB() != 3 || !o.TLS() ||
			o.Server.Username != "u" || o.Server.Password != "p" {
			t.Fatalf("%+v, %v", o, err)
		}
		if _, ok := o.NewClient().(*redis.Client); !ok {
			t.Fatal("not a *redis.Client")
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		o, err := ParseRedisURL("redis+sentinel://inlet:p%2Fw@s1:26379,s2:26380/mymaster/2?dial_timeout=3s&addr=[::1]:26381&sentinel_username=watcher")
		if err != nil {
			t.Fatal(err)
		}
		f := o.Failover
		if o.Kind != RedisSentinel || f.MasterName != "mymaster" || f.DB != 2 || o.DB() != 2 || o.TLS() ||
			len(f.SentinelAddrs) != 3 || f.SentinelAddrs[0] != "s1:26379" || !slices.Contains(f.SentinelAddrs, "s2:26380") || !slices.Contains(f.SentinelAddrs, "[::1]:26381") ||
			f.Username != "inlet" || f.Password != "p/w" || f.SentinelUsername != "watcher" || f.SentinelPassword != "" || f.DialTimeout.Seconds() != 3 {
			t.Fatalf("%+v %+v", o, f)
		}
		if !strings.HasPrefix(o.Addr, "sentinel master mymaster via s1:26379,") || strings.Contains(o.Addr, "p/w") {
			t.Fatalf("Addr %q", o.Addr)
		}
		rdb := o.NewClient()
		defer rdb.Close()
		if _, ok := rdb.(*redis.Client); !ok {
			t.Fatal("not a *redis.Client (the failover client is one)")
		}
	})
	t.Run("sentinel over TLS, database 0", func(t *testing.T) {
		o, err := ParseRedisURL("rediss+sentinel://s1:26379/mymaster")
		if err != nil || o.Failover.MasterName != "mymaster" || o.DB() != 0 || !o.TLS() || o.Failover.TLSConfig.ServerName != "" {
			t.Fatalf("%+v, %v; want TLS verifying each node by the host dialled", o, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		o, err := ParseRedisURL("rediss+cluster://:secret@n1:6379,n2:6379?addr=n3:6379&pool_size=50")
		if err != nil {
			t.Fatal(err)
		}
		c := o.Cluster
		if o.Kind != RedisCluster || len(c.Addrs) != 3 || c.Addrs[0] != "n1:6379" || !slices.Contains(c.Addrs, "n2:6379") || !slices.Contains(c.Addrs, "n3:6379") ||
			c.Password != "secret" || c.PoolSize != 50 || !o.TLS() || o.DB() != 0 {
			t.Fatalf("%+v %+v", o, c)
		}
		if !strings.HasPrefix(o.Addr, "cluster n1:6379,") || strings.Contains(o.Addr, "secret") {
			t.Fatalf("Addr %q", o.Addr)
		}
		rdb := o.NewClient()
		defer rdb.Close()
		if _, ok := rdb.(*redis.ClusterClient); !ok {
			t.Fatal("not a *redis.ClusterClient")
		}
	})
	t.Run("scheme case", func(t *testing.T) {
		if o, err := ParseRedisURL("REDIS+CLUSTER://n1:6379"); err != nil || o.Kind != RedisCluster {
			t.Fatalf("%+v, %v", o, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		for u, want := range map[string]string{
			"redis+cluster://n1:6379/0":                         "no /<db>",
			"redis+cluster://n1:6379?read_only=true":            "read_only",
			"redis+cluster://n1:6379?route_randomly=true":       "route_randomly",
			"redis+cluster://n1:6379?bogus=1":                   "unknown query option",
			"redis+cluster://n1:6379,n2":                        "host:port",
			"redis+cluster://":                                  "host:port",
			"redis+sentinel://s1:26379":                         "/<master name>",
			"redis+sentinel://s1:26379/m/0/x":                   "/<master name>",
			"redis+sentinel://s1:26379/m/x":                     "database number",
			"redis+sentinel://s1:26379/m?master_name=other":     "master_name",
			"redis+sentinel://s1:26379/m?password=p":            "password",
			"redis+sentinel://s1:26379/m?replica_only=true":     "replica_only",
			"redis+sentinel://s1:26379/m?route_by_latency=true": "route_by_latency",
			"redis+sentinel://s1:26379/m?dial_timeout=soon":     "malformed value",
			"redis+sentinel://s1:26379,s2:26379/m?addr=s3":      "addr=",
			"redis+cluster://[::1]:6379,[::2]:6379":             "port",
			"redis+sentinel://s1:26379/m#frag":                  "#",
			"http+cluster://n1:6379":                            "scheme",
		} {
			_, err := ParseRedisURL(u)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "INLET_REDIS_URL") {
				t.Errorf("%s: %v, want an error naming INLET_REDIS_URL and %q", u, err, want)
			}
		}
	})
}

// TestRedisURLPortRange: a port no connection can use (0, above 65535),
// in any form, is refused naming INLET_REDIS_URL and never showing the
// URL (a port may be a password that lost its @); it passed
// --check-config, and the processor started and waited on Redis for good
// as on an outage.
func TestRedisURLPortRange(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cr3t@redis.internal:99999/0",
		"rediss://redis.internal:0",
		"redis+sentinel://:s3cr3t@s1:26379,s2:263790/m",
		"redis+sentinel://s1:26379/m?addr=s3:70000",
		"redis+cluster://:s3cr3t@n1:6379,n2:65536",
	} {
		_, err := ParseRedisURL(u)
		if err == nil || !strings.Contains(err.Error(), "INLET_REDIS_URL") || !strings.Contains(err.Error(), "1 to 65535") {
			t.Errorf("%s: %v, want refused naming INLET_REDIS_URL and the port range", u, err)
			continue
		}
		for _, shown := range []string{"s3cr3t", "99999", "263790", "70000", "65536", "redis.internal"} {
			if strings.Contains(err.Error(), shown) {
				t.Errorf("%s: the error shows %q: %v", u, shown, err)
			}
		}
	}
	for _, u := range []string{"redis://redis.internal:65535/0", "redis://redis.internal", "redis+cluster://n1:1"} {
		if _, err := ParseRedisURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestRedisHAURLsNeverQuoteTheURL: a mistyped Sentinel or Cluster URL is
// refused without printing its password, whichever part the mistake is
// in.
func TestRedisHAURLsNeverQuoteTheURL(t *testing.T) {
	for _, scheme := range []string{"redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"} {
		for _, rest := range []string{
			":s3cr3t%zzpass@h1:26379/m",      // bad escape
			":s3cr3t@h1:port/m",              // bad port
			"default:s3cr3t/tail@h1:26379/m", // a / ends the host early
			"default:s3cr3t#tail@h1:26379/m", // a # ends the URL
			"u:1234#s3cr3t@h1:26379/m",       // ... leaving a host u:1234
			":1234/s3cr3t@h1:26379/m",
			"u:1234?s3cr3t@h1:26379/m",
			"u:s3cr3t@h1:26379/m?dial_timeout=s3cr3t",
			"u:s3cr3t@h1:26379/m?s3cr3t=1",
			"u:s3cr3t@h1:26379/m?addr=s3cr3t",
			"u:s3cr3t@h1:26379,s3cr3t/m",
			"u:s3cr3t@/m",
		} {
			u := scheme + "://" + rest
			_, err := (&RedisConfig{URL: u}).Parse()
			if err == nil {
				if strings.HasSuffix(scheme, "sentinel") {
					t.Errorf("%q parsed", u)
				}
				continue // "/m" is a path Cluster refuses, most of the time
			}
			if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "INLET_REDIS_URL") {
				t.Errorf("%q: %v — want an error naming the setting, without the password", u, err)
			}
		}
	}
}

// TestRedisHAPasswords: REDIS_PASSWORD[_FILE] overrides the URL's password
// of the servers on every kind; SENTINEL_PASSWORD[_FILE] is the
// sentinels' own, read only with Sentinel.
func TestRedisHAPasswords(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		f := dir + "/" + name
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Setenv("REDIS_PASSWORD", "")
	t.Setenv("REDIS_PASSWORD_FILE", write("redis", "from-file"))
	t.Setenv("SENTINEL_PASSWORD", "")
	t.Setenv("SENTINEL_PASSWORD_FILE", write("sentinel", "sentinel-pass"))
	o, err := (&RedisConfig{URL: "redis+sentinel://:in-url@s1:26379/m"}).Parse()
	if err != nil || o.Failover.Password != "from-file" || o.Failover.SentinelPassword != "sentinel-pass" {
		t.Fatalf("%+v, %v", o.Failover, err)
	}
	o, err = (&RedisConfig{URL: "redis+cluster://:in-url@n1:6379"}).Parse()
	if err != nil || o.Cluster.Password != "from-file" {
		t.Fatalf("%+v, %v", o.Cluster, err)
	}
	t.Setenv("REDIS_PASSWORD_FILE", "")
	if o, err = (&RedisConfig{URL: "redis+cluster://:in-url@n1:6379"}).Parse(); err != nil || o.Cluster.Password != "in-url" {
		t.Fatalf("%+v, %v", o.Cluster, err)
	}
	t.Setenv("SENTINEL_PASSWORD_FILE", dir+"/missing")
	if _, err := (&RedisConfig{URL: "redis+sentinel://s1:26379/m"}).Parse(); err == nil || !strings.Contains(err.Error(), "SENTINEL_PASSWORD_FILE") {
		t.Fatalf("%v, want an unreadable SENTINEL_PASSWORD_FILE refused", err)
	}
	// Not read at all without Sentinel.
	if _, err := (&RedisConfig{URL: "redis+cluster://n1:6379"}).Parse(); err != nil {
		t.Fatal(err)
	}
	// Options is for one server only.
	if _, err := (&RedisConfig{URL: "redis+cluster://n1:6379"}).Options(); err == nil || !strings.Contains(err.Error(), "redis://") {
		t.Fatalf("%v, want Options to refuse a cluster", err)
	}
}
