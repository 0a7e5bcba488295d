package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/store"
)

// RedisConfig is how the processor (and inletctl replay, which processes
// too) reach Redis and name their keys there.
type RedisConfig struct {
	// URL names one Redis server, a master behind Redis Sentinel or a
	// Redis Cluster: see ParseRedisURL.
	URL string
	// KeyPrefix starts every key the processor writes: dedup claims,
	// entity state, event history, replay progress. Processes sharing
	// state must use the same one; environments sharing a Redis, each
	// their own.
	KeyPrefix string
	// WaitReplicas is how many replicas must hold a batch's writes before
	// its Kafka commit (0: none); WaitTimeout bounds each wait. See
	// store.WaitReplicas.
	WaitReplicas int
	WaitTimeout  time.Duration
}

// RegisterFlags defines -redis-url and -redis-key-prefix.
func (c *RedisConfig) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.URL, "redis-url", "INLET_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL: redis://host:port/db for one server (rediss:// for TLS), "+
		"redis+sentinel://host:26379[,host:26379...]/<master name>[/db] through Redis Sentinel, redis+cluster://host:6379[,host:6379...] for Redis Cluster "+
		"(rediss+sentinel://, rediss+cluster:// for TLS); password in the URL or REDIS_PASSWORD[_FILE], the sentinels' own in SENTINEL_PASSWORD[_FILE]")
	fs.String(&c.KeyPrefix, "redis-key-prefix", "INLET_REDIS_KEY_PREFIX", "inlet:", "prefix of every Redis key the processor writes; the same for every processor and inletctl replay of one deployment")
	fs.Int(&c.WaitReplicas, "redis-wait-replicas", "INLET_REDIS_WAIT_REPLICAS", 0, "replicas that must hold a batch's dedup keys and entity states (Redis WAIT) before its Kafka commit, so that a failover loses none of them; "+
		"0: none (Redis replicates asynchronously); one server or Sentinel, not Cluster")
	fs.Duration(&c.WaitTimeout, "redis-wait-timeout", "INLET_REDIS_WAIT_TIMEOUT", time.Second, "how long one wait for -redis-wait-replicas lasts, below the Redis read timeout (3s unless read_timeout= in -redis-url); fewer replicas by then and the batch waits on, as for a Redis outage")
}

// StoreOpts are the store options of c: its key prefix and replica wait.
func (c *RedisConfig) StoreOpts() []store.Opt {
	return []store.Opt{store.KeyPrefix(c.KeyPrefix), store.WaitReplicas(c.WaitReplicas, c.WaitTimeout)}
}

