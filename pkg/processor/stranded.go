package processor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

// strandedEvery is how often the depth loop looks for retry topics of
// other tiers (see checkStranded): each look lists every topic and may
// read a record of each such topic.
const strandedEvery = 5 * time.Minute

// errFound stops a read at its first record.
var errFound = errors.New("found")

// checkStranded looks for retry topics of this deployment (its topic
// prefix) that are not among the processor's tiers, a -retry-tiers changed
// from what it was, and that hold records the group has not processed:
// no processor reads them any more, so their events wait there unseen
// until retention deletes them (the raw topic still has them). Each such
// topic is logged at error level once, saying how to drain it, and again
// only after it was seen drained. Best effort: a look that cannot list
// the topics or every partition's offsets changes nothing, and the next
// tick looks again, not strandedEvery later. The first look runs while
// the workers are still joining their group: Kafka may answer the offset
// fetch of a group not created yet with GROUP_ID_NOT_FOUND, which is no
// failure but a group that has processed nothing. A topic whose read
// fails keeps its state until the next look.
func (p *Processor) checkStranded(ctx context.Context, adm *kadm.Client, opts []kgo.Opt, now time.Time) {
	if !p.strandedAt.IsZero() && now.Sub(p.strandedAt) < strandedEvery {
		return
	}
	prefix := strings.TrimSuffix(p.d.Topics.Raw, "raw") + "retry."
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		p.log.Debug("retry topics of other tiers not looked for", "error", err)
		return
	}
	var others []string
	for name := range tds {
		tier, ok := strings.CutPrefix(name, prefix)
		if _, err := time.ParseDuration(tier); ok && err == nil && !p.isRetry(name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	if len(others) == 0 {
		clear(p.stranded)
		p.strandedAt = now
		return
	}
	// A partition whose offsets did not list (its leader moving, say)
	// would pass for one holding nothing: the look waits for them all.
	starts, err := adm.ListStartOffsets(ctx, others...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		p.log.Debug("retry topics of other tiers not looked at", "error", err)
		return
	}
	ends, err := adm.ListEndOffsets(ctx, others...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		p.log.Debug("retry topics of other tiers not looked at", "error", err)
		return
	}
	// A group that does not exist yet has committed nothing: every
	// record of those topics waits.
	committed, err := adm.FetchOffsets(ctx, p.cfg.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		p.log.Debug("retry topics of other tiers not looked at", "error", err)
		return
	}
	p.strandedAt = now
	if p.stranded == nil {
		p.stranded = map[string]bool{}
	}
	for _, topic := range others {
		sp := kafka.Span{}
		starts.Each(func(s kadm.ListedOffset) {
			if s.Topic != topic || s.Err != nil {
				return
			}
			from := s.Offset
			if c, ok := committed.Lookup(topic, s.Partition); ok && c.Err == nil && c.At > from {
				from = c.At
			}
			if e, ok := ends.Lookup(topic, s.Partition); ok && e.Err == nil && e.Offset > from {
				sp[s.Partition] = [2]int64{from, e.Offset}
			}
		})
		// Offsets count transaction markers: a record read says one waits.
		waiting := false
		if len(sp) > 0 {
			err := kafka.ReadSpan(ctx, opts, topic, sp, func(*kgo.Record) error { waiting = true; return errFound })
			if err != nil && !errors.Is(err, errFound) {
				p.log.Debug("retry topic of another tier not read", "topic", topic, "error", err)
				continue
			}
		}
		switch {
		case waiting && !p.stranded[topic]:
			p.stranded[topic] = true
			p.log.Error("retry topic "+topic+" holds events that no processor reads: it is not one of -retry-tiers (INLET_RETRY_TIERS), which changed since they were written; they wait there until its retention deletes them. Run the processor with that tier among its -retry-tiers until the topic is drained (inlet_consumer_lag{topic=\""+topic+"\"} reads 0), or replay their raw records (inletctl replay)",
				"topic", topic, "retry_tiers", strings.Join(p.d.Topics.Retry, ","))
		case !waiting && p.stranded[topic]:
			delete(p.stranded, topic)
			p.log.Info("retry topic "+topic+" holds no more events this processor's group has not processed", "topic", topic)
		}
	}
}
