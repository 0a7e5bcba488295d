package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// diagnoseTimeout bounds one look at the raw topic: two or three requests
// to a broker that answers at once when it answers at all.
const diagnoseTimeout = 2 * time.Second

// diagnosisHealthy is the diagnosis when Kafka's metadata shows nothing
// that refuses writes.
const diagnosisHealthy = "every partition has a leader and enough in-sync replicas (a slow broker or network?)"

// A diagnoser says, in one log line, why Kafka may not be acknowledging
// writes to the raw topic, from Kafka's own metadata: partitions without a
// leader, and partitions with fewer in-sync replicas than
// min.insync.replicas (which refuse every acks=all write with
// NOT_ENOUGH_REPLICAS). franz-go retries those refusals internally and
// tells ingest only that the ack deadline passed, so without it "below
// min ISR" and "a slow broker" logged the same line.
//
// It is started when "not acknowledged by kafka" is logged at warn (once
// per unackedEvery), never on the success path: at most one look at a
// time, each bounded by timeout, in a goroutine of its own so no answer
// waits for it. close ends a look in progress and refuses new ones.
type diagnoser struct {
	adm     *kadm.Client
	topic   string
	log     *slog.Logger
	timeout time.Duration

	ctx    context.Context // ended by close
	cancel context.CancelFunc

	mu      sync.Mutex
	running bool
	closed  bool
	wg      sync.WaitGroup // the look in progress; Add only under mu, before closed
}

func newDiagnoser(adm *kadm.Client, topic string, log *slog.Logger) *diagnoser {
	ctx, cancel := context.WithCancel(context.Background())
	return &diagnoser{adm: adm, topic: topic, log: log, timeout: diagnoseTimeout, ctx: ctx, cancel: cancel}
}

// start begins a look at the raw topic unless one is in progress, the
// diagnoser is closed or its line would not be written; it never waits.
func (d *diagnoser) start() {
	if !d.log.Enabled(d.ctx, slog.LevelWarn) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || d.closed {
		return
	}
	d.running = true
	d.wg.Go(func() {
		defer func() {
			d.mu.Lock()
			d.running = false
			d.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(d.ctx, d.timeout)
		defer cancel()
		d.log.Warn("kafka diagnosis", d.diagnose(ctx)...)
	})
}

// close ends a look in progress (its line then says it was cut short) and
// waits for it, bounded by ctx. Later starts do nothing.
func (d *diagnoser) close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("kafka diagnosis still running at the drain deadline")
	}
}

