package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inletdev/inlet/pkg/kafka"
)

// ProducerOpts are the producer options the ack contract needs: idempotent
// acks=all writes (franz-go's default, restated so nobody turns it off),
// linger 0 so no request waits on a timer, and batches large enough for the
// largest accepted body. Concurrent webhooks share batches through the
// writer's lanes (see lane), which hand a client the records that arrived
// during its previous round all at once.
//
// Even a short linger is a bad trade: 100 µs measured +10% req/s at 16 and
// 64 connections (bigger batches), nothing at 256, and one connection fell
// from 8.2k to 0.75k req/s with p50 0.10 → 1.34 ms: the linger timer fires
// far later than asked.
//
// Compression is snappy: batches are small (a few to a few dozen records),
// and on such batches franz-go's snappy (s2) costs about half of lz4's CPU
// per record (≈0.9 µs vs ≈2 µs for a 1 KiB event at 4 records per batch)
// and compresses Stripe-like JSON better (2.8x vs 2.4x there). Measured with
// `go run ./loadtest/benchingest -count 3 -modes inlet` against lz4:
// +3%/+8%/±0% req/s at 16/64/256 connections. No compression measured
// within a few percent of snappy and would roughly triple the size of the
// compacted raw topic, which is kept forever.
func ProducerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes),
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()),
		kgo.MaxBufferedBytes(256 << 20),
		kgo.MaxBufferedRecords(100000),
		// Partitions added to the raw topic (scaling out) are written to
		// from the next metadata refresh: every 5 min by franz-go's
		// default, so load moved onto them only that late.
		kgo.MetadataMaxAge(10 * time.Second),
		// A broker blip holds a failing partition's produces until the
		// next metadata refresh: see kafka.MetadataMinAge (ingest
		// answered 503 for 4.7 s after each blip with franz-go's 5 s).
		kgo.MetadataMinAge(kafka.MetadataMinAge),
	}
}

// Producers are the Kafka clients ingest writes through, each built with
// ProducerOpts and each fed by a lane of its own (see lane): one round of
// records at a time, so more clients put more rounds in flight. A record
// goes to the client chosen by the Kafka hash of its key: one key (one
// delivery and its retries) always goes through one client, so its records
// stay in order, and when the client count divides the partition count
// each partition is written by one client and its batches are not split.
//
// Measured with `go run ./loadtest/benchingest` on 6 partitions and 2
// cores, interleaved: with lanes, 2 clients against 1 gave 24.0k vs
// 20.1–21.6k req/s at 16 connections and 36.1–36.8k vs 31.4–33.5k at 64
// (33–46k vs 34–42k at 256); 3 clients were no better than 2. Before
// lanes, 2 clients beat 1 by 16–40% and 4 were slower than 2.
type Producers []*kgo.Client

// NewProducers returns n clients built with opts and ProducerOpts.
func NewProducers(n int, opts ...kgo.Opt) (Producers, error) {
	if n < 1 {
		return nil, errors.New("ingest: at least one producer is needed")
	}
	p := make(Producers, 0, n)
	for range n {
		cl, err := kgo.NewClient(append(slices.Clip(opts), ProducerOpts()...)...)
		if err != nil {
			p.Close()
			return nil, err
		}
		p = append(p, cl)
	}
	return p, nil
}

// Close closes every client.
func (p Producers) Close() {
	for _, cl := range p {
		cl.Close()
	}
}

// Flush waits until every client's buffered records are acknowledged or
// failed, bounded by ctx.
func (p Producers) Flush(ctx context.Context) error {
	var errs []error
	for _, cl := range p {
		errs = append(errs, cl.Flush(ctx))
	}
	return errors.Join(errs...)
}

// TopicExists asks Kafka for topic's metadata, without creating it: an
// error when no broker answers, one wrapping kerr.UnknownTopicOrPartition
// when Kafka has no such topic. The clients share their brokers, so one
// asks for all.
func (p Producers) TopicExists(ctx context.Context, topic string) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, p[0])
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", topic, err)
		}
	}
	return nil
}

// keyHash is franz-go's default partitioner, used for the Kafka (murmur2)
// hash of a key alone: for a keyed record it is a pure function.
var keyHash = kgo.StickyKeyPartitioner(nil).ForTopic("")

// index returns the position of the client that writes r.
func (p Producers) index(r *kgo.Record) int {
	if len(p) == 1 || r.Key == nil {
		return 0
	}
	return keyHash.Partition(r, len(p))
}

