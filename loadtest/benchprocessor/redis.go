package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTarget is the Redis the benchmark uses.
type redisTarget struct {
	url  string // "" : the dev stack's miniredis
	kind string // "real Redis (INLET_REDIS_URL)", "redis-server started here", "miniredis"
	// owned: nothing else uses it, so it may be flushed between modes.
	owned  bool
	proc   *exec.Cmd // the redis-server started here
	stopFn func()
}

// chooseRedis picks INLET_REDIS_URL, else a redis-server of our own if one is
// on PATH, else the embedded miniredis. want forces one: auto, url,
// server or miniredis.
func chooseRedis(ctx context.Context, want string) (*redisTarget, error) {
	url := os.Getenv("INLET_REDIS_URL")
	switch {
	case want == "miniredis":
		return &redisTarget{kind: "miniredis (embedded, in this process)", owned: true}, nil
	case want == "url" || (want == "auto" && url != ""):
		if url == "" {
			return nil, errors.New("-redis url: INLET_REDIS_URL is not set")
		}
		return &redisTarget{url: url, kind: "real Redis at " + redactURL(url) + " (INLET_REDIS_URL; keys under a fresh prefix, removed at the end)"}, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if want == "server" {
			return nil, errors.New("-redis server: redis-server is not on PATH")
		}
		return &redisTarget{kind: "miniredis (embedded, in this process: no INLET_REDIS_URL, no redis-server on PATH)", owned: true}, nil
	}
	return startRedis(ctx, path)
}

// startRedis runs redis-server on a free loopback port, without
// persistence, as a child process that stop ends.
func startRedis(ctx context.Context, path string) (*redisTarget, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "benchprocessor-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir, "--loglevel", "warning")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	t := &redisTarget{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), owned: true, proc: cmd}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited); os.RemoveAll(dir) }()
	t.stopFn = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			break
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.stop()
			return nil, fmt.Errorf("redis-server on port %d not answering PING: %s", port, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.kind = fmt.Sprintf("redis-server started here (pid %d, 127.0.0.1:%d, --save '' --appendonly no)", cmd.Process.Pid, port)
	return t, nil
}

// stop ends a redis-server started here; otherwise it does nothing.
func (t *redisTarget) stop() {
	if t.stopFn != nil {
		t.stopFn()
		t.stopFn = nil
	}
}

// cpu is the CPU time redis-server used so far (0 when not ours).
func (t *redisTarget) cpu() time.Duration {
	if t.proc == nil || t.proc.Process == nil {
		return 0
	}
	return procCPU(t.proc.Process.Pid)
}

// procCPU reads utime+stime of pid from /proc (Linux); 0 if unavailable.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// version asks the server its version.
func redisVersion(ctx context.Context, rdb *redis.Client) string {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

// clean empties Redis between modes: FLUSHDB when the Redis is ours,
// otherwise deletes the keys under prefix.
func (t *redisTarget) clean(ctx context.Context, rdb *redis.Client, prefix string) error {
	if t.owned {
		return rdb.FlushDB(ctx).Err()
	}
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}