// Parse reads the URL (see ParseRedisURL) and applies REDIS_PASSWORD
// [_FILE], which overrides the URL's password, and with Sentinel
// SENTINEL_PASSWORD[_FILE], the sentinels' own password (none when unset:
// a sentinel without requirepass refuses AUTH). The URL often holds a
// password, so an error never quotes it. A password that is the
// Kubernetes Secret example's placeholder (flagenv.Placeholder), in the
// URL or either variable, is refused naming where it was read.
func (c *RedisConfig) Parse() (*RedisOptions, error) {
	o, err := ParseRedisURL(c.URL)
	if err != nil {
		return nil, err
	}
	switch {
	case c.WaitReplicas < 0:
		return nil, fmt.Errorf("-redis-wait-replicas (INLET_REDIS_WAIT_REPLICAS) %d: want 0 (none) or more", c.WaitReplicas)
	case c.WaitReplicas > 0 && c.WaitTimeout < time.Millisecond:
		return nil, fmt.Errorf("-redis-wait-timeout (INLET_REDIS_WAIT_TIMEOUT) %v: want 1ms or more (Redis' WAIT takes 0 as forever)", c.WaitTimeout)
	case c.WaitReplicas > 0 && o.Kind == RedisCluster:
		return nil, errors.New("-redis-wait-replicas (INLET_REDIS_WAIT_REPLICAS): not on Redis Cluster, where a WAIT reaches one master and a batch's keys are on all of them; 0 there")
	}
	if rt := o.readTimeout(); c.WaitReplicas > 0 && rt > 0 && c.WaitTimeout >= rt {
		// The client would give up on every wait that lasts its whole
		// timeout, and take Redis for unreachable.
		return nil, fmt.Errorf("-redis-wait-timeout (INLET_REDIS_WAIT_TIMEOUT) %v: must be below the Redis read timeout, %v (read_timeout= in -redis-url)", c.WaitTimeout, rt)
	}
	if flagenv.Placeholder(o.password()) {
		return nil, placeholderError("-redis-url (INLET_REDIS_URL): its password")
	}
	pass, err := flagenv.Secret("REDIS_PASSWORD")
	if err != nil {
		return nil, err
	}
	if flagenv.Placeholder(pass) {
		return nil, placeholderError("REDIS_PASSWORD (or REDIS_PASSWORD_FILE)")
	}
	if o.Kind == RedisSentinel {
		if o.Failover.SentinelPassword, err = flagenv.Secret("SENTINEL_PASSWORD"); err != nil {
			return nil, err
		}
		if flagenv.Placeholder(o.Failover.SentinelPassword) {
			return nil, placeholderError("SENTINEL_PASSWORD (or SENTINEL_PASSWORD_FILE)")
		}
	}
	if pass != "" {
		o.setPassword(pass)
	}
	return o, nil
}

// Options is Parse for a single server (redis://, rediss://) only: its
// error says so for the Sentinel and Cluster forms.
func (c *RedisConfig) Options() (*redis.Options, error) {
	o, err := c.Parse()
	if err != nil {
		return nil, err
	}
	if o.Kind != RedisServer {
		return nil, fmt.Errorf("-redis-url (INLET_REDIS_URL): names a Redis %s, where one Redis server (redis:// or rediss://) is needed", o.Kind)
	}
	return o.Server, nil
}

// RedisKind is the kind of Redis a -redis-url names.
type RedisKind string

const (
	// RedisServer is one server: redis://, rediss://.
	RedisServer RedisKind = "server"
	// RedisSentinel is a master found through Redis Sentinel, followed
	// across failovers: redis+sentinel://, rediss+sentinel://.
	RedisSentinel RedisKind = "sentinel"
	// RedisCluster is a Redis Cluster: redis+cluster://, rediss+cluster://.
	RedisCluster RedisKind = "cluster"
)

// RedisOptions are the go-redis options of the Redis a -redis-url names:
// one of Server, Failover and Cluster, as Kind says.
type RedisOptions struct {
	Kind RedisKind
	// Addr says where Redis is, for logs and messages, never with a
	// password: host:port for a server, "sentinel master <name> via
	// <sentinels>" or "cluster <seed nodes>".
	Addr     string
	Server   *redis.Options
	Failover *redis.FailoverOptions
	Cluster  *redis.ClusterOptions
}

// NewClient returns a client of the Redis o names: a *redis.Client for a
// server and for Sentinel (go-redis's failover client is one, following
// the master the sentinels name), a *redis.ClusterClient for a cluster. It
// does not contact Redis.
//
// Calls honour their context's deadline and cancellation (go-redis's
// default waits out its read timeout instead): the processor bounds lock
// renewals, claim releases and shutdown's confirms by contexts, and a
// slow Redis held a 200 ms renewal 2.5 s, 5 s when stalled.
func (o *RedisOptions) NewClient() redis.UniversalClient {
	switch o.Kind {
	case RedisSentinel:
		o.Failover.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o.Failover)
	case RedisCluster:
		o.Cluster.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o.Cluster)
	}
	o.Server.ContextTimeoutEnabled = true
	return redis.NewClient(o.Server)
}

// DB is the database number: 0 on Redis Cluster, which has no other.
func (o *RedisOptions) DB() int {
	switch o.Kind {
	case RedisSentinel:
		return o.Failover.DB
	case RedisCluster:
		return 0
	}
	return o.Server.DB
}

