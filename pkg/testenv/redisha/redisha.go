// Package redisha starts highly available Redis for tests: a Redis Cluster
// or a Sentinel-managed master and replica, of real redis-server processes
// on 127.0.0.1, for one test, stopped when it ends (their files in
// t.TempDir()). Tests using it skip when redis-server or redis-cli is not
// installed. It is apart from pkg/testenv so that pkg/store's own tests,
// which testenv depends on, can use it.
package redisha

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/testenv/poll"
)

// haStart bounds how long a cluster or a sentinel setup may take to become
// usable (seconds on this machine).
const haStart = 30 * time.Second

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	// Addrs are the masters' host:port.
	Addrs []string
}

// StartCluster starts three cluster-enabled redis-servers, joins them
// with redis-cli --cluster create and waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	needRedisTools(t, "redis-server", "redis-cli")
	dir := t.TempDir()
	c := &Cluster{}
	for range 3 {
		addr := startRedis(t, dir, func(port int) []string {
			// cluster-port (Redis 7.0) names the bus port, which would
			// otherwise be port+10000 and could be taken or out of range.
			return []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(freePort(t)),
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port))}
		})
		c.Addrs = append(c.Addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), haStart)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range c.Addrs {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		eventually(t, haStart, addr+" to report cluster_state:ok", func() bool {
			info, err := rdb.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = rdb.Close()
	}
	return c
}

// URL is the cluster's -redis-url (redis+cluster:// and every master).
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs, ",") }

// Client returns a cluster client of c, closed when t ends. Its slot map
// is loaded before it is returned, so that a first command does not race
// a reload.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), haStart)
	defer cancel()
	if err := rdb.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }); err != nil {
		t.Fatalf("cluster %v: %v", c.Addrs, err)
	}
	return rdb
}

// StartServer starts one redis-server without persistence, args given
// to it (e.g. "--maxmemory-policy", "noeviction"), and returns its
// host:port once it answers. It is stopped when t ends.
func StartServer(t testing.TB, args ...string) string {
	t.Helper()
	needRedisTools(t, "redis-server")
	return startRedis(t, t.TempDir(), func(int) []string { return args })
}

// Sentinel is one master, one replica of it and one sentinel watching
// them under the name Master (quorum 1, down after 1 s).
type Sentinel struct {
	Master   string // "mymaster"
	Sentinel string // host:port of the sentinel
	// Nodes are the two redis-servers' host:port: the first master at start.
	Nodes [2]string
}

// StartSentinel starts the master, the replica and the sentinel, and
// waits until the replica is in sync and the sentinel sees it, so that a
// failover can promote it. serverArgs are given to both redis-servers
// (e.g. "--min-replicas-to-write", "1").
func StartSentinel(t testing.TB, serverArgs ...string) *Sentinel {
	t.Helper()
	needRedisTools(t, "redis-server", "redis-cli")
	dir := t.TempDir()
	s := &Sentinel{Master: "mymaster"}
	master := startRedis(t, dir, func(int) []string { return serverArgs })
	_, mport, _ := net.SplitHostPort(master)
	replica := startRedis(t, dir, func(int) []string {
		return append([]string{"--replicaof", "127.0.0.1", mport}, serverArgs...)
	})
	s.Nodes = [2]string{master, replica}
	s.Sentinel = startSentinel(t, dir, func(port int) string {
		return fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %s 1\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 10000\n", port, dir, s.Master, mport)
	})
	s.waitReplica(t, s.Nodes[1])
	return s
}

// URL is the -redis-url reaching the master through the sentinel.
func (s *Sentinel) URL() string { return "redis+sentinel://" + s.Sentinel + "/" + s.Master }

// Client returns a failover client of s, closed when t ends.
func (s *Sentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.Master, SentinelAddrs: []string{s.Sentinel}})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// MasterAddr is the master's host:port as the sentinel reports it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := sc.GetMasterAddrByName(ctx, s.Master).Result()
	if err != nil {
		t.Fatalf("sentinel %s: master %s: %v", s.Sentinel, s.Master, err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// Failover makes the sentinel promote the replica (SENTINEL FAILOVER) and
// waits until the promoted node is a master and the sentinel names it. It
// returns the new master's address and how long that took. The old master
// is being made a replica of the new one meanwhile.
func (s *Sentinel) Failover(t testing.TB) (string, time.Duration) {
	t.Helper()
	old := s.MasterAddr(t)
	next := s.Nodes[0]
	if next == old {
		next = s.Nodes[1]
	}
	start := time.Now()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), haStart)
	defer cancel()
	if err := sc.Failover(ctx, s.Master).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER %s: %v", s.Master, err)
	}
	eventually(t, haStart, "the sentinel to name "+next+" the master", func() bool {
		a, err := sc.GetMasterAddrByName(ctx, s.Master).Result()
		return err == nil && net.JoinHostPort(a[0], a[1]) == next && role(ctx, next) == "master"
	})
	return next, time.Since(start)
}

