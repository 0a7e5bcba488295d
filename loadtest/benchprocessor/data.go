package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
)

// The one source every event comes from, and how the processor handles it.
const (
	sourceName  = "billing"
	eventType   = "invoice.updated"
	sourcesYAML = `
sources:
  billing:
    kind: standard-webhooks
    secrets_env: [BENCH_BILLING_SECRET]
    dedup_window: 1h
    events:
      "*":
        contract: standardwebhooks/event
        entity_key: "billing:{/data/id}"
        natural_key: "{/type}:{/data/id}:{/data/seq}"
        occurred_at: /timestamp
`
)

// updatesPerEntity is how many successive updates each entity gets.
const updatesPerEntity = 4

// event is one record of the raw topic.
type event struct {
	msg    int // Standard Webhooks message id: equal for a duplicate and its original
	entity int
	seq    int // 1..updatesPerEntity; a higher seq has a later timestamp
	dup    bool
}

// workload is the raw topic's content, in produce order, and the outcomes a
// correct processor must reach on it.
type workload struct {
	events     []event
	partitions int
	size       int
	unique     int // distinct events (not duplicates)
	dups       int // re-sent events: same message id and body as an earlier one
	stale      int // older updates placed after a newer update of their entity
	// keyed partitions by idempotency key instead of by entity.
	keyed bool
}

