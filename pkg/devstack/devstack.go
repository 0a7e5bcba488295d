// Package devstack runs Inlet's infrastructure in-process: Kafka (kfake), a
// Confluent-compatible schema registry (srfake) and Redis (miniredis, or a
// real redis-server when a URL is given). `make run` and the fast tests use
// it; production points the same binaries at real services.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/inletdev/inlet/pkg/kafka"
)

// Config says where the stack listens and keeps its data.
type Config struct {
	// DataDir keeps Kafka's log, the registry's schemas and the embedded
	// Redis's keys across restarts. One stack at a time: Start locks it
	// (ErrDataDirInUse) until Close.
	// Empty keeps everything in memory (tests).
	DataDir string
	// Ports; 0 picks a free one.
	KafkaPort    int
	RegistryPort int
	RedisPort    int
	// RedisURL, when set, is used instead of an in-process miniredis.
	RedisURL string
	// CompactEvery runs log compaction on compacted topics (kfake's own
	// cleaner does not restart after a restart from DataDir). Compaction
	// holds the in-process broker: with a large .inlet it stalls acks for
	// seconds, so it runs once at start and then rarely. Default 6h.
	CompactEvery time.Duration
	// RedisSnapshotEvery is how often the embedded Redis is also saved
	// while running (with a DataDir), so a forced stop loses at most that
	// much; Close always saves. Default 1m.
	RedisSnapshotEvery time.Duration
	Log                *slog.Logger
}

// Stack is a running dev stack.
type Stack struct {
	Kafka       *kfake.Cluster
	Brokers     []string
	RegistryURL string
	RedisURL    string
	Miniredis   *miniredis.Miniredis // nil when RedisURL was given

	registry *persistentRegistry
	lock     *dirLock // the DataDir's, released last by Close
	// redisFile keeps the embedded Redis across restarts (see
	// redissnap.go); empty without a DataDir or with a real Redis.
	redisFile string
	log       *slog.Logger
	srv       *http.Server
	stop      chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
}

// Start starts the stack. Close stops it. With a DataDir held by another
// stack it fails with an error wrapping ErrDataDirInUse.
func Start(cfg Config) (*Stack, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CompactEvery == 0 {
		cfg.CompactEvery = 6 * time.Hour
	}
	if cfg.RedisSnapshotEvery == 0 {
		cfg.RedisSnapshotEvery = time.Minute
	}
	s := &Stack{stop: make(chan struct{}), log: cfg.Log}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.KafkaPort),
		kfake.BrokerConfigs(map[string]string{
			"message.max.bytes": strconv.Itoa(kafka.MaxMessageBytes),
		}),
		kfake.DefaultNumPartitions(1),
	}
	klog := &kafkaLog{log: cfg.Log}
	klog.loading.Store(true)
	opts = append(opts, kfake.WithLogger(klog))
	var regFile string
	regMissing := false
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, err
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
		kdir := filepath.Join(cfg.DataDir, "kafka")
		if err := os.MkdirAll(kdir, 0o755); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(kdir))
		regFile = filepath.Join(cfg.DataDir, "registry.json")
		_, err = os.Stat(regFile)
		regMissing = errors.Is(err, fs.ErrNotExist)
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process kafka: %w", err)
	}
	s.Kafka = c
	s.Brokers = c.ListenAddrs()
	if cfg.DataDir != "" {
		c.Compact() // before any client connects, so nobody waits on it
	}
	klog.loading.Store(false)
	if cfg.DataDir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), recoverTimeout)
		err := checkRecovered(ctx, s.Brokers, regMissing, regFile, cfg.Log)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	s.registry, err = newPersistentRegistry(regFile, cfg.Log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RegistryPort)))
	if err != nil {
		return nil, fmt.Errorf("schema registry listen: %w", err)
	}
	s.RegistryURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.registry, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("schema registry stopped", "error", err)
		}
	})

	if cfg.RedisURL != "" {
		s.RedisURL = cfg.RedisURL
	} else {
		m := miniredis.NewMiniRedis()
		if cfg.DataDir != "" {
			s.redisFile = filepath.Join(cfg.DataDir, "redis.gob")
			n, saved, err := loadRedis(m, s.redisFile, time.Now())
			if err != nil {
				return nil, fmt.Errorf("embedded redis: %w", err)
			}
			if !saved.IsZero() {
				cfg.Log.Info("embedded redis: keys restored", "keys", n, "saved_at", saved.Format(time.RFC3339), "file", s.redisFile)
			}
		}
		if err := m.StartAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.RedisPort))); err != nil {
			return nil, fmt.Errorf("start miniredis: %w", err)
		}
		s.Miniredis = m
		s.RedisURL = "redis://" + m.Addr() + "/0"
		// miniredis only ages keys when told to: without this, claim
		// leases and dedup windows would never expire.
		s.wg.Go(func() { ageKeys(m, s.stop) })
		if s.redisFile != "" {
			// Close saves too; this is for a stop that skips Close (a
			// second Ctrl-C, SIGKILL).
			s.every(cfg.RedisSnapshotEvery, func(now time.Time) {
				if _, _, err := saveRedis(m, s.redisFile, now); err != nil {
					s.log.Warn("embedded redis: periodic snapshot not written", "file", s.redisFile, "error", err)
				}
			})
		}
	}

	s.every(cfg.CompactEvery, func(time.Time) { c.Compact() })
	ok = true
	return s, nil
}

// Close stops everything; Kafka flushes its data directory. Safe to call
// more than once.
func (s *Stack) Close() {
	s.once.Do(func() {
		close(s.stop)
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.srv.Shutdown(ctx)
			cancel()
		}
		s.wg.Wait()
		if s.Miniredis != nil {
			// Closed first (the data stays): nobody writes while the
			// snapshot is taken.
			s.Miniredis.Close()
			if s.redisFile != "" {
				n, skipped, err := saveRedis(s.Miniredis, s.redisFile, time.Now())
				switch {
				case err != nil:
					s.log.Error("embedded redis: snapshot not written; the next start loads the previous one", "file", s.redisFile, "error", err)
				case len(skipped) > 0:
					s.log.Warn("embedded redis: keys saved, some left out (a type Inlet does not write)", "keys", n, "left_out", len(skipped), "first", skipped[0], "file", s.redisFile)
				default:
					s.log.Info("embedded redis: keys saved", "keys", n, "file", s.redisFile)
				}
			}
		}
		if s.Kafka != nil {
			s.Kafka.Close()
		}
		s.lock.release()
	})
}

// ageKeys ages m's keys by the time passed, until stop closes. One
// FastForward walks every key under miniredis' global lock (about 150 ms at
// 270k keys, here): at a fixed 100 ms tick Redis was locked nearly all the
// time past 150k keys, and the processor stalled on timeouts. The pause
// after each is 20 times what it took, 100 ms at least, so ageing holds
// the lock 5% of the time at most; expiries are that much late, against
// leases of a minute and dedup windows of days.
func ageKeys(m *miniredis.Miniredis, stop <-chan struct{}) {
	last := time.Now()
	t := time.NewTimer(agePause(0))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		start := time.Now()
		m.FastForward(start.Sub(last))
		last = start
		t.Reset(agePause(time.Since(start)))
	}
}

// agePause is the pause after a FastForward that took took.
func agePause(took time.Duration) time.Duration {
	const minPause, share = 100 * time.Millisecond, 20
	return max(minPause, share*took)
}

// every calls f with the tick's time every d, on a goroutine of its own,
// until Close.
func (s *Stack) every(d time.Duration, f func(now time.Time)) {
	s.wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-t.C:
				f(now)
			}
		}
	})
}
