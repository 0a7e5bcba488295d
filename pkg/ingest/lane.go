package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A lane group-commits the records of one producer client: while one round
// of records is on its way to Kafka, the records that arrive queue up, and
// when the round is acknowledged they all go to the client together as the
// next round. Under load a round gathers every webhook that arrived during
// the previous one, so produce requests and partition batches carry several
// records each instead of one or two; a lone record still goes at once (no
// timer, nothing to linger on).
//
// Why not leave it to the client: with linger 0 franz-go sends a request as
// soon as a record arrives and one of its five in-flight slots per broker is
// free, so at 16 connections nearly every webhook was a produce request of
// its own (1.3 records per request, 1.1 per batch). Measured with
// `go run ./loadtest/benchingest` (interleaved rounds, same build
// otherwise): CPU per request fell from 76–81 to 58–68 µs at 16
// connections, 52–58 to 44–45 at 64 and 48–64 to 41–50 at 256, with
// req/s the same or better in every cell and unchanged at one connection.
//
// A round that is not all acknowledged within roundPatience no longer holds
// the next one back: the records of a partition whose leader is away wait
// in the client (retried there, up to their own deadlines) and cost the
// webhooks of the lane's healthy partitions at most roundPatience per
// round, not the whole outage. Records of one key always
// take one lane and are handed to the client in arrival order, and the
// client keeps a partition's records in the order produced, so rounds that
// overlap never reorder a key.
type lane struct {
	cl *kgo.Client

	mu     sync.Mutex
	queue  []queued
	bytes  int64 // sum of size() over the queue and the round being handed over
	busy   bool  // a goroutine is running rounds
	idle   chan struct{}
	closed bool
	// maxBytes bounds bytes and patience the wait for a round
	// (maxQueuedBytes, roundPatience; tests change them).
	maxBytes int64
	patience time.Duration
	// timer bounds the wait for a round; only the goroutine running
	// rounds uses it.
	timer *time.Timer
}

type queued struct {
	ctx  context.Context
	r    *kgo.Record
	done func(*kgo.Record, error)
	size int64 // size(r), counted in lane.bytes until handed over
}

const (
	// roundPatience bounds how long a round's slowest acknowledgement holds
	// back the next round. Rounds take well under a millisecond against a
	// healthy broker here and a few milliseconds across a network.
	roundPatience = 25 * time.Millisecond
	// maxQueuedBytes bounds the records waiting for a lane's next round.
	// Normally a round's worth of webhooks is queued. While Kafka takes
	// nothing, rounds go on to the client every roundPatience until its
	// buffer is full (MaxBufferedRecords/Bytes) and Produce blocks; then
	// the lane's queue grows, and webhooks beyond this bound are answered
	// 503 at once instead of holding their bodies until their deadlines.
	maxQueuedBytes = 64 << 20
	// maxSpare is the largest queue array kept for reuse.
	maxSpare = 4096
)

// errLaneFull is returned for a record that found its lane's queue full:
// Kafka has not been taking records as fast as they arrive.
var errLaneFull = errors.New("too many records waiting for kafka")

// errLaneClosed is returned for a record produced after close.
var errLaneClosed = errors.New("producer closed")

func newLane(cl *kgo.Client) *lane {
	return &lane{cl: cl, maxBytes: maxQueuedBytes, patience: roundPatience}
}

// size is what a record holds in memory, near enough to bound the queue.
func size(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// produce queues r for the next round; done is called once with its
// outcome, as for kgo.Client.Produce (at once, from this goroutine, when
// the queue is full or the lane closed).
func (l *lane) produce(ctx context.Context, r *kgo.Record, done func(*kgo.Record, error)) {
	n := size(r)
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		done(r, errLaneClosed)
		return
	case l.bytes > 0 && l.bytes+n > l.maxBytes:
		l.mu.Unlock()
		done(r, errLaneFull)
		return
	}
	l.queue = append(l.queue, queued{ctx, r, done, n})
	l.bytes += n
	start := !l.busy
	if start {
		l.busy = true
		l.idle = make(chan struct{})
	}
	l.mu.Unlock()
	if start {
		go l.run()
	}
}

// run writes rounds until the queue is empty.
func (l *lane) run() {
	var round []queued
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.busy = false
			close(l.idle)
			l.mu.Unlock()
			return
		}
		// The queue and the round swap arrays: the drained round's
		// collects the next one.
		round, l.queue = l.queue, round[:0]
		l.mu.Unlock()

		acked := &roundAcks{all: make(chan struct{})}
		acked.left.Store(int64(len(round)))
		var handed int64
		for _, q := range round {
			handed += q.size
			done := q.done
			cb := func(r *kgo.Record, err error) {
				done(r, err)
				acked.one()
			}
			if err := q.ctx.Err(); err != nil {
				// Its webhook was already answered 503; do not write it
				// now, when nobody is told it landed.
				cb(q.r, context.Cause(q.ctx))
				continue
			}
			l.cl.Produce(q.ctx, q.r, cb)
		}
		// Counted until handed over: Produce blocks while the client's
		// buffer is full, and the round is held here meanwhile.
		l.mu.Lock()
		l.bytes -= handed
		l.mu.Unlock()
		if l.timer == nil {
			l.timer = time.NewTimer(l.patience)
		} else {
			l.timer.Reset(l.patience)
		}
		select {
		case <-acked.all:
			l.timer.Stop()
		case <-l.timer.C:
		}
		clear(round)
		if cap(round) > maxSpare {
			round = nil // after a burst: do not keep its array
		}
	}
}

// roundAcks counts a round's outstanding acknowledgements.
type roundAcks struct {
	left atomic.Int64
	all  chan struct{} // closed by the last
}

func (a *roundAcks) one() {
	if a.left.Add(-1) == 0 {
		close(a.all)
	}
}

// drain waits until every queued record was handed to the client, or ctx
// ends; later records are refused (errLaneClosed). The client's Flush then
// waits for their acknowledgements.
func (l *lane) drain(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	busy, idle := l.busy, l.idle
	l.mu.Unlock()
	if !busy {
		return nil
	}
	select {
	case <-idle:
		return nil
	default:
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("a round of records was not handed over and acknowledged in time: %w", ctx.Err())
	}
}