// waitReplica waits until replica is connected to its master and the
// sentinel lists it as a healthy replica.
func (s *Sentinel) waitReplica(t testing.TB, replica string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), haStart)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: replica})
	defer rdb.Close()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel})
	defer sc.Close()
	eventually(t, haStart, replica+" to replicate in sync and the sentinel to see it", func() bool {
		info, err := rdb.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_link_status:up") {
			return false
		}
		reps, err := sc.Replicas(ctx, s.Master).Result()
		if err != nil {
			return false
		}
		for _, r := range reps {
			if net.JoinHostPort(r["ip"], r["port"]) == replica && r["flags"] == "slave" && r["master-link-status"] == "ok" {
				return true
			}
		}
		return false
	})
}

// role is what ROLE says addr is ("master", "slave"), or "" when it does
// not answer.
func role(ctx context.Context, addr string) string {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	v, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	r, _ := v[0].(string)
	return r
}

// needRedisTools skips t when one of the programs is not installed.
func needRedisTools(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian package redis-server): test on a real Redis Cluster or Sentinel skipped", p)
		}
	}
}

// portAttempts bounds how often one server is started again after another
// process took its port between freePort and the server's bind.
const portAttempts = 5

// errPortTaken is a server's exit at start because its port (or its
// cluster bus port) was taken meanwhile.
var errPortTaken = errors.New("port taken by another process")

// freePort is a TCP port free on 127.0.0.1 a moment ago. Another process
// may take it before the server binds it (go test runs packages in
// parallel): the server then exits at start, and start tries other ports.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs redis-server on a free 127.0.0.1 port without
// persistence, its files in dir, until t ends, and returns its address
// once it answers; extra gives further arguments for the port chosen.
func startRedis(t testing.TB, dir string, extra func(port int) []string) string {
	t.Helper()
	return start(t, dir, "redis", func(port int, logFile string) []string {
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--logfile", logFile}
		return append(args, extra(port)...)
	})
}

// startSentinel runs a sentinel on a free 127.0.0.1 port, configured by
// conf for that port, until t ends, and returns its address once it
// answers.
func startSentinel(t testing.TB, dir string, conf func(port int) string) string {
	t.Helper()
	return start(t, dir, "sentinel", func(port int, logFile string) []string {
		// The sentinel rewrites its configuration file: it must be its own.
		f := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		if err := os.WriteFile(f, []byte(conf(port)), 0o600); err != nil {
			t.Fatal(err)
		}
		// A sentinel takes its configuration file first, and no persistence
		// options.
		return []string{f, "--sentinel", "--logfile", logFile}
	})
}

// start runs redis-server with args on a free port, again on another one
// when the port was taken before the server bound it.
func start(t testing.TB, dir, kind string, args func(port int, logFile string) []string) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		logFile := filepath.Join(dir, fmt.Sprintf("%s-%d.log", kind, port))
		addr, err := run(t, args(port, logFile), port, logFile)
		if err == nil {
			return addr
		}
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			t.Fatal(err)
		}
		t.Logf("%v: starting it on another port", err)
	}
}

// run starts redis-server with args, stopped when t ends, and waits until
// the server answering on 127.0.0.1:port is that process: a dial alone
// also succeeds when another process took the port.
func run(t testing.TB, args []string, port int, logFile string) (string, error) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		// The log goes with t's TempDir: show it while it is there.
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s:\n%s", logFile, b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(haStart)
	for {
		pid, err := serverPID(addr)
		if err == nil && pid == cmd.Process.Pid {
			return addr, nil
		}
		select {
		case werr := <-exited:
			exited <- werr
			b, _ := os.ReadFile(logFile)
			if bytes.Contains(b, []byte("Address already in use")) {
				return "", fmt.Errorf("redis-server on port %d exited at start: %w", port, errPortTaken)
			}
			return "", fmt.Errorf("redis-server on port %d exited at start (%v):\n%s", port, werr, b)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("redis-server on port %d did not answer within %v: %v", port, haStart, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverPID asks the server at addr for its process id (INFO server), in
// RESP by hand: go-redis's pool logs every refused dial to stderr.
func serverPID(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server without process_id")
}

// eventually is poll.Eventually (testenv imports pkg/store, whose tests use this package).
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Eventually(t, timeout, what, cond)
}
