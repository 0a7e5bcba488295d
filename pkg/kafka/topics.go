package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxMessageBytes is the topic max.message.bytes (and producer batch limit)
// Inlet uses: room for the largest accepted body (per-source limit, 1 MiB by
// default, up to MaxBodyBytes) plus the envelope and headers around it.
const MaxMessageBytes = 4 << 20

// FailureHeadroom is what every raw record leaves free below
// MaxMessageBytes for the headers the processor adds when the event fails
// (error history, origin, attempt, due time, reason, runbook, trace
// context): the retry, dead-letter or invalid copy of the largest raw
// record must still fit, or the event could be written nowhere.
const FailureHeadroom = 64 << 10

// MaxRawRecordBytes bounds a raw record, as RecordSize counts it.
const MaxRawRecordBytes = MaxMessageBytes - FailureHeadroom

// MaxBodyBytes is the largest per-source body limit: a raw record less
// room for the envelope's other fields and the headers ingest keeps.
const MaxBodyBytes = MaxRawRecordBytes - 64<<10

// RecordFraming is room for what a record batch adds around one record's
// key, value and headers: the batch header and the varint lengths.
const RecordFraming = 256

// RecordSize bounds r's size in a record batch of its own, the figure
// max.message.bytes limits.
func RecordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + RecordFraming
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10 // and their varint lengths
	}
	return n
}

// DefaultRetryTiers are the retry delays DESIGN.md names.
var DefaultRetryTiers = []time.Duration{30 * time.Second, 2 * time.Minute, 15 * time.Minute}

// ParseRetryTiers reads retry tier delays as the -retry-tiers flag of every
// service and command takes them ("30s", "2m", ...); each must be positive.
func ParseRetryTiers(ss []string) ([]time.Duration, error) {
	var out []time.Duration
	for _, s := range ss {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("retry tier %q: want a positive duration such as 30s", s)
		}
		out = append(out, d)
	}
	return out, nil
}

// Topics holds every topic name Inlet uses, derived from one prefix.
type Topics struct {
	Raw   string
	Retry []string // one per tier, in tier order
	// RetryTiers are the delays of the Retry topics, index for index.
	RetryTiers []time.Duration
	DLQ        string
	Invalid    string
	Processed  string
	State      string
	Audit      string
}

// TopicNames derives the names for prefix and the retry tiers, e.g.
// inlet.raw, inlet.retry.30s, inlet.dlq.
func TopicNames(prefix string, tiers []time.Duration) Topics {
	t := Topics{
		Raw:       prefix + ".raw",
		DLQ:       prefix + ".dlq",
		Invalid:   prefix + ".invalid",
		Processed: prefix + ".processed",
		State:     prefix + ".state",
		Audit:     prefix + ".ops.audit",
	}
	for _, d := range tiers {
		t.Retry = append(t.Retry, prefix+".retry."+TierName(d))
		t.RetryTiers = append(t.RetryTiers, d)
	}
	return t
}

// TierName renders a tier delay the way topic names carry it: 30s, 2m, 1h30m.
func TierName(d time.Duration) string {
	// Duration.String gives 2m0s and 1h0m0s; drop the zero tails.
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// RawSubject is the schema registry subject of the raw topic's values.
func (t Topics) RawSubject() string { return t.Raw + "-value" }

// ProcessedSubject is the subject of the processed topic's records of the
// Avro record named fullName (the record name strategy per topic: one
// topic carries one schema per contract).
func (t Topics) ProcessedSubject(fullName string) string { return t.Processed + "-" + fullName }

// StateSubject is ProcessedSubject for the state topic, whose records carry
// the same schemas: tools that look a schema up by subject (ksqlDB, Flink,
// catalogs) find it under the state topic's name too.
func (t Topics) StateSubject(fullName string) string { return t.State + "-" + fullName }

// TopicSpec is a topic with the configs it is created with.
type TopicSpec struct {
	Name    string
	Configs map[string]string
}

// Specs returns the topics with their configs as DESIGN.md lays them out.
func (t Topics) Specs() []TopicSpec {
	maxMsg := strconv.Itoa(MaxMessageBytes)
	long := strconv.FormatInt((90 * 24 * time.Hour).Milliseconds(), 10)
	week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	compact := func(name string) TopicSpec {
		return TopicSpec{name, map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "max.message.bytes": maxMsg}}
	}
	del := func(name, retention string) TopicSpec {
		return TopicSpec{name, map[string]string{"cleanup.policy": "delete", "retention.ms": retention, "max.message.bytes": maxMsg}}
	}
	specs := []TopicSpec{compact(t.Raw)}
	for _, r := range t.Retry {
		specs = append(specs, del(r, week))
	}
	return append(specs,
		del(t.DLQ, long),
		del(t.Invalid, long),
		del(t.Processed, week),
		compact(t.State),
		compact(t.Audit),
	)
}

// WithMinInsync returns specs with min.insync.replicas set to n on those
// that do not set it, or specs as they are when n is 0 (the broker's
// default).
func WithMinInsync(specs []TopicSpec, n int) []TopicSpec {
	if n <= 0 {
		return specs
	}
	out := make([]TopicSpec, len(specs))
	for i, s := range specs {
		cfg := maps.Clone(s.Configs)
		if cfg == nil {
			cfg = map[string]string{}
		}
		if _, ok := cfg[configMinInsync]; !ok {
			cfg[configMinInsync] = strconv.Itoa(n)
		}
		out[i] = TopicSpec{Name: s.Name, Configs: cfg}
	}
	return out
}

const configMinInsync = "min.insync.replicas"

