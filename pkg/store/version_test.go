package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fakeInfoServer answers INFO with info, HELLO with an error (RESP2 only)
// and every other command with OK: just enough of Redis for go-redis.
func fakeInfoServer(t *testing.T, info string) string {
	t.Helper()
	return fakeServer(t, func(args []string) string {
		if len(args) > 0 && strings.EqualFold(args[0], "INFO") {
			return bulk(info)
		}
		return "+OK\r\n"
	})
}

// bulk is s as a RESP bulk string.
func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// fakeServer is a RESP2 server on loopback whose replies reply writes (raw
// RESP) for each command, but HELLO, which it refuses (a RESP2-only
// server, so go-redis speaks RESP2).
func fakeServer(t *testing.T, reply func(args []string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || !strings.HasPrefix(line, "*") {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
					var args []string
					for range n {
						if _, err := r.ReadString('\n'); err != nil { // $len
							return
						}
						arg, err := r.ReadString('\n')
						if err != nil {
							return
						}
						args = append(args, strings.TrimSpace(arg))
					}
					out := "-ERR unknown command 'HELLO'\r\n"
					if len(args) == 0 || !strings.EqualFold(args[0], "HELLO") {
						out = reply(args)
					}
					if _, err := c.Write([]byte(out)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCheckServer(t *testing.T) {
	for _, tc := range []struct {
		info    string
		tooOld  bool
		comment string
	}{
		{"# Server\r\nredis_version:5.0.7\r\nredis_mode:standalone\r\n", true, "5.0"},
		{"# Server\r\nredis_version:6.0.16\r\n", true, "6.0"},
		{"# Server\r\nredis_version:6.2.14\r\n", true, "6.2"},
		{"# Server\r\nredis_version:7.0.15\r\n", false, "7.0"},
		{"# Server\r\nredis_version:10.1.0\r\n", false, "10.1"},
		{"# Server\r\nserver_name:something\r\n", false, "no version: passes"},
		{"# Server\r\nredis_version:unknown\r\n", false, "unparsable: passes"},
	} {
		t.Run(tc.comment, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: fakeInfoServer(t, tc.info), MaxRetries: -1})
			t.Cleanup(func() { _ = rdb.Close() })
			err := New(rdb).CheckServer(context.Background())
			if got := errors.Is(err, ErrServerTooOld); got != tc.tooOld || (!tc.tooOld && err != nil) {
				t.Fatalf("err = %v, want too old: %v", err, tc.tooOld)
			}
		})
	}
	t.Run("real and embedded servers pass", func(t *testing.T) {
		e := newMiniredisEnv(t)
		if err := New(e.rdb).CheckServer(context.Background()); err != nil {
			t.Fatalf("miniredis: %v", err)
		}
		if newEnv := realRedisEnv(t); newEnv != nil {
			if err := New(newEnv(t).rdb).CheckServer(context.Background()); err != nil {
				t.Fatalf("%s: %v", redisURLEnv, err)
			}
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		rdb := redis.NewClient(fastFailOptions(addr))
		t.Cleanup(func() { _ = rdb.Close() })
		if err := New(rdb).CheckServer(context.Background()); err == nil || !IsUnavailable(err) {
			t.Fatalf("err = %v, want an unavailable error", err)
		}
	})
}
