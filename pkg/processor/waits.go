package processor

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// What the processor waits for. Each name is also the start of the wait's
// log lines and of its entry in Processor.Waiting.
const (
	waitRedis    = "redis"
	waitRegistry = "schema registry"
	waitKafka    = "kafka"
)

// waits are the outages the processor's workers are waiting out now, by
// what they wait for. An outage begins at the first failed try of any
// worker and ends at the first try that succeeds: the one that ends it logs
// "<what> available again; resuming" with how long it lasted, once, however
// many batches were abandoned and polled again meanwhile and however many
// workers waited. The zero value is ready to use.
type waits struct {
	mu sync.Mutex
	m  map[string]*outage
	// n is len(m): the end of a wait is checked after every successful
	// round trip, without the lock while nothing is out.
	n atomic.Int32
	// unfetched are the writer schema ids a decode found the registry
	// unavailable for. A record decoded is no sign that the registry
	// answers (its writer schema may be cached); one of these decoded is.
	unfetched  map[int]bool
	nUnfetched atomic.Int32
}

type outage struct {
	since time.Time
	// last is the latest failure seen; an outage nobody waits on and
	// nothing has failed in for staleOutage is over, unseen (its batch
	// was abandoned and the dependency answered elsewhere, or not at all,
	// as a registry whose schemas are all cached): a new failure then
	// starts a new outage, not one "since" long before it.
	last time.Time
	// waiting counts the wait loops in progress on it; an outage no loop
	// waits on (its batch was abandoned, the next one not yet polled) is
	// kept, to be ended by the next success, but is not listed as a wait.
	waiting int
}

// Wait is one dependency the processor is waiting for now.
type Wait struct {
	// On is what: "redis", "schema registry" or "kafka".
	On string
	// Since is when the outage was first seen, by any worker: a wait that
	// outlasted its batch goes on in the next one.
	Since time.Time
}

func (w Wait) String() string {
	return w.On + " since " + w.Since.UTC().Format(time.RFC3339)
}

// staleOutage is how long after its last failure an outage nobody waits
// on counts as over. Longer than any pause between a batch's retries
// (BackoffMax) and the poll of the next batch.
const staleOutage = time.Minute

// failed records that a wait loop found what unavailable. cur is what the
// loop's previous failure returned (nil at its first); the loop passes
// the result to done when it ends.
func (ws *waits) failed(what string, cur *outage) *outage {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	now := time.Now()
	o := ws.m[what]
	if o != nil && o.waiting == 0 && o != cur && now.Sub(o.last) > staleOutage {
		o = nil // over, unseen: this failure starts another
	}
	if o == nil {
		if ws.m == nil {
			ws.m = map[string]*outage{}
		}
		o = &outage{since: now}
		ws.m[what] = o
		ws.n.Store(int32(len(ws.m)))
	}
	o.last = now
	if o != cur {
		if cur != nil {
			cur.waiting-- // an outage another loop has ended since
		}
		o.waiting++
	}
	return o
}

// done ends a wait loop's part in an outage (o from failed; nil: it never
// waited), whether the outage ended or the loop gave up.
func (ws *waits) done(o *outage) {
	if o == nil {
		return
	}
	ws.mu.Lock()
	o.waiting--
	ws.mu.Unlock()
}

// available records a success of what: an outage of it in progress ends,
// logged at info with how long it lasted.
func (ws *waits) available(what string, log *slog.Logger) {
	if ws.n.Load() == 0 {
		return
	}
	ws.mu.Lock()
	o := ws.m[what]
	if o != nil {
		delete(ws.m, what)
		ws.n.Store(int32(len(ws.m)))
	}
	if what == waitRegistry {
		clear(ws.unfetched)
		ws.nUnfetched.Store(0)
	}
	ws.mu.Unlock()
	if o == nil || log == nil {
		return
	}
	log.Info(what+" available again; resuming", durationAttr("waited", time.Since(o.since).Round(time.Millisecond)))
}

