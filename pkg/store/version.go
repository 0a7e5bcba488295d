package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrServerTooOld is returned by CheckServer for a Redis older than 7.0:
// claims use SET … NX … GET (7.0) and confirms SET … GET (6.2), which older
// servers reject, and a claim never confirmed lets later duplicates
// through.
var ErrServerTooOld = errors.New("redis is older than 7.0, which the store needs (SET … NX … GET)")

// CheckServer reads the server's version (INFO) and returns an
// error wrapping ErrServerTooOld when it is below 7.0; on Redis Cluster
// every master's, naming the one too old. A server that does not report
// redis_version (some Redis-compatible servers) passes: the scripts then
// fail loudly if a command is missing. Errors reaching Redis are returned
// as they are, for the caller to decide (the processor starts anyway and
// waits for Redis).
func (s *Store) CheckServer(ctx context.Context) error {
	return s.eachMaster(ctx, func(ctx context.Context, c redis.Cmdable, node string) error {
		// Plain INFO: some servers (miniredis among them) refuse INFO server.
		info, err := c.Info(ctx).Result()
		if err != nil {
			return wrapErr(ctx, "info", err)
		}
		v, ok := infoField(info, "redis_version")
		if !ok {
			return nil
		}
		if major, ok := majorVersion(v); ok && major < 7 {
			if node != "" {
				return fmt.Errorf("%w: found %s on %s", ErrServerTooOld, v, node)
			}
			return fmt.Errorf("%w: found %s", ErrServerTooOld, v)
		}
		return nil
	})
}

// infoField finds "name:value" among INFO's lines.
func infoField(info, name string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), name+":"); ok {
			return v, true
		}
	}
	return "", false
}

// majorVersion is the leading number of a version such as "7.0.15".
func majorVersion(v string) (int, bool) {
	head, _, ok := strings.Cut(v, ".")
	if !ok {
		return 0, false
	}
	major, err := strconv.Atoi(head)
	return major, err == nil
}