// ErrNotAcknowledged is returned when Kafka did not acknowledge a write
// before the deadline (or refused it). The caller answers 503: the record
// may or may not be on the log, and the sender's retry is deduplicated
// downstream.
var ErrNotAcknowledged = errors.New("kafka did not acknowledge the write in time")

// writer produces records, through one lane per client (see lane), and
// waits for their acknowledgements.
type writer struct {
	producers Producers
	lanes     []*lane
	// waiters are reused across writeOne calls: a channel and its callback
	// per webhook were 3 of its allocations.
	waiters sync.Pool // of *waiter
}

// waiter receives one record's acknowledgement.
type waiter struct {
	ch   chan error
	done func(*kgo.Record, error) // sends to ch; never blocks
}

func newWriter(p Producers) *writer {
	w := &writer{producers: p}
	for _, cl := range p {
		w.lanes = append(w.lanes, newLane(cl))
	}
	w.waiters.New = func() any {
		wt := &waiter{ch: make(chan error, 1)}
		wt.done = func(_ *kgo.Record, err error) { wt.ch <- err }
		return wt
	}
	return w
}

// produce hands r to its client's lane.
func (w *writer) produce(ctx context.Context, r *kgo.Record, done func(*kgo.Record, error)) {
	w.lanes[w.producers.index(r)].produce(ctx, r, done)
}

// drain hands every queued record to its client and refuses new ones; see
// lane.drain.
func (w *writer) drain(ctx context.Context) error {
	var errs []error
	for _, l := range w.lanes {
		errs = append(errs, l.drain(ctx))
	}
	return errors.Join(errs...)
}

// writeOne produces r and returns nil once Kafka acknowledged it, or an
// error wrapping ErrNotAcknowledged when it refused or ctx ended first (the
// record may still land then, which is harmless: the sender retries and
// the retry is deduplicated downstream).
func (w *writer) writeOne(ctx context.Context, r *kgo.Record) error {
	wt := w.waiters.Get().(*waiter)
	w.produce(ctx, r, wt.done)
	select {
	case err := <-wt.ch:
		w.waiters.Put(wt) // drained: ready for the next record
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotAcknowledged, err)
		}
		return nil
	case <-ctx.Done():
		// The callback still comes, later: wt is left to it, not reused.
		return fmt.Errorf("%w: %w", ErrNotAcknowledged, context.Cause(ctx))
	}
}

// acks collects the acknowledgements of records produced one by one, as a
// streamed batch is read. Its memory grows with the records produced, not
// with the source's batch.max_lines: every authenticated batch allocated
// that many slots up front.
type acks struct {
	ctx  context.Context // the records' produce context
	sent int

	mu    sync.Mutex
	done  []ack         // outcomes not yet taken by wait
	ready chan struct{} // signalled, without blocking, when done grows
}

type ack struct {
	i   int
	err error
}

// stream starts a batch whose records are produced under ctx: once it
// ends, a record not yet handed to its client is not written, and the
// client fails those it can still withdraw (see lane and kgo.Client.Produce).
func (w *writer) stream(ctx context.Context) *acks {
	return &acks{ctx: ctx, ready: make(chan struct{}, 1)}
}

// produce sends r as item i of the batch. The callback never blocks.
func (a *acks) produce(w *writer, i int, r *kgo.Record) {
	a.sent++
	w.produce(a.ctx, r, func(_ *kgo.Record, err error) {
		a.mu.Lock()
		a.done = append(a.done, ack{i, err})
		a.mu.Unlock()
		select {
		case a.ready <- struct{}{}:
		default: // already signalled; wait takes everything done
		}
	})
}

// wait returns the outcome of the items produced, keyed by item index: nil
// when acknowledged, else an error wrapping ErrNotAcknowledged. If ctx ends
// first, items without an outcome yet are missing from the map and late is
// the error to report for them. ctx bounds only the wait: the caller ends
// the produce context, if the records are to be given up, once it returns.
func (a *acks) wait(ctx context.Context) (settled map[int]error, late error) {
	settled = make(map[int]error, a.sent)
	take := func() {
		a.mu.Lock()
		got := a.done
		a.done = nil
		a.mu.Unlock()
		for _, k := range got {
			if k.err != nil {
				k.err = fmt.Errorf("%w: %w", ErrNotAcknowledged, k.err)
			}
			settled[k.i] = k.err
		}
	}
	for {
		take()
		if len(settled) >= a.sent {
			return settled, nil
		}
		select {
		case <-a.ready:
		case <-ctx.Done():
			if take(); len(settled) >= a.sent {
				return settled, nil
			}
			return settled, fmt.Errorf("%w: %w", ErrNotAcknowledged, context.Cause(ctx))
		}
	}
}