// notFetched records a writer schema id whose fetch found the registry
// unavailable.
func (ws *waits) notFetched(id int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.unfetched == nil {
		ws.unfetched = map[int]bool{}
	}
	ws.unfetched[id] = true
	ws.nUnfetched.Store(int32(len(ws.unfetched)))
}

// wasUnfetched tells whether id is one notFetched recorded since the
// registry was last available.
func (ws *waits) wasUnfetched(id int) bool {
	if ws.nUnfetched.Load() == 0 {
		return false
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.unfetched[id]
}

// list is the waits in progress, oldest first.
func (ws *waits) list() []Wait {
	if ws.n.Load() == 0 {
		return nil
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []Wait
	for what, o := range ws.m {
		if o.waiting > 0 {
			out = append(out, Wait{On: what, Since: o.since})
		}
	}
	slices.SortFunc(out, func(a, b Wait) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.On, b.On)
	})
	return out
}

// Waiting is what the processor's workers are waiting for now (Redis, the
// schema registry or Kafka unavailable, or a topic it consumes missing),
// each since it was first seen; none while all is well. A batch waiting
// for claims another member holds is not listed: that is contention, not
// an outage. The processor's /readyz shows it.
func (p *Processor) Waiting() []Wait {
	out := append(p.waits.list(), p.missing.list()...)
	slices.SortStableFunc(out, func(a, b Wait) int { return a.Since.Compare(b.Since) })
	return out
}

// missingTopics are the topics the processor consumes that Kafka said it
// has no such topic for at the last check, each since the check that
// first found it missing. The consumer waits for such a topic silently
// (franz-go retries its metadata for good), so without this an idle
// processor looked well while a deleted raw topic (or a cluster whose data
// was wiped) left every event unprocessed.
type missingTopics struct {
	mu sync.Mutex
	m  map[string]time.Time
	// checks counts the checks made, for tests.
	checks atomic.Int64
}

// set records the outcome of a check: missing are the topics Kafka has
// not got now. It returns the topics newly missing and those back.
func (mt *missingTopics) set(missing []string, now time.Time) (gone, back []string) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	defer mt.checks.Add(1)
	was := mt.m
	mt.m = make(map[string]time.Time, len(missing))
	for _, t := range missing {
		since, ok := was[t]
		if !ok {
			since = now
			gone = append(gone, t)
		}
		mt.m[t] = since
	}
	for t := range was {
		if _, ok := mt.m[t]; !ok {
			back = append(back, t)
		}
	}
	slices.Sort(gone)
	slices.Sort(back)
	return gone, back
}

func (mt *missingTopics) list() []Wait {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	var out []Wait
	for t, since := range mt.m {
		out = append(out, Wait{On: waitKafka + " topic " + t + " missing", Since: since})
	}
	slices.SortFunc(out, func(a, b Wait) int { return strings.Compare(a.On, b.On) })
	return out
}

// checkTopics asks Kafka whether the topics the processor consumes exist
// and records the answer in p.missing, logging each change once. A failed
// request changes nothing: Kafka unreachable is not a topic missing.
func (p *Processor) checkTopics(ctx context.Context, adm *kadm.Client, now time.Time) {
	consumed := append([]string{p.d.Topics.Raw}, p.d.Topics.Retry...)
	tds, err := adm.ListTopics(ctx, consumed...)
	if err != nil {
		p.log.Debug("consumed topics not checked", "error", err)
		return
	}
	var missing []string
	for _, t := range consumed {
		if td, ok := tds[t]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
		}
	}
	gone, back := p.missing.set(missing, now)
	for _, t := range gone {
		p.log.Error("kafka has no topic "+t+", which this processor consumes (deleted, or the cluster's data wiped?): nothing from it is processed; restart the processor to create it (ingest creates the raw topic too)", "topic", t)
	}
	for _, t := range back {
		p.log.Info("topic "+t+" is back; consuming it again", "topic", t)
	}
}