// newWorkload builds n events: dup·n of them re-send an earlier event, and
// ooo·n older updates of an entity come right after a newer one. Every
// record of an entity goes to the same partition (entity mod partitions), so
// partition order is entity order and the expected outcomes are exact:
// processed = unique − stale, stale, duplicate = dups. (Ingest keys the raw
// topic by idempotency key, which would spread an entity over partitions and
// make the stale count depend on scheduling; throughput does not depend on
// it.) The same seed gives the same workload.
func newWorkload(n, partitions, size int, dup, ooo float64, seed uint64) (*workload, error) {
	w := &workload{partitions: partitions, size: size}
	w.dups = int(float64(n)*dup + 0.5)
	w.unique = n - w.dups
	w.stale = int(float64(n)*ooo + 0.5)
	entities := (w.unique + updatesPerEntity - 1) / updatesPerEntity
	// Disjoint pairs (seq 1,2) and (3,4) of full entities can be swapped.
	full := w.unique / updatesPerEntity
	if w.stale > full*(updatesPerEntity/2) || w.unique < 1 {
		return nil, fmt.Errorf("workload: %d events with %.0f%% duplicates cannot hold %d out-of-order pairs", n, dup*100, w.stale)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	// Updates go out seq-major (every entity's seq 1, then every seq 2...),
	// so two updates of an entity are far apart in the stream.
	uniq := make([]event, 0, w.unique)
	for seq := 1; seq <= updatesPerEntity; seq++ {
		for e := range entities {
			if e*updatesPerEntity+seq > w.unique && e >= full {
				continue // the last, partial entity
			}
			uniq = append(uniq, event{entity: e, seq: seq})
		}
	}
	uniq = uniq[:w.unique]
	pos := make(map[[2]int]int, len(uniq)) // (entity, seq) → index in uniq
	for i, ev := range uniq {
		pos[[2]int{ev.entity, ev.seq}] = i
	}
	// Out of order: swap the places of seq s and s+1 of chosen entities.
	perm := rng.Perm(full)
	for k := range w.stale {
		e := perm[k%full]
		s := 1 + 2*(k/full) // first round pairs (1,2), second round (3,4)
		a, b := pos[[2]int{e, s}], pos[[2]int{e, s + 1}]
		uniq[a], uniq[b] = uniq[b], uniq[a]
	}
	for i := range uniq {
		uniq[i].msg = i
	}

	// Duplicates: re-send chosen events 1..maxGap records after their
	// original, so some land in the original's batch and most in a later one.
	const maxGap = 2000
	type placed struct {
		at float64
		ev event
	}
	all := make([]placed, 0, n)
	for i, ev := range uniq {
		all = append(all, placed{float64(i), ev})
	}
	for _, i := range rng.Perm(w.unique)[:w.dups] {
		d := uniq[i]
		d.dup = true
		all = append(all, placed{float64(i+1+rng.IntN(maxGap)) - 0.5, d})
	}
	slices.SortStableFunc(all, func(a, b placed) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
	w.events = make([]event, len(all))
	for i, p := range all {
		w.events[i] = p.ev
	}
	return w, nil
}

var baseTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// timestamp is when update seq of entity happened: later seqs are later.
func timestamp(entity, seq int) string {
	return baseTime.Add(time.Duration(entity)*time.Second + time.Duration(seq)*time.Hour).Format(time.RFC3339)
}

func msgID(msg int) string { return fmt.Sprintf("msg_%010d", msg) }

// words pad a body with text that compresses like prose (snappy ≈ 1.5-2×):
// padding of one repeated byte would compress ~20× and make every Kafka
// transfer unrealistically cheap.
var words = strings.Fields(`invoice customer payment amount due paid open draft void total
	subtotal tax discount line item quantity price currency period start end status
	billing reason subscription plan product account address city country postal
	email phone name description memo footer number receipt attempt next retry
	collection method charge refund dispute balance credit note metadata order
	shipping tracking carrier weight unit hour day month year renewal trial`)

// body is the Standard Webhooks payload of ev, padded to size bytes. The
// padding depends on the message id only, so a duplicate re-sends the same
// bytes.
func body(ev event, size int) []byte {
	head := fmt.Sprintf(`{"type":%q,"timestamp":%q,"data":{"id":"inv_%08d","seq":%d,"amount":%d,"currency":"usd","customer":"cus_%06d","note":"`,
		eventType, timestamp(ev.entity, ev.seq), ev.entity, ev.seq, 100*ev.seq+ev.entity%1000, ev.entity%100000)
	const tail = `"}}`
	pad := max(size-len(head)-len(tail), 0)
	rng := rand.New(rand.NewPCG(uint64(ev.msg), 0x5eed))
	b := make([]byte, 0, size)
	b = append(b, head...)
	for n := 0; n < pad; {
		w := words[rng.IntN(len(words))]
		if rng.IntN(4) == 0 {
			w = strconv.Itoa(rng.IntN(100000))
		}
		if n > 0 {
			w = " " + w
		}
		w = w[:min(len(w), pad-n)]
		b = append(b, w...)
		n += len(w)
	}
	return append(b, tail...)
}

// envelopeFor is ev as ingest would have wrapped it; i (the record's place
// in the stream) makes the envelope id and receive time distinct for a
// duplicate.
func envelopeFor(ev event, i, size int) *envelope.Envelope {
	id := msgID(ev.msg)
	return &envelope.Envelope{
		ID:             "env_" + strconv.Itoa(i),
		Source:         sourceName,
		EventType:      eventType,
		EventID:        id,
		IdempotencyKey: envelope.IdempotencyKey(sourceName, id),
		SchemaVersion:  "v1",
		// Received after every business time of the workload (those span
		// a few hours from baseTime): the processor refuses business
		// times too far after receipt (source max_future).
		ReceivedAt:    baseTime.Add(24*time.Hour + time.Duration(i)*time.Millisecond),
		CorrelationID: "corr_" + strconv.Itoa(i),
		Channel:       envelope.ChannelWebhook,
		Headers:       map[string]string{"webhook-id": id},
		Payload:       body(ev, size),
		ContentType:   "application/json",
	}
}

// batchBytes sums what produced batches weighed before and after
// compression.
type batchBytes struct{ raw, compressed atomic.Int64 }

func (b *batchBytes) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	b.raw.Add(int64(m.UncompressedBytes))
	b.compressed.Add(int64(m.CompressedBytes))
}

// load writes the workload to topic as ingest does (Confluent-framed
// envelopes, idempotency key, correlation/source/type headers, snappy), with
// each entity's records on partition entity mod partitions (or, keyed, on
// the idempotency key's hash partition). It returns the bytes written before
// and after compression.
func load(ctx context.Context, brokers []string, topic string, codec *envelope.Codec, w *workload) (raw, compressed int64, err error) {
	var bb batchBytes
	part := kgo.ManualPartitioner()
	if w.keyed {
		part = kgo.StickyKeyPartitioner(nil) // murmur2 of the key, as Kafka's default
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(part),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.WithHooks(&bb),
	)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	errc := make(chan error, 1)
	for i, ev := range w.events {
		e := envelopeFor(ev, i, w.size)
		val, err := codec.Encode(e)
		if err != nil {
			return 0, 0, err
		}
		rec := &kgo.Record{
			Topic:     topic,
			Partition: int32(ev.entity % w.partitions),
			Key:       []byte(e.IdempotencyKey),
			Value:     val,
			Timestamp: e.ReceivedAt,
			Headers: []kgo.RecordHeader{
				{Key: "correlation-id", Value: []byte(e.CorrelationID)},
				{Key: "inlet-source", Value: []byte(e.Source)},
				{Key: "inlet-event-type", Value: []byte(e.EventType)},
			},
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	select {
	case err := <-errc:
		return 0, 0, fmt.Errorf("load raw topic: %w", err)
	default:
		return bb.raw.Load(), bb.compressed.Load(), nil
	}
}