// TLS reports whether connections to Redis use TLS (rediss schemes).
func (o *RedisOptions) TLS() bool {
	switch o.Kind {
	case RedisSentinel:
		return o.Failover.TLSConfig != nil
	case RedisCluster:
		return o.Cluster.TLSConfig != nil
	}
	return o.Server.TLSConfig != nil
}

// Seeds are the TCP addresses the URL names: the server's, the
// sentinels' or the cluster nodes' given (a Sentinel's master and a
// cluster's other nodes are found, not configured); none for a socket.
func (o *RedisOptions) Seeds() []string {
	switch o.Kind {
	case RedisSentinel:
		return o.Failover.SentinelAddrs
	case RedisCluster:
		return o.Cluster.Addrs
	}
	if o.Server.Network == "unix" {
		return nil
	}
	return []string{o.Server.Addr}
}

// readTimeout is how long the client waits for a reply: go-redis's
// default of 3 s unless the URL's read_timeout says otherwise; 0 for
// none.
func (o *RedisOptions) readTimeout() time.Duration {
	var rt time.Duration
	switch o.Kind {
	case RedisSentinel:
		rt = o.Failover.ReadTimeout
	case RedisCluster:
		rt = o.Cluster.ReadTimeout
	default:
		rt = o.Server.ReadTimeout
	}
	switch {
	case rt == 0:
		return 3 * time.Second
	case rt < 0:
		return 0
	}
	return rt
}

// placeholderError says that the password in where is the Secret
// example's placeholder, without quoting it.
func placeholderError(where string) error {
	return fmt.Errorf("%s holds the placeholder of the Kubernetes Secret example (deploy/k8s/secret-example.yaml), not a password: set it to your Redis password", where)
}

// password is the Redis password o holds (the master's with Sentinel).
func (o *RedisOptions) password() string {
	switch o.Kind {
	case RedisSentinel:
		return o.Failover.Password
	case RedisCluster:
		return o.Cluster.Password
	default:
		return o.Server.Password
	}
}

func (o *RedisOptions) setPassword(p string) {
	switch o.Kind {
	case RedisSentinel:
		o.Failover.Password = p
	case RedisCluster:
		o.Cluster.Password = p
	default:
		o.Server.Password = p
	}
}

// ParseRedisURL reads a -redis-url of one of three forms:
//
//	redis[s]://[[user]:password@]host:port[/db][?option=value...]
//	redis[s]+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db][?option=value...]
//	redis[s]+cluster://[[user]:password@]host:port[,host:port...][?option=value...]
//
// The first is go-redis's ParseURL, unchanged. With Sentinel the hosts are
// the sentinels; the user and password are the master's (and its
// replicas'), as in the other forms. With Cluster the hosts are seed nodes
// (any node: the client learns the others), and there is no database. The
// options are go-redis's (dial_timeout=3s, pool_size=50, ...; an addr=
// option adds a host, as in go-redis's own URLs, and, with Sentinel,
// skip_verify=true skips TLS verification); options that would send reads
// to replicas, which may lag behind the writes dedup depends on, are
// refused. rediss: TLS to every node (with Sentinel, to the sentinels too).
//
// An error names the setting and what is wrong, never quoting the URL: it
// may hold a password.
func ParseRedisURL(s string) (*RedisOptions, error) {
	o, err := parseRedisURL(s)
	if err != nil {
		return nil, err
	}
	// The parsers take any number for a port; the dial then failed, and
	// the processor waited on Redis for good as on an outage.
	for _, a := range o.Seeds() {
		// Not shown: a port may be a password that lost its @.
		if _, p, err := net.SplitHostPort(a); err == nil {
			if !validPort(p) {
				return nil, fmt.Errorf("-redis-url (INLET_REDIS_URL): a port that is not a number from 1 to 65535 (the value is not shown: it may hold a password)")
			}
		}
	}
	return o, nil
}

