package main

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/store"
)

// breakdown observes the processor's Kafka requests (kgo hook) and Redis
// pipelines (go-redis hook): how many, and the wall time they took. Each
// processor worker handles one batch at a time, so these waits add up in
// its critical path (workers overlap each other's); what they do not
// explain is CPU (see -cpuprofile) or waiting for a fetch. It observes only
// and changes no behaviour.
type breakdown struct {
	mu    sync.Mutex
	kafka map[int16]*span
	redis map[string]*span
}

type span struct {
	n    int
	cmds int
	d    time.Duration
}

func newBreakdown() *breakdown {
	return &breakdown{kafka: map[int16]*span{}, redis: map[string]*span{}}
}

var _ kgo.HookBrokerE2E = (*breakdown)(nil)

// OnBrokerE2E counts a request from its creation in the client to its
// response (queueing behind other requests on the connection included).
func (b *breakdown) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	b.mu.Lock()
	s := b.kafka[key]
	if s == nil {
		s = &span{}
		b.kafka[key] = s
	}
	s.n++
	s.d += e.WriteWait + e.DurationE2E()
	b.mu.Unlock()
}

var _ redis.Hook = (*breakdown)(nil)

func (b *breakdown) DialHook(next redis.DialHook) redis.DialHook { return next }

func (b *breakdown) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		t := time.Now()
		err := next(ctx, cmd)
		b.addRedis(cmd.Name(), 1, time.Since(t))
		return err
	}
}

func (b *breakdown) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		t := time.Now()
		err := next(ctx, cmds)
		b.addRedis(storeOp(cmds), len(cmds), time.Since(t))
		return err
	}
}

func (b *breakdown) addRedis(op string, cmds int, d time.Duration) {
	b.mu.Lock()
	s := b.redis[op]
	if s == nil {
		s = &span{}
		b.redis[op] = s
	}
	s.n++
	s.cmds += cmds
	s.d += d
	b.mu.Unlock()
}

// storeOp names a pipeline by its distinct operations, in order of first
// appearance, e.g. "confirm+release": pkg/store's scripts by their SHA, its
// plain SET … GET commands as claim (NX) or confirm, others by name.
func storeOp(cmds []redis.Cmder) string {
	if len(cmds) == 0 {
		return "empty pipeline"
	}
	var ops []string
	for _, c := range cmds {
		op := "pipeline " + strings.ToLower(c.Name())
		if a := c.Args(); len(a) > 1 {
			switch strings.ToLower(c.Name()) {
			case "evalsha":
				sha, _ := a[1].(string)
				op = scriptOps[sha]
			case "eval":
				src, _ := a[1].(string)
				op = scriptOps[fmt.Sprintf("%x", sha1.Sum([]byte(src)))]
			case "set":
				op = "confirm"
				if slices.ContainsFunc(a, func(v any) bool { s, _ := v.(string); return strings.EqualFold(s, "nx") }) {
					op = "claim"
				}
			}
		}
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	return strings.Join(ops, "+")
}

var scriptOps = store.ScriptOps()

// kafkaKeyNames are the request keys the processor's client sends.
var kafkaKeyNames = map[int16]string{
	0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
	10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups",
	18: "ApiVersions", 22: "InitProducerID", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn",
	26: "EndTxn", 28: "TxnOffsetCommit", 68: "ConsumerGroupHeartbeat",
	71: "GetTelemetrySubscriptions", 72: "PushTelemetry",
}

// print writes the spans against the mode's wall time. Fetch requests are
// long polls that overlap the work, so their time is not comparable.
func (b *breakdown) print(out io.Writer, wall time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	fmt.Fprintf(out, "inlet wall-time breakdown over %.2fs (sequential per batch within a worker; workers overlap, so shares can add up past 100%%):\n", wall.Seconds())
	keys := make([]int16, 0, len(b.kafka))
	for k := range b.kafka {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y int16) int { return int(b.kafka[y].d - b.kafka[x].d) })
	for _, k := range keys {
		s := b.kafka[k]
		name := kafkaKeyNames[k]
		if name == "" {
			name = fmt.Sprintf("key %d", k)
		}
		note := ""
		if k == 1 {
			note = " (long polls, overlapping)"
		}
		fmt.Fprintf(out, "  kafka %-22s %6d requests %8.0fms  %6.2fms each  %5.1f%%%s\n", name, s.n, ms(s.d), ms(s.d)/float64(s.n), pct(s.d), note)
	}
	ops := make([]string, 0, len(b.redis))
	for k := range b.redis {
		ops = append(ops, k)
	}
	slices.SortFunc(ops, func(x, y string) int { return int(b.redis[y].d - b.redis[x].d) })
	for _, k := range ops {
		s := b.redis[k]
		fmt.Fprintf(out, "  redis %-22s %6d round trips %5.0fms  %6.2fms each  %5.1f%%  (%d commands, %.0f per trip)\n",
			k, s.n, ms(s.d), ms(s.d)/float64(s.n), pct(s.d), s.cmds, float64(s.cmds)/float64(s.n))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
