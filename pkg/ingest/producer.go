package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
)

// ProducerOpts are the producer options the ack contract needs: idempotent
// acks=all writes (franz-go's default, restated so nobody turns it off),
// linger 0 so no request waits on a timer (concurrent requests still share
// batches while a produce is in flight), and batches large enough for the
// largest accepted body.
//
// Even a short linger is a bad trade: 100 µs measured +10% req/s at 16 and
// 64 connections (bigger batches), nothing at 256, and one connection fell
// from 8.2k to 0.75k req/s with p50 0.10 → 1.34 ms: the linger timer fires
// far later than asked.
//
// Compression is snappy: with linger 0 batches hold 1 to 20 records, and on
// such small batches franz-go's snappy (s2) costs about half of lz4's CPU
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
	}
}

// ErrNotAcknowledged is returned when Kafka did not acknowledge a write
// before the deadline (or refused it). The caller answers 503: the record
// may or may not be on the log, and the sender's retry is deduplicated
// downstream.
var ErrNotAcknowledged = errors.New("kafka did not acknowledge the write in time")

// writer produces records and waits for their acknowledgements.
type writer struct {
	cl *kgo.Client
	// waiters are reused across writeOne calls: a channel and its callback
	// per webhook were 3 of its allocations.
	waiters sync.Pool // of *waiter
}

// waiter receives one record's acknowledgement.
type waiter struct {
	ch   chan error
	done func(*kgo.Record, error) // sends to ch; never blocks
}

func newWriter(cl *kgo.Client) *writer {
	w := &writer{cl: cl}
	w.waiters.New = func() any {
		wt := &waiter{ch: make(chan error, 1)}
		wt.done = func(_ *kgo.Record, err error) { wt.ch <- err }
		return wt
	}
	return w
}

// writeOne produces r and returns nil once Kafka acknowledged it, or an
// error wrapping ErrNotAcknowledged when it refused or ctx ended first (the
// record may still land then, which is harmless: the sender retries and
// the retry is deduplicated downstream).
func (w *writer) writeOne(ctx context.Context, r *kgo.Record) error {
	wt := w.waiters.Get().(*waiter)
	w.cl.Produce(ctx, r, wt.done)
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
// streamed batch is read.
type acks struct {
	ctx  context.Context
	ch   chan ack
	sent int
}

type ack struct {
	i   int
	err error
}

// stream starts a batch of at most max records bounded by ctx.
func (w *writer) stream(ctx context.Context, max int) *acks {
	return &acks{ctx: ctx, ch: make(chan ack, max)}
}

// produce sends r as item i of the batch. The callback never blocks: the
// channel has room for every record of the batch.
func (a *acks) produce(w *writer, i int, r *kgo.Record) {
	a.sent++
	w.cl.Produce(a.ctx, r, func(_ *kgo.Record, err error) { a.ch <- ack{i, err} })
}

// wait returns the outcome of the items produced, keyed by item index: nil
// when acknowledged, else an error wrapping ErrNotAcknowledged. If ctx ends
// first, items without an outcome yet are missing from the map and late is
// the error to report for them.
func (a *acks) wait() (settled map[int]error, late error) {
	settled = make(map[int]error, a.sent)
	take := func(k ack) {
		if k.err != nil {
			k.err = fmt.Errorf("%w: %w", ErrNotAcknowledged, k.err)
		}
		settled[k.i] = k.err
	}
	for len(settled) < a.sent {
		select {
		case k := <-a.ch:
			take(k)
		case <-a.ctx.Done():
			for len(a.ch) > 0 {
				take(<-a.ch)
			}
			if len(settled) == a.sent {
				return settled, nil
			}
			return settled, fmt.Errorf("%w: %w", ErrNotAcknowledged, context.Cause(a.ctx))
		}
	}
	return settled, nil
}