func parseRedisURL(s string) (*RedisOptions, error) {
	scheme, _, _ := strings.Cut(s, "://")
	switch strings.ToLower(scheme) {
	case "redis+sentinel", "rediss+sentinel":
		return parseSentinelURL(s)
	case "redis+cluster", "rediss+cluster":
		return parseClusterURL(s)
	}
	opt, err := redis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("-redis-url (INLET_REDIS_URL): not a redis:// or rediss:// URL (%s; the value is not shown: it may hold a password)", RedactedReason(err))
	}
	return &RedisOptions{Kind: RedisServer, Addr: opt.Addr, Server: opt}, nil
}

const (
	sentinelForm = "redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db]"
	clusterForm  = "redis+cluster://[[user]:password@]host:port[,host:port...]"
)

// haURLError is a malformed Sentinel or Cluster URL: what is wrong (never
// quoting it) and the form it must have.
func haURLError(kind RedisKind, form, reason string) error {
	return fmt.Errorf("-redis-url (INLET_REDIS_URL): not a Redis %s URL (%s; the value is not shown: it may hold a password): want %s", kind, reason, form)
}

// replicaReads are the go-redis options that send reads to replicas:
// a claim or entity time read there may miss a write just made.
var replicaReads = []string{"read_only", "route_by_latency", "route_randomly", "replica_only", "use_disconnected_replicas"}

// haURL is what the Sentinel and Cluster forms share: the URL, its hosts
// (at least one, each host:port), and its options without any that read
// from replicas. Hosts may also come as addr= options (go-redis's form,
// also the way to give IPv6 hosts beyond the first).
func haURL(s string, kind RedisKind, form string) (*url.URL, []string, url.Values, error) {
	u, err := url.Parse(s)
	if err != nil {
		reason := RedactedReason(err)
		if strings.Contains(s, "]") {
			reason += "; IPv6 hosts after the first go in addr= options: ?addr=[::1]:6379"
		}
		return nil, nil, nil, haURLError(kind, form, reason)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		// url.Parse ends the URL at a #: a password holding one would be
		// cut, and the rest taken as the host.
		return nil, nil, nil, haURLError(kind, form, "a # (a password holding /, ? or # must be %-escaped)")
	}
	var hosts []string
	for _, h := range strings.Split(u.Host, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" || strings.Trim(port, "0123456789") != "" {
			return nil, nil, nil, haURLError(kind, form, "a host that is not host:port (a password holding /, ? or # must be %-escaped)")
		}
		hosts = append(hosts, h)
	}
	q := u.Query()
	for _, k := range replicaReads {
		if q.Has(k) {
			return nil, nil, nil, haURLError(kind, form, "option "+k+" would read from replicas, which may not have the latest dedup claims yet: not allowed")
		}
	}
	return u, hosts, q, nil
}