// Undurable is a topic whose acks=all writes one broker can hold alone:
// replicated, but with min.insync.replicas 1; or of one replica on a
// cluster of several brokers (Unreplicated).
type Undurable struct {
	Topic             string
	Replication       int
	MinInsyncReplicas int
	// Brokers is the cluster's broker count, set for an Unreplicated
	// topic.
	Brokers int
}

// Unreplicated reports a topic of one replica on a cluster that could
// hold more: min.insync.replicas cannot help it, only more replicas.
func (u Undurable) Unreplicated() bool { return u.Replication < 2 }

func (u Undurable) String() string {
	if u.Unreplicated() {
		return fmt.Sprintf("%s (replication %d on a cluster of %d brokers)", u.Topic, u.Replication, u.Brokers)
	}
	return fmt.Sprintf("%s (replication %d, min.insync.replicas %d)", u.Topic, u.Replication, u.MinInsyncReplicas)
}

// CheckDurability lists the topics of names whose acks=all writes can be
// acknowledged while one broker alone holds them: those replicated (2
// replicas or more) with min.insync.replicas below 2 (the broker's
// default included), which acknowledge on the leader alone once the others
// fall out of sync; and, on a cluster of two brokers or more, those of one
// replica, whose every write lives on one broker's disk. A topic of one
// replica on a one-broker cluster (a development setup, where nothing
// more is possible) is not listed, nor a topic that does not exist.
func CheckDurability(ctx context.Context, adm *kadm.Client, names ...string) ([]Undurable, error) {
	if len(names) == 0 {
		return nil, nil
	}
	meta, err := adm.Metadata(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topics: %w", err)
	}
	details, brokers := meta.Topics, len(meta.Brokers)
	var out []Undurable
	var replicated []string
	rf := map[string]int{}
	for _, name := range names {
		td, ok := details[name]
		if !ok || td.Err != nil {
			continue
		}
		n := 0
		for _, p := range td.Partitions {
			if k := len(p.Replicas); n == 0 || k < n {
				n = k
			}
		}
		switch {
		case n >= 2:
			replicated = append(replicated, name)
			rf[name] = n
		case n == 1 && brokers >= 2:
			out = append(out, Undurable{Topic: name, Replication: 1, Brokers: brokers})
		}
	}
	if len(replicated) > 0 {
		cfgs, err := adm.DescribeTopicConfigs(ctx, replicated...)
		if err != nil {
			return nil, fmt.Errorf("describe topic configs: %w", err)
		}
		for _, rc := range cfgs {
			if rc.Err != nil {
				return nil, fmt.Errorf("describe configs of %s: %w", rc.Name, rc.Err)
			}
			for _, c := range rc.Configs {
				if c.Key != configMinInsync || c.Value == nil {
					continue
				}
				if n, err := strconv.Atoi(*c.Value); err == nil && n < 2 {
					out = append(out, Undurable{Topic: rc.Name, Replication: rf[rc.Name], MinInsyncReplicas: n})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Undurable) int { return strings.Compare(a.Topic, b.Topic) })
	return out, nil
}

// EnsureTopics creates the topics that do not exist yet, with their configs.
// Existing topics are not altered: their settings are the operator's. Safe to
// call from several processes at once.
//
// A principal without the CREATE permission (a managed cluster whose
// topics the platform team makes) is refused every CreateTopics, existing
// topics included: a refused topic counts as ensured when it exists.
// Listing only then, not first, matters: franz-go answers the client's
// next requests (a replay's ListOffsets on the topic it just made) from a
// listing of the last second, which said "unknown".
func EnsureTopics(ctx context.Context, adm *kadm.Client, partitions, replication int, specs []TopicSpec) error {
	var errs []error
	refused := map[string]error{} // by topic, why its creation was refused
	var created []string
	for _, s := range specs {
		configs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(ctx, int32(partitions), int16(replication), configs, s.Name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			created = append(created, s.Name)
		case errors.Is(err, kerr.TopicAlreadyExists):
		case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
			refused[s.Name] = err
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w", s.Name, err))
		}
	}
	if len(refused) > 0 {
		names := slices.Sorted(maps.Keys(refused))
		existing, err := adm.ListTopics(ctx, names...)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list topics %v this client may not create: %w", names, err))...)
		}
		for _, name := range names {
			td, ok := existing[name]
			switch {
			case ok && td.Err == nil:
			case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
				errs = append(errs, fmt.Errorf("create topic %s: %w, and it does not exist: create it (docs/run-on-real-kafka.md lists the settings)", name, refused[name]))
			default:
				errs = append(errs, fmt.Errorf("create topic %s: %w; describe it: %w", name, refused[name], td.Err))
			}
		}
	}
	if len(errs) == 0 && len(created) > 0 {
		awaitServed(ctx, adm, created)
	}
	return errors.Join(errs...)
}

// maxServeWait bounds awaitServed.
const maxServeWait = 10 * time.Second

// awaitServed waits until the brokers serve the topics just created: a
// KRaft broker answers CreateTopics once the controller has a topic and
// serves it once it has applied that, answering UNKNOWN_TOPIC_OR_PARTITION
// (or no leader) in between, and the first read of a topic just made (the
// depth tracker's, a requeue's audit read) failed now and then. Best
// effort: past maxServeWait, or on another error (a principal that may
// create but not describe), it returns, as EnsureTopics did before.
func awaitServed(ctx context.Context, adm *kadm.Client, topics []string) {
	ctx, cancel := context.WithTimeout(ctx, maxServeWait)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		starts, err := adm.ListStartOffsets(ctx, topics...)
		if err == nil {
			err = starts.Error()
		}
		if err == nil || !(errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.LeaderNotAvailable) || errors.Is(err, kerr.NotLeaderForPartition)) {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}