// diagnose asks Kafka about the raw topic and returns the diagnosis line's
// attributes: what refuses writes (below_min_insync, no_leader,
// partition_errors), or healthy, or the error when Kafka could not be
// asked. Topic and partition numbers, counts and Kafka's error codes only:
// nothing secret.
func (d *diagnoser) diagnose(ctx context.Context) []any {
	attrs := []any{"topic", d.topic}
	// Metadata through the producer's client may come from its cache, at
	// most MetadataMinAge (250 ms) old: what the producer itself sees.
	topics, err := d.adm.ListTopics(ctx, d.topic)
	if err == nil {
		err = topics.Error()
	}
	td, ok := topics[d.topic]
	if err == nil && !ok {
		err = kerr.UnknownTopicOrPartition
	}
	if err != nil {
		return append(attrs, "error", fmt.Errorf("kafka could not be asked for the topic's metadata: %w", err))
	}
	minISR, minErr := d.minInsync(ctx)

	var noLeader, failed []int32
	failedBy := map[string][]int32{}
	type shortKey struct{ isr, replicas int }
	short := map[shortKey][]int32{}
	for _, p := range td.Partitions.Sorted() {
		switch {
		case p.Leader < 0 || errors.Is(p.Err, kerr.LeaderNotAvailable) || errors.Is(p.Err, kerr.NotLeaderForPartition):
			noLeader = append(noLeader, p.Partition)
			continue
		case p.Err != nil && !errors.Is(p.Err, kerr.ReplicaNotAvailable):
			// REPLICA_NOT_AVAILABLE: older brokers say so of a partition
			// with an offline follower; its leader and ISR are still given.
			failed = append(failed, p.Partition)
			failedBy[errText(p.Err)] = append(failedBy[errText(p.Err)], p.Partition)
			continue
		}
		below := len(p.ISR) < len(p.Replicas)
		if minErr == nil {
			below = len(p.ISR) < minISR
		}
		if below {
			k := shortKey{len(p.ISR), len(p.Replicas)}
			short[k] = append(short[k], p.Partition)
		}
	}

	if len(short) > 0 {
		keys := make([]shortKey, 0, len(short))
		for k := range short {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b shortKey) int { return cmp.Compare(short[a][0], short[b][0]) })
		groups := make([]string, 0, len(keys))
		for _, k := range keys {
			g := fmt.Sprintf("%s partitions %s: %d in-sync of %d", d.topic, partitionList(short[k]), k.isr, k.replicas)
			if minErr == nil {
				g += ", min.insync.replicas " + strconv.Itoa(minISR)
			}
			groups = append(groups, g)
		}
		if minErr == nil {
			attrs = append(attrs, "below_min_insync", strings.Join(groups, "; "))
		} else {
			// Without the threshold, every partition short of its replicas
			// is named: the ones below it are among them.
			attrs = append(attrs, "under_replicated", strings.Join(groups, "; "))
		}
	}
	if len(noLeader) > 0 {
		attrs = append(attrs, "no_leader", d.topic+" partitions "+partitionList(noLeader))
	}
	if len(failed) > 0 {
		codes := make([]string, 0, len(failedBy))
		for code := range failedBy {
			codes = append(codes, code)
		}
		slices.SortFunc(codes, func(a, b string) int { return cmp.Compare(failedBy[a][0], failedBy[b][0]) })
		groups := make([]string, 0, len(codes))
		for _, code := range codes {
			groups = append(groups, fmt.Sprintf("%s partitions %s: %s", d.topic, partitionList(failedBy[code]), code))
		}
		attrs = append(attrs, "partition_errors", strings.Join(groups, "; "))
	}
	if minErr != nil {
		attrs = append(attrs, "min_insync_replicas_error", minErr)
	}
	if len(short) == 0 && len(noLeader) == 0 && len(failed) == 0 {
		h := diagnosisHealthy
		if minErr != nil {
			h = "every partition has a leader and all its replicas in sync (a slow broker or network?)"
		}
		attrs = append(attrs, "healthy", h)
	}
	return attrs
}

// minInsync is the raw topic's min.insync.replicas: its own, else the
// broker default (Kafka describes a topic's config with the default it
// falls back to; a broker describes it too, for a topic description
// without it), else Kafka's default of 1. An error when Kafka refused both
// descriptions (a principal without DescribeConfigs).
func (d *diagnoser) minInsync(ctx context.Context) (int, error) {
	const key = "min.insync.replicas"
	from := func(rcs kadm.ResourceConfigs, err error) (int, bool, error) {
		if err != nil {
			return 0, false, err
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return 0, false, rc.Err
			}
			for _, c := range rc.Configs {
				if c.Key != key || c.Value == nil {
					continue
				}
				n, err := strconv.Atoi(*c.Value)
				if err != nil {
					return 0, false, fmt.Errorf("%s %q: %w", key, *c.Value, err)
				}
				return n, true, nil
			}
		}
		return 0, false, nil
	}
	n, ok, err := from(d.adm.DescribeTopicConfigs(ctx, d.topic))
	if ok || err != nil {
		return n, wrapConfigErr("topic", err)
	}
	n, ok, err = from(d.adm.DescribeBrokerConfigs(ctx))
	if err != nil {
		return 0, wrapConfigErr("broker", err)
	}
	if !ok {
		return 1, nil
	}
	return n, nil
}

func wrapConfigErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("describing the %s's configs: %w", what, err)
}

// errText is a Kafka error's name (NOT_LEADER_OR_FOLLOWER), else the error.
func errText(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// partitionList is "0,1,2".
func partitionList(ps []int32) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}