// goRedisURL is u in the form go-redis's own parsers take: scheme redis or
// rediss, the first host, the others as addr= options.
func goRedisURL(u *url.URL, hosts []string, q url.Values, path string) string {
	g := url.URL{Scheme: "redis", Host: hosts[0], Path: path}
	if strings.HasPrefix(strings.ToLower(u.Scheme), "rediss") {
		g.Scheme = "rediss"
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	g.RawQuery = q.Encode()
	return g.String()
}

func parseClusterURL(s string) (*RedisOptions, error) {
	u, hosts, q, err := haURL(s, RedisCluster, clusterForm)
	if err != nil {
		return nil, err
	}
	if strings.Trim(u.Path, "/") != "" {
		return nil, haURLError(RedisCluster, clusterForm, "a path: Redis Cluster has one database, 0, and no /<db> (a password holding /, ? or # must be %-escaped)")
	}
	opt, err := redis.ParseClusterURL(goRedisURL(u, hosts, q, ""))
	if err != nil {
		return nil, haURLError(RedisCluster, clusterForm, RedactedReason(err))
	}
	opt.Username = u.User.Username()
	opt.Password, _ = u.User.Password()
	return &RedisOptions{Kind: RedisCluster, Addr: "cluster " + strings.Join(opt.Addrs, ","), Cluster: opt}, nil
}

func parseSentinelURL(s string) (*RedisOptions, error) {
	u, hosts, q, err := haURL(s, RedisSentinel, sentinelForm)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"master_name", "db", "username", "password"} {
		if q.Has(k) {
			// Named by the URL's path and user part: two places to say
			// one thing would disagree one day.
			return nil, haURLError(RedisSentinel, sentinelForm, "option "+k+" is not taken: the master name and database go in the path, the user and password before the @ (or in REDIS_PASSWORD)")
		}
	}
	path := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(path) > 2 || path[0] == "" {
		return nil, haURLError(RedisSentinel, sentinelForm, "the path is not /<master name>[/<database number>] (a password holding /, ? or # must be %-escaped)")
	}
	// sentinel_username is ours (go-redis's URLs take the sentinels'
	// credentials from the user part, which here is the master's).
	sentinelUser := q.Get("sentinel_username")
	q.Del("sentinel_username")
	q.Set("master_name", path[0])
	opt, err := redis.ParseFailoverURL(goRedisURL(u, hosts, q, "/"+strings.Join(path[1:], "")))
	if err != nil {
		return nil, haURLError(RedisSentinel, sentinelForm, RedactedReason(err))
	}
	opt.Username = u.User.Username()
	opt.Password, _ = u.User.Password()
	opt.SentinelUsername = sentinelUser
	if opt.TLSConfig != nil {
		// go-redis verifies every node, the master included, as the
		// first sentinel's host; each is verified as the host it is
		// dialled at instead: the master is rarely the sentinel.
		opt.TLSConfig.ServerName = ""
	}
	return &RedisOptions{Kind: RedisSentinel, Addr: "sentinel master " + path[0] + " via " + strings.Join(opt.SentinelAddrs, ","), Failover: opt}, nil
}

// RedactedReason is what is wrong with a URL, without any of its text:
// url.Error quotes the URL whole, its port error quotes the start of a
// password holding '/', '?' or '#' (read as the end of the host), and
// go-redis's path and option errors quote the rest of one. Only the kind
// of mistake is named, with the hint that fixes the common one.
func RedactedReason(err error) string {
	const escapeHint = " (a password holding /, ? or # must be %-escaped)"
	var ue *url.Error
	if errors.As(err, &ue) {
		var esc url.EscapeError
		var host url.InvalidHostError
		switch {
		case errors.As(ue.Err, &esc) || errors.As(ue.Err, &host):
			return "a malformed %-escape or host"
		case strings.HasPrefix(ue.Err.Error(), "invalid port"):
			return "a malformed port" + escapeHint
		}
		return "malformed"
	}
	msg := err.Error()
	for _, c := range []struct{ prefix, reason string }{
		{"redis: invalid URL scheme", "the scheme is not redis://, rediss://, redis+sentinel:// or redis+cluster:// (rediss+ for TLS)"},
		{"redis: invalid database number", "the path is not a database number"},
		{"redis: invalid URL path", "the path is not /<database number>" + escapeHint},
		{"redis: unexpected option", "an unknown query option" + escapeHint},
		{"redis: unable to parse addr param", "an addr= option that is not host:port"},
		{"redis: invalid ", "a query option with a malformed value"},
	} {
		if strings.HasPrefix(msg, c.prefix) {
			return c.reason
		}
	}
	return "not a URL it reads"
}

// RedisClientLog sends the go-redis client's own log lines (a pool that
// fails to dial, say: one per connection attempt while Redis is down) to
// log at debug, as JSON like every other line, instead of plain text on
// stderr, which broke log parsing. The outage itself is logged by the
// processor ("redis unavailable; waiting"). The client's logger is global
// to the process.
func RedisClientLog(log *slog.Logger) {
	redis.SetLogger(redisLog{log.With("component", "redis-client")})
}

type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
