package processor

import (
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/retry"
)

// pauser holds retry partitions whose head record is not due yet: the
// partition is rewound to that record (so the transaction does not commit
// past it), paused, and resumed by a timer when the record is due. Other
// partitions and the raw topic keep flowing.
type pauser struct {
	cl     *kgo.Client
	mu     sync.Mutex
	timers map[tp]*time.Timer
	// seen is, per partition, when its records were first fetched (by the
	// polling goroutine only).
	seen map[tp]*fetched
}

// fetched is when a partition's records were first fetched: from each
// mark's offset up to the next mark's, at the mark's time (one mark per
// poll that brought new records); next is one past the last offset
// fetched.
type fetched struct {
	marks []fetchMark
	next  int64
}

type fetchMark struct {
	offset int64
	at     time.Time
}

// at is when the record at off was first fetched, now if it was not
// before.
func (f *fetched) at(off int64, now time.Time) time.Time {
	if off >= f.next {
		if n := len(f.marks); n == 0 || !f.marks[n-1].at.Equal(now) {
			f.marks = append(f.marks, fetchMark{off, now})
		}
		f.next = off + 1
		return f.marks[len(f.marks)-1].at
	}
	i := sort.Search(len(f.marks), func(i int) bool { return f.marks[i].offset > off }) - 1
	if i < 0 {
		// Before the marks kept (rewound past them): first fetched now,
		// and so on every poll after this one.
		f.marks = append([]fetchMark{{off, now}}, f.marks...)
		return now
	}
	return f.marks[i].at
}

// drop forgets the marks of records before off, where the partition's
// poll starts: they were processed.
func (f *fetched) drop(off int64) {
	if i := sort.Search(len(f.marks), func(i int) bool { return f.marks[i].offset > off }) - 1; i > 0 {
		f.marks = append(f.marks[:0], f.marks[i:]...)
	}
}

type tp struct {
	topic     string
	partition int32
}

func newPauser(cl *kgo.Client) *pauser {
	return &pauser{cl: cl, timers: map[tp]*time.Timer{}, seen: map[tp]*fetched{}}
}

// hold returns the records that may be processed now. For each retry
// partition whose records are not all due, it keeps those before the first
// record not due, rewinds the partition to that record and pauses it until
// it is due. Must run on the polling goroutine before the transaction ends.
//
// A record is due at its due-at header (without a valid one, at its
// timestamp plus its tier's delay: see retry.Due), but no later than its
// tier's delay (delay) after this pauser first fetched it: the header is
// stamped with the writer's clock (another processor, an operator's
// inletctl requeue), and one ten minutes fast held its partition, and
// every retry behind it, ten minutes more. Counted from when each record
// became its partition's head instead, a burst of such records drained
// one per tier delay.
func (p *pauser) hold(recs []*kgo.Record, delay func(string) (time.Duration, bool), now time.Time) []*kgo.Record {
	type held struct {
		r   *kgo.Record // the first record not due
		due time.Time
	}
	first := map[tp]held{} // per partition
	polled := map[tp]bool{}
	for _, r := range recs {
		d, ok := delay(r.Topic)
		if !ok {
			continue
		}
		k := tp{r.Topic, r.Partition}
		f := p.seen[k]
		if f == nil {
			f = &fetched{}
			p.seen[k] = f
		}
		if !polled[k] {
			polled[k] = true
			f.drop(r.Offset)
		}
		// Every record fetched is marked, those behind a held one too.
		seen := f.at(r.Offset, now)
		if _, ok := first[k]; ok {
			continue
		}
		due := retry.Due(r, d, now)
		if limit := seen.Add(d); due.After(limit) {
			due = limit
		}
		if due.After(now) {
			first[k] = held{r, due}
		}
	}
	if len(first) == 0 {
		return recs
	}
	keep := recs[:0:0]
	for _, r := range recs {
		if f, ok := first[tp{r.Topic, r.Partition}]; ok && r.Offset >= f.r.Offset {
			continue
		}
		keep = append(keep, r)
	}
	rewind := map[string]map[int32]kgo.EpochOffset{}
	pause := map[string][]int32{}
	for k, f := range first {
		if rewind[k.topic] == nil {
			rewind[k.topic] = map[int32]kgo.EpochOffset{}
		}
		rewind[k.topic][k.partition] = kgo.EpochOffset{Epoch: f.r.LeaderEpoch, Offset: f.r.Offset}
		pause[k.topic] = append(pause[k.topic], k.partition)
	}
	p.cl.PauseFetchPartitions(pause)
	p.cl.SetOffsets(rewind)
	for k, f := range first {
		p.resumeAt(k, f.due.Sub(now))
	}
	return keep
}

func (p *pauser) resumeAt(k tp, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.timers[k]; ok {
		t.Stop()
	}
	// A timer that fired while its replacement or a cancel held mu finds
	// itself no longer in timers: it must neither drop the entry of the
	// timer that replaced it (which nothing could cancel then) nor resume
	// a partition that was paused again meanwhile.
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		p.mu.Lock()
		if p.timers[k] != t {
			p.mu.Unlock()
			return
		}
		delete(p.timers, k)
		p.mu.Unlock()
		p.cl.ResumeFetchPartitions(map[string][]int32{k.topic: {k.partition}})
	})
	p.timers[k] = t
}

// resumeAll resumes every paused partition of topics: on assignment, so a
// partition paused before a rebalance is never left paused (it is paused
// again at once if its head is still not due).
func (p *pauser) resumeAll(assigned map[string][]int32, isRetry func(string) bool) {
	resume := map[string][]int32{}
	for t, ps := range assigned {
		if isRetry(t) {
			resume[t] = ps
		}
	}
	if len(resume) > 0 {
		p.cl.ResumeFetchPartitions(resume)
	}
}

// release resumes now every partition waiting for its timer: after the
// session rewound to the committed offsets (a transaction that did not
// commit), a partition held at a record not due may be back at records
// before it, already due, which would otherwise wait for that record's
// timer, up to a whole tier. hold pauses it again when its head is polled
// and still not due (due as before: seen keeps when it was first held).
func (p *pauser) release() {
	if resume := p.cancel(); len(resume) > 0 {
		p.cl.ResumeFetchPartitions(resume)
	}
}

// stop cancels the pending resumes: the session is closing.
func (p *pauser) stop() { p.cancel() }

// cancel stops the pending resumes and returns their partitions.
func (p *pauser) cancel() map[string][]int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	pending := map[string][]int32{}
	for k, t := range p.timers {
		t.Stop()
		delete(p.timers, k)
		pending[k.topic] = append(pending[k.topic], k.partition)
	}
	return pending
}
