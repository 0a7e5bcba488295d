// Package replay re-runs processing over a time range of the raw topic.
//
// The raw records of one source in [From, To) are copied, in Kafka
// transactions of copyChunk records, to a replay topic
// <prefix>.replay.<id>; an in-process
// processor (group <prefix>.replay.<id>, retry topics of its own) then
// processes that topic into the ordinary processed, state, DLQ and invalid
// topics and the ordinary Redis state, until every copied record has a
// final outcome.
//
// Two modes:
//
//   - fill: dedup is respected, so only events never processed are applied
//     (gaps filled); the others end as duplicates: those whose claim is
//     done, and those that are their entity's stored state (see
//     markApplied). An event whose claim expired cannot be told from a
//     gap, and is processed again, when it has no business time or its
//     entity's state is another event of the same time (equal times
//     apply, so it becomes the state again: newest wins, later wins a tie).
//   - rebuild: first the dedup claims of the copied events, and the Redis
//     state of the entities they touch while that state is one of the
//     copied events, are deleted (keys computed by running the handlers
//     over the copied records), so processing rebuilds those entities from
//     the range. An entity whose state is another event (one received
//     after the range, or before it) is kept and reported, and the range
//     applied onto it, newest wins (see deleteState). Events of the same
//     entities outside the range are not replayed: give a range that
//     covers them (no --from means the start of the raw topic).
//
// A replay is resumable: its progress is kept in Redis under
// <key prefix>replay:<id> (copy done, deletions done, outcomes so far) and
// in its group's committed offsets. Running the same id again continues
// where it stopped, never copying or deleting twice; a finished replay
// just reports its summary. One run of an id at a time: while one is
// under way (it holds the id's lock in Redis, <key prefix>replay:<id>:lock,
// renewed as it runs), another is refused at once with ErrRunning.
//
// What a replay makes (its topics, group and progress record) stays until
// Remove deletes it; List lists the replays that left something.
package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/ops"
	"github.com/inletdev/inlet/pkg/processor"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
)

// Mode says what a replay does about dedup and state.
type Mode string

// The modes.
const (
	Fill    Mode = "fill"
	Rebuild Mode = "rebuild"
)

// Errors.
var (
	// ErrConfig is wrapped by every validation error of a Config.
	ErrConfig = errors.New("replay: bad configuration")
	// ErrMismatch is returned when an id is reused with other parameters.
	ErrMismatch = errors.New("replay: this id was started with different parameters")
	// ErrRunning is returned, at once and before anything is read or
	// written, when another run of the same id (another process, another
	// host) is under way: it holds the id's lock. Its *RunningError names
	// that run's host, pid and start.
	ErrRunning = errors.New("replay: this id is running already")
	// ErrLockLost is returned when a run lost its id's lock (Redis
	// unreachable for a whole lease, or the lock expired and was taken by
	// another run): it stops, as another run may now be under way; run
	// the same id again to resume.
	ErrLockLost = errors.New("replay: lost the lock on its id")
)

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// retryInID is what an id may not hold: a replay's retry topics are its
// topic + ".retry." + tier (see Topic), so replay "a.retry.30s" would
// copy into replay "a"'s first retry topic, and each would count and
// process the other's records.
const retryInID = ".retry."

// CheckID checks that id can name a replay, as Run and Remove take it:
// 1-100 of [A-Za-z0-9._-] (no path, glob or Redis key separator), not
// holding ".retry." (see retryInID). Its error wraps ErrConfig.
func CheckID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%w: id %q: 1-100 of [A-Za-z0-9._-]", ErrConfig, id)
	}
	if strings.Contains(id, retryInID) {
		return fmt.Errorf("%w: id %q holds %q: its topic could be another replay's retry topic (%s<tier>); choose another id", ErrConfig, id, retryInID, "<prefix>.replay.<id>"+retryInID)
	}
	return nil
}

// Config is one replay.
type Config struct {
	// ID names the replay: its topic, group and progress record. Reusing an
	// id resumes it. 1-100 of [A-Za-z0-9._-], not holding ".retry.".
	ID     string
	Source string
	// From and To bound the raw records' timestamps: [From, To), by each
	// record's own time, not by offset (records land out of time order:
	// the raw topic is read from rangeSlack before From to rangeSlack
	// after To). A zero From is the start of the topic; a zero To is the
	// time the replay first ran (kept when it is resumed). Neither may be
	// later than the time the replay runs (see Validate).
	From, To time.Time
	Mode     Mode
	// Processor tunes the replay's processor; Group and InstanceID are
	// set from ID.
	Processor processor.Config
}

// DefaultID derives an id from the parameters, so re-running the same
// command resumes the same replay: <source>-<from>-<to>-<mode>. When that
// is longer than an id may be (a source name over 58 characters), the
// source is cut short and a hash of the full parameters appended,
// <source cut>-<from>-<to>-<mode>-<hash>, so the id is valid, still
// derived from the parameters alone, and distinct from other sources'
// sharing the cut.
func DefaultID(src string, from, to time.Time, mode Mode) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		// Below the second only when the time has it: whole-second ids
		// stay as they were, and ranges that differ by less than a
		// second are two replays, not one refused as "started with
		// different parameters".
		return t.UTC().Format("20060102T150405.999999999Z")
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if validID.MatchString(string(r)) {
				return r
			}
			return '_'
		}, s)
	}
	cut, rest := clean(src), clean(fmt.Sprintf("-%s-%s-%s", f(from), f(to), mode))
	if len(cut)+len(rest) <= maxIDLen {
		return cut + rest
	}
	exact := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", src, exact(from), exact(to), mode))
	rest += "-" + hex.EncodeToString(sum[:])[:idHashLen]
	return cut[:max(0, min(len(cut), maxIDLen-len(rest)))] + rest
}

const (
	maxIDLen  = 100 // as validID
	idHashLen = 12  // hex digits of DefaultID's hash
)

// Validate checks c as Run does (every error wraps ErrConfig), at the
// current time: a From or To later than now is refused. The raw topic
// holds nothing after now, and a replay once finished is not run again
// (the same id just reports its summary), so the events that arrived
// later inside such a range were never replayed while the summary claimed
// the whole range.
func (c *Config) Validate() error { return c.validate(time.Now()) }

func (c *Config) validate(now time.Time) error {
	var errs []error
	if err := CheckID(c.ID); err != nil {
		errs = append(errs, err)
	}
	if c.Source == "" {
		errs = append(errs, fmt.Errorf("%w: a source is required", ErrConfig))
	}
	if c.Mode != Fill && c.Mode != Rebuild {
		errs = append(errs, fmt.Errorf("%w: mode %q: fill or rebuild", ErrConfig, c.Mode))
	}
	if !c.From.IsZero() && !c.To.IsZero() && !c.From.Before(c.To) {
		errs = append(errs, fmt.Errorf("%w: from must be before to", ErrConfig))
	}
	const why = "the raw topic holds nothing after now, and a replay once finished is not run again, " +
		"so events arriving later inside the range would never be replayed"
	if c.To.After(now) {
		errs = append(errs, fmt.Errorf("%w: --to %s is later than now (%s): %s; give a --to not later than now, "+
			"or leave --to out (naming the replay with --id) to end the range when the replay first runs",
			ErrConfig, c.To.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339), why))
	}
	if c.From.After(now) {
		errs = append(errs, fmt.Errorf("%w: --from %s is later than now (%s): %s; give a --from not later than now",
			ErrConfig, c.From.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339), why))
	}
	return errors.Join(errs...)
}

// Deps are what a replay reads and writes: the processor's dependencies,
// plus Redis for the progress record.
type Deps struct {
	KafkaOpts []kgo.Opt
	Topics    kafka.Topics
	Sources   *source.File
	Router    *router.Router
	Registry  *registry.Client
	Codec     *envelope.Codec
	Store     *store.Store
	// Redis holds the progress record, under KeyPrefix (default "inlet:",
	// the store's default).
	Redis     redis.UniversalClient
	KeyPrefix string
	History   *history.Store
	Log       *slog.Logger
	// Progress, if set, is called about twice a second while processing.
	Progress func(Progress)
}

// Progress is a replay under way.
type Progress struct {
	Phase string // copy | delete | process
	Done  int64  // final outcomes so far (process), records read (copy)
	Total int64  // records to process (0 while unknown)
}

// Summary is what a replay did (cumulative over resumed runs).
type Summary struct {
	ID      string    `json:"id"`
	Source  string    `json:"source"`
	Mode    Mode      `json:"mode"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Topic   string    `json:"topic"`
	Scanned int64     `json:"scanned"` // raw records in the time range, of every source
	// SourceRecords counts, of them, the source's: those copied (Read)
	// and those left (OnFailureQueues, LeftDiscarded).
	SourceRecords int64 `json:"source_records"`
	Read          int64 `json:"read"`    // of the source's records, those copied
	Applied       int64 `json:"applied"` // processed
	Duplicate     int64 `json:"duplicate"`
	Stale         int64 `json:"stale"`
	Invalid       int64 `json:"invalid"`
	DLQ           int64 `json:"dlq"`
	// OnFailureQueues counts the source's events in the range whose entry
	// on the DLQ or invalid topic is undecided: they are not replayed, in
	// either mode (that would make a second entry); requeue them from
	// there.
	OnFailureQueues int64 `json:"on_failure_queues,omitempty"`
	// LeftDiscarded counts the source's events in the range whose entry
	// an operator discarded: not replayed either (that would undo the
	// decision), and not to requeue (refused: already decided).
	LeftDiscarded int64 `json:"left_discarded,omitempty"`
	// DeletedClaims and DeletedEntities are what rebuild deleted, over
	// every run of the replay (a stopped and resumed rebuild counts the
	// same as one that was not stopped).
	DeletedClaims   int64 `json:"deleted_claims,omitempty"`
	DeletedEntities int64 `json:"deleted_entities,omitempty"`
	// DeletedAtLeast says DeletedClaims and DeletedEntities are lower
	// bounds: a batch of deletions failed (a failed Redis call) or its
	// process was killed before the batch's count was recorded, so keys it
	// deleted may not be counted. (Stopping the replay, Ctrl-C, keeps them
	// exact: the batch in hand is finished and counted first.) The keys
	// were deleted all the same: a resumed rebuild deletes what is left.
	DeletedAtLeast bool `json:"deleted_at_least,omitempty"`
	// KeptEntities (rebuild) counts the range's entities whose state was
	// not deleted, because it was not one of the copied events: most
	// often a newer event received after To (processed meanwhile), else
	// one before From, or a state no event of the range explains. The
	// range was applied onto them, newest wins; KeptSample names up to
	// maxKeptSample of them.
	KeptEntities int64    `json:"kept_entities,omitempty"`
	KeptSample   []string `json:"kept_sample,omitempty"`
	Resumed      bool     `json:"resumed"`
	Complete     bool     `json:"complete"`
}

// Topic names the replay topic of id; its retry topics are Topic +
// ".retry." + the tier's name. No two ids Validate accepts share a topic.
func Topic(t kafka.Topics, id string) string {
	return strings.TrimSuffix(t.Raw, ".raw") + ".replay." + id
}

// Group names the consumer group of id: its topic's name, so that
// deployments sharing a cluster under different topic prefixes never
// share a replay's group (as inlet-replay-<id> did: legacyGroup).
func Group(t kafka.Topics, id string) string { return Topic(t, id) }

// legacyGroup is the group a replay of id was processed by before Group
// took its topic's name; every deployment's replay of id shared it.
func legacyGroup(id string) string { return "inlet-replay-" + id }

// Run runs (or resumes) the replay and returns its summary. Cancelling ctx
// stops it after the batch in hand is committed; run the same id again to
// resume. The summary so far is returned with ctx's error. While another
// run of the same id is under way, Run returns a *RunningError (ErrRunning)
// at once, with no summary.
func Run(ctx context.Context, cfg Config, d Deps) (_ *Summary, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.KeyPrefix == "" {
		d.KeyPrefix = "inlet:"
	}
	if d.Redis == nil || d.Store == nil || d.Codec == nil || d.Router == nil {
		return nil, fmt.Errorf("%w: redis, store, codec and router are required", ErrConfig)
	}
	// Taken before the progress record is read: a second run of the id
	// is refused before it touches anything.
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	lostLock := func(err error) {
		d.Log.Warn("replay: lost the lock on its id, stopping: another run may be under way", "id", cfg.ID, "error", err)
		stop(err)
	}
	lk, err := lock(ctx, d.Redis, d.KeyPrefix+"replay:"+cfg.ID+":lock", cfg.ID, lostLock)
	if err != nil {
		return nil, err
	}
	defer func() {
		if uerr := lk.unlock(ctx); uerr != nil {
			d.Log.Warn("replay: lock not released (it expires by itself)", "id", cfg.ID, "lease", lockLease, "error", uerr)
		}
		// A run stopped because its lock was lost says so, not
		// "cancelled" (which reads as a Ctrl-C: "interrupted").
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrLockLost) {
			err = fmt.Errorf("%w (stopped at: %v)", cause, err)
		}
	}()
	cl, err := kgo.NewClient(d.KafkaOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r := &run{cfg: cfg, d: d, adm: kadm.NewClient(cl), key: d.KeyPrefix + "replay:" + cfg.ID,
		topic: Topic(d.Topics, cfg.ID), sum: &Summary{ID: cfg.ID, Source: cfg.Source, Mode: cfg.Mode, From: cfg.From, To: cfg.To}}
	r.sum.Topic = r.topic
	err = r.run(ctx)
	r.sum.SourceRecords = r.sum.Read + r.sum.OnFailureQueues + r.sum.LeftDiscarded
	return r.sum, err
}

type run struct {
	cfg   Config
	d     Deps
	adm   *kadm.Client
	key   string // progress record
	topic string
	retry []string
	sum   *Summary
	// runTag is fRun: "" for a replay begun before it was kept.
	runTag string
}

// progress fields in the Redis hash.
const (
	fParams = "params"
	fTo     = "to"
	fCopied = "copied"
	// fCopyProgress is the copy's copyProgress (JSON) at its last chunk.
	fCopyProgress = "copy_progress"
	fScanned      = "scanned"
	fOnQueues     = "on_queues" // undecided entries (discarded ones too, in a replay copied before they were told apart)
	fDiscarded    = "left_discarded"
	fDeleted      = "deleted"
	// fDeleting is the deletion's running "claims,entities" count, so a
	// rebuild stopped midway reports, once resumed, what the first run
	// deleted too (the keys it deleted delete nothing the second time).
	// It is written after each batch of deletions (deleteState), and
	// fDeleteBatch is set while one is under way: a batch that never
	// recorded its count (a failed call, a killed process) leaves it, and
	// what that batch deleted may be missing from fDeleting. fShort is
	// then set, for good: the counts are lower bounds (DeletedAtLeast).
	fDeleting    = "deleting"
	fDeleteBatch = "delete_batch"
	fShort       = "deleted_at_least"
	// fKept and fKeptSample are the rebuild's KeptEntities and KeptSample
	// (JSON).
	fKept       = "kept"
	fKeptSample = "kept_sample"
	// fTiers are the retry tiers the replay's retry topics were made for:
	// a resume with others made and counted new topics, and copies waiting
	// in the old ones were never processed.
	fTiers    = "tiers"
	fComplete = "complete"
	// fRun names this run of the id, from its first start on (resumes
	// keep it; replay rm deletes it): the tag of its dedup claims'
	// positions (processor.Deps.PositionTag). A record without it (a
	// replay begun before it was kept) tags none.
	fRun = "run"
)

func (r *run) params() string {
	return fmt.Sprintf("%s|%s|%d|%d", r.cfg.Source, r.cfg.Mode, r.cfg.From.UnixMilli(), r.cfg.To.UnixMilli())
}

// tiers names the retry tiers, as the replay's retry topics do.
func (r *run) tiers() string {
	names := make([]string, len(r.d.Topics.RetryTiers))
	for i, t := range r.d.Topics.RetryTiers {
		names[i] = kafka.TierName(t)
	}
	return strings.Join(names, ",")
}

func (r *run) run(ctx context.Context) error {
	prog, err := r.d.Redis.HGetAll(ctx, r.key).Result()
	if err != nil {
		return fmt.Errorf("replay progress: %w", err)
	}
	if r.cfg.To.IsZero() {
		// An open end is fixed by the first run and kept by resumes.
		if ms, err := strconv.ParseInt(prog[fTo], 10, 64); err == nil {
			r.cfg.To = time.UnixMilli(ms).UTC()
		} else {
			// The next whole millisecond: records carry millisecond
			// times, and one written in the millisecond the run starts
			// (a send just before it) read as not before a To inside
			// that millisecond, and was left out.
			r.cfg.To = time.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
		}
		r.sum.To = r.cfg.To
	}
	if p, ok := prog[fParams]; ok && p != r.params() {
		return fmt.Errorf("%w: %s (was %s)", ErrMismatch, r.cfg.ID, p)
	}
	r.sum.Resumed = len(prog) > 0
	r.load(prog)
	if prog[fComplete] == "1" {
		r.sum.Complete = true
		return nil
	}
	// Checked only while there is work left: a finished replay has no
	// copies waiting. A record written before the tiers were kept has
	// none: the tiers given now are taken.
	if t, ok := prog[fTiers]; ok && t != r.tiers() {
		return fmt.Errorf("%w: %s: retry tiers %q (was %q: copies waiting in its retry topics would never be processed); give the same --retry-tiers", ErrMismatch, r.cfg.ID, r.tiers(), t)
	}
	r.runTag = prog[fRun]
	if len(prog) == 0 {
		r.runTag = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if err := r.d.Redis.HSet(ctx, r.key, fParams, r.params(), fTo, r.cfg.To.UnixMilli(), fTiers, r.tiers(), fRun, r.runTag).Err(); err != nil {
		return err
	}
	if err := r.ensureTopics(ctx); err != nil {
		return err
	}
	if prog[fCopied] == "" {
		// A chunk the Kafka client aborted instead of committing
		// (kafka.ErrClientAborted) wrote nothing: the copy goes on from
		// its last recorded position, as a resume would, and copies it
		// again.
		for attempt := 1; ; attempt++ {
			err := r.copy(ctx, prog)
			if err == nil {
				break
			}
			if !errors.Is(err, kafka.ErrClientAborted) || attempt == kafka.ClientAbortRetries {
				return err
			}
			r.d.Log.Warn("replay: copy chunk aborted by the Kafka client; copying it again", "id", r.cfg.ID, "error", err)
			if prog, err = r.d.Redis.HGetAll(ctx, r.key).Result(); err != nil {
				return fmt.Errorf("replay progress: %w", err)
			}
		}
	}
	if r.cfg.Mode == Rebuild && prog[fDeleted] == "" {
		if err := r.deleteState(ctx, prog); err != nil {
			return err
		}
	}
	if err := r.process(ctx); err != nil {
		return err
	}
	// Every copy has its outcome: the replay is done, whether or not ctx
	// was cancelled meanwhile (a stop just as processing ended). Written
	// with ctx, the flag failed on the cancelled ctx, and the run returned
	// complete together with context.Canceled. Complete only once it is
	// recorded: a failed write leaves the replay to a resume, which finds
	// nothing pending and records it.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeWrite)
	defer cancel()
	if err := r.d.Redis.HSet(wctx, r.key, fComplete, "1").Err(); err != nil {
		return fmt.Errorf("record replay %s complete (run the same id again to record it): %w", r.cfg.ID, err)
	}
	r.sum.Complete = true
	return nil
}

// commitChunk commits a chunk of the copy; a test makes it end as
// franz-go sometimes did (see kafka.ErrClientAborted).
var commitChunk = (*kafka.Chunks).Commit

// completeWrite bounds the recording of a finished replay.
const completeWrite = 5 * time.Second

func (r *run) load(prog map[string]string) {
	n := func(f string) int64 { v, _ := strconv.ParseInt(prog[f], 10, 64); return v }
	r.sum.Read, r.sum.Scanned, r.sum.OnFailureQueues, r.sum.LeftDiscarded = n(fCopied), n(fScanned), n(fOnQueues), n(fDiscarded)
	deleted := prog[fDeleted]
	if deleted == "" {
		deleted = prog[fDeleting] // stopped while deleting: so far
	}
	if d := strings.SplitN(deleted, ",", 2); len(d) == 2 {
		r.sum.DeletedClaims, _ = strconv.ParseInt(d[0], 10, 64)
		r.sum.DeletedEntities, _ = strconv.ParseInt(d[1], 10, 64)
	}
	r.sum.DeletedAtLeast = prog[fShort] == "1" || prog[fDeleteBatch] != ""
	r.sum.KeptEntities = n(fKept)
	_ = json.Unmarshal([]byte(prog[fKeptSample]), &r.sum.KeptSample) // absent: none
	r.sum.Applied, r.sum.Duplicate, r.sum.Stale = n(string(processor.Processed)), n(string(processor.Duplicate)), n(string(processor.Stale))
	r.sum.Invalid, r.sum.DLQ = n(string(processor.Invalid)), n(string(processor.DeadLetter))
}

func (r *run) ensureTopics(ctx context.Context) error {
	td, err := r.adm.ListTopics(ctx, r.d.Topics.Raw)
	if err != nil {
		return err
	}
	raw, ok := td[r.d.Topics.Raw]
	if !ok || raw.Err != nil {
		return fmt.Errorf("raw topic %s: not found (%v)", r.d.Topics.Raw, raw.Err)
	}
	week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
	cfg := map[string]string{"cleanup.policy": "delete", "retention.ms": week, "max.message.bytes": strconv.Itoa(kafka.MaxMessageBytes)}
	specs := []kafka.TopicSpec{{Name: r.topic, Configs: cfg}}
	r.retry = nil
	for _, tier := range r.d.Topics.RetryTiers {
		name := r.topic + ".retry." + kafka.TierName(tier)
		r.retry = append(r.retry, name)
		specs = append(specs, kafka.TopicSpec{Name: name, Configs: cfg})
	}
	// As many partitions and replicas as the raw topic: -1 (the broker's
	// default.replication.factor, often 1) could leave a replay's copies
	// on one broker while the raw log they stand for has three; and with
	// three, two in sync for a write, as the processor's own topics.
	rf := replicationOf(raw)
	return kafka.EnsureTopics(ctx, r.adm, len(raw.Partitions), rf, kafka.WithMinInsync(specs, kafka.AutoMinInsync(rf)))
}

// replicationOf is t's replication factor: the fewest replicas any of its
// partitions has (a partition being reassigned lists its old and new
// replicas for a while), or -1 (the broker's default) when the metadata
// lists none.
func replicationOf(t kadm.TopicDetail) int {
	rf := 0
	for _, p := range t.Partitions {
		if n := len(p.Replicas); n > 0 && (rf == 0 || n < rf) {
			rf = n
		}
	}
	if rf == 0 {
		return -1
	}
	return rf
}

var (
	deleteBatch      = 10000 // keys rebuild deletes at a time
	afterDeleteBatch func()  // tests: called after each batch deleted (pass 1) and counted
)

// The copy commits every copyChunk records or copyAge: one transaction for
// the whole range outlived its 5-minute timeout on a large one, and a run
// that failed started over, so a range of tens of millions of records
// could never be copied.
var (
	copyChunk   = 10000
	copyAge     = 10 * time.Second
	afterCommit func() // tests: called after each committed chunk
)

// rangeSlack is how far around [From, To) the copy reads the raw topic
// for records whose own time is in the range but which were written after
// a record of a later time (ingest stamps a record with the time its
// request was received, taken just before the produce). A record written
// more than rangeSlack after its time, behind one of a time past the
// range's end, is still missed; and so is, when To+rangeSlack is still
// to come as the copy starts (a To of about now, or none), a record
// received before To but written after the copy listed the topic's end.
var rangeSlack = time.Minute

// copyProgress is where the copy stands at its last committed chunk.
type copyProgress struct {
	At      map[int32]int64 `json:"at"` // per raw partition, the next offset to scan
	Scanned int64           `json:"scanned"`
	Skipped int64           `json:"skipped"` // left for an undecided entry
	// SkippedDiscarded are left for a discarded entry.
	SkippedDiscarded int64 `json:"skipped_discarded,omitempty"`
}

// copy writes the selected raw records to the replay topic, in
// transactions of at most copyChunk records. A run that stopped goes on
// from the scan position recorded with its last committed chunk, and does
// not copy again what the replay topic holds a copy of past it (a chunk
// committed whose position did not make it to Redis), so nothing is copied
// twice and the counts stay exact.
func (r *run) copy(ctx context.Context, saved map[string]string) error {
	var prog copyProgress
	if s, ok := saved[fCopyProgress]; ok {
		if err := json.Unmarshal([]byte(s), &prog); err != nil {
			return fmt.Errorf("replay progress %s: %w", fCopyProgress, err)
		}
	}
	// The transactional id names the replay topic, not the id alone: two
	// deployments (topic prefixes) on one cluster replaying the same id
	// (DefaultID is the same for the same source, range and mode) each
	// fenced the other's copy (INVALID_PRODUCER_EPOCH), as ops.TxnID
	// names its deployment's audit topic for the same reason. A copy
	// killed mid-chunk by a version before this is not fenced: its open
	// transaction is aborted by the broker after its timeout, which
	// AwaitStable below waits for.
	txn, err := kgo.NewClient(append(append([]kgo.Opt{}, r.d.KafkaOpts...),
		kgo.TransactionalID(copyTxnID(r.topic)),
		kgo.TransactionTimeout(5*time.Minute),
		kgo.ProducerBatchMaxBytes(kafka.MaxMessageBytes),
	)...)
	if err != nil {
		return err
	}
	defer txn.Close()
	// A stopping broker can answer a chunk's commit and skip its markers:
	// the copies stay open, AwaitStable below waits on them for good, and
	// the next marker there decides them. Each commit is confirmed (see
	// chunks.Guard below); a run that stopped before confirming its last
	// is settled here, before the id is taken (which makes the coordinator
	// forget how it ended). Bounded, and never fails the copy.
	guard := kafka.NewMarkerGuard(copyTxnID(r.topic), r.d.Log)
	guard.SettleCompleted(ctx, txn, r.topic)
	// What a run before copied is counted from the replay topic, by its
	// stable offsets: first fence that run's transaction (InitProducerID
	// aborts one left open, or waits for one committing to complete), then
	// wait for its markers to land. Kafka answers a commit before they
	// do; counted then, a chunk committed just before a stop read as
	// missing and was copied again, each event twice.
	if _, _, err := txn.ProducerID(ctx); err != nil {
		return fmt.Errorf("fence the copy of an earlier run: %w", err)
	}
	if err := kafka.AwaitStable(ctx, r.adm, r.topic); err != nil {
		return err
	}
	at := prog.At
	if at == nil {
		at = map[int32]int64{}
	}
	// Which records were copied, not the last offset copied: below it
	// stand records left then for their undecided entry on a failure
	// queue, and one requeued since is copied now.
	copied, copiedBefore, err := r.copiedSoFar(ctx, at)
	if err != nil {
		return err
	}
	// The raw records are in offset order, not time order: ingest stamps
	// a record with the time its request was received, before the
	// produce, so concurrent requests (or ingest replicas) land out of
	// time order. Cut by offset (the first record at or after From, and
	// at or after To), a record received before To but written after a
	// later-stamped one was left out, and one received before From but
	// written after a later one taken. So the scan runs from rangeSlack
	// before From to rangeSlack after To, and takes the records whose
	// own time is in [From, To).
	from := r.cfg.From
	if !from.IsZero() {
		from = from.Add(-rangeSlack)
	}
	sp, err := kafka.RangeOf(ctx, r.adm, r.d.Topics.Raw, from, r.cfg.To.Add(rangeSlack))
	if err != nil {
		return err
	}
	fromMs, toMs := r.cfg.From.UnixMilli(), r.cfg.To.UnixMilli()
	inRange := func(rec *kgo.Record) bool {
		ms := rec.Timestamp.UnixMilli()
		return (r.cfg.From.IsZero() || ms >= fromMs) && ms < toMs
	}
	for p, rg := range sp {
		// From the recorded position, which matches the recorded counts;
		// records the replay topic shows copied past it (their position
		// was not recorded) are scanned and counted again, not copied.
		from := max(rg[0], at[p])
		if from >= rg[1] {
			delete(sp, p)
			continue
		}
		sp[p] = [2]int64{from, rg[1]}
	}
	// Both modes leave the events whose DLQ or invalid entry stands: a
	// rebuild replaying them made second entries too, and undid discards.
	var onQueues map[string]standing
	if len(sp) > 0 {
		if onQueues, err = r.failureOrigins(ctx); err != nil {
			return err
		}
	}
	scanned, skipped, skippedDiscarded := prog.Scanned, prog.Skipped, prog.SkippedDiscarded
	chunks := kafka.NewChunks(txn, r.d.KafkaOpts)
	chunks.Guard(guard, nil, nil)
	// Fill: copies wait in pend until their entities' states are read
	// (markApplied, one round trip per markBatch copies), and are in the
	// chunk only once produced: commit produces them first. Pending since
	// pendSince, they count toward copyAge as the open chunk does.
	var pend []*kgo.Record
	var pendSince time.Time
	produce := func() error {
		if r.cfg.Mode == Fill && len(pend) > 0 {
			if err := r.markApplied(ctx, pend); err != nil {
				return err
			}
		}
		for _, c := range pend {
			if err := chunks.Produce(ctx, c); err != nil {
				return err
			}
		}
		pend = pend[:0]
		return nil
	}
	commit := func() error {
		if err := produce(); err != nil {
			return err
		}
		n := int64(chunks.Len())
		if err := commitChunk(chunks, ctx); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		copied += n
		b, _ := json.Marshal(copyProgress{At: at, Scanned: scanned, Skipped: skipped, SkippedDiscarded: skippedDiscarded})
		if afterCommit != nil {
			afterCommit()
		}
		// Best effort: without it, a resume scans from the position before
		// and skips what the replay topic shows copied.
		if err := r.d.Redis.HSet(ctx, r.key, fCopyProgress, b).Err(); err != nil {
			r.d.Log.Warn("replay: copy progress not recorded", "id", r.cfg.ID, "error", err)
		}
		return nil
	}
	err = kafka.ReadSpan(ctx, r.d.KafkaOpts, r.d.Topics.Raw, sp, func(rec *kgo.Record) error {
		at[rec.Partition] = rec.Offset + 1
		// A record of the slack around the range (its time outside it) is
		// read past, counted nowhere.
		in := inRange(rec)
		if in {
			scanned++
			if scanned%1000 == 0 {
				r.report(Progress{Phase: "copy", Done: scanned})
			}
		}
		if in && r.selected(ctx, rec) {
			origin := retry.Coordinates(rec)
			switch {
			case onQueues[origin] == undecided:
				skipped++
			case onQueues[origin] == discarded:
				skippedDiscarded++
			case copiedBefore.has(rec.Partition, rec.Offset):
				// Copied by an earlier run: counted in copied already.
			default:
				// Stamped now, not with the raw record's time: the replay
				// topic deletes after 7 days by record time, and a copy of
				// older records was deleted by the broker's next retention
				// check, before (or while) it was processed. The copy names
				// the raw record as its origin: outputs and failure entries
				// of the replay point at the raw log, as the processor's do.
				h := retry.Set(retry.Set(retry.Clone(rec.Headers), retry.HeaderOrigin, origin), retry.HeaderReplay, r.cfg.ID)
				if len(pend) == 0 {
					pendSince = time.Now()
				}
				pend = append(pend, &kgo.Record{Topic: r.topic, Key: rec.Key, Value: rec.Value, Headers: h, Timestamp: time.Now()})
				if r.cfg.Mode != Fill || len(pend) >= max(1, min(markBatch, copyChunk-chunks.Len())) {
					if err := produce(); err != nil {
						return err
					}
				}
			}
		}
		if chunks.Len() >= copyChunk || (chunks.Open() && chunks.Age() >= copyAge) || (len(pend) > 0 && time.Since(pendSince) >= copyAge) {
			return commit()
		}
		return nil
	})
	if err == nil {
		err = commit()
	}
	if err != nil {
		_ = chunks.Abort(ctx)
		return fmt.Errorf("copy to %s (%d records copied so far stay; run the same id again to go on): %w", r.topic, copied, err)
	}
	r.sum.Read, r.sum.Scanned, r.sum.OnFailureQueues, r.sum.LeftDiscarded = copied, scanned, skipped, skippedDiscarded
	r.d.Log.Info("replay: copied", "id", r.cfg.ID, "topic", r.topic, "scanned", scanned, "copied", copied, "on_failure_queues", skipped, "left_discarded", skippedDiscarded)
	return r.d.Redis.HSet(ctx, r.key, fCopied, copied, fScanned, scanned, fOnQueues, skipped, fDiscarded, skippedDiscarded).Err()
}

// copyTxnID is the transactional id of the copy to topic (see copy).
func copyTxnID(topic string) string { return "inlet-replay-copy-" + topic }

// markBatch is how many copies fill marks per round trip to Redis.
const markBatch = 500

// markApplied (fill) marks, with HeaderReplayApplied, each copy whose event
// is its entity's stored state (same event id and business time): it was
// processed, and the replay's processor counts it a duplicate even when
// its claim has expired (dedup_window, or Redis lost the claims). Left to
// its claim, the equal time applied again and wrote a second output.
//
// Marked here, before the replay applies anything, rather than decided
// by the replay's processor from the state it reads: that state may be
// the replay's own, written by a batch whose transaction then failed,
// whose retry must apply again (as the ordinary processor's does) or the
// event's output is never written.
func (r *run) markApplied(ctx context.Context, copies []*kgo.Record) error {
	var keys, ids []string
	var ats []time.Time
	var which []*kgo.Record
	for _, c := range copies {
		env, err := r.d.Codec.Decode(ctx, c.Value)
		if err != nil {
			continue // invalid again
		}
		_, entity, at, ok := keysOf(ctx, r.d.Router, env)
		if !ok || at.IsZero() {
			continue // no state to tell by: see the package doc
		}
		keys, ids, ats, which = append(keys, entity), append(ids, env.EventID), append(ats, at), append(which, c)
	}
	stored, err := r.d.Store.EntityEvents(ctx, keys)
	if err != nil {
		return fmt.Errorf("read the entities' states: %w", err)
	}
	for i, st := range stored {
		if st.EventID == ids[i] && !st.EventTime.IsZero() && st.EventTime.UnixMicro() == ats[i].UnixMicro() {
			which[i].Headers = retry.Set(which[i].Headers, retry.HeaderReplayApplied, r.cfg.ID)
		}
	}
	return nil
}

// copiedSoFar counts the copies on the replay topic and lists, per raw
// partition, the offsets of the raw records copied (from the copies'
// inlet-origin) at or past from, where the scan resumes: sorted, for
// copiedOffsets.has. Usually one chunk's worth; every copy when no
// position was recorded, 8 bytes each.
func (r *run) copiedSoFar(ctx context.Context, from map[int32]int64) (int64, copiedOffsets, error) {
	sp, err := kafka.RangeOf(ctx, r.adm, r.topic, time.Time{}, time.Time{})
	if err != nil {
		return 0, nil, err
	}
	var n int64
	done := copiedOffsets{}
	err = kafka.ReadSpan(ctx, r.d.KafkaOpts, r.topic, sp, func(rec *kgo.Record) error {
		n++
		tp, p, off, ok := retry.ParseCoordinates(retry.Get(rec.Headers, retry.HeaderOrigin))
		if ok && tp == r.d.Topics.Raw && off >= from[p] {
			done[p] = append(done[p], off)
		}
		return nil
	})
	for p, offs := range done {
		slices.Sort(offs)
		done[p] = slices.Compact(offs)
	}
	return n, done, err
}

// copiedOffsets are raw offsets copied, sorted, by partition.
type copiedOffsets map[int32][]int64

func (c copiedOffsets) has(p int32, off int64) bool {
	_, ok := slices.BinarySearch(c[p], off)
	return ok
}

// ErrExpired is returned when copies of the replay were deleted (the
// replay topic keeps them 7 days) before they were processed.
var ErrExpired = errors.New("replay: copies deleted before they were processed")

// adoptLegacyGroup moves to group the offsets that a run of an earlier
// version committed on this replay's topics under legacyGroup, when group
// has none: a replay stopped before the upgrade goes on where it stopped
// rather than processing its copies again. The legacy group's offsets on
// other topics (another deployment's replay of the same id) stay.
func (r *run) adoptLegacyGroup(ctx context.Context, group string) error {
	have, err := r.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	committed := false
	have.Each(func(o kadm.OffsetResponse) { committed = committed || o.Err == nil && o.At >= 0 })
	if committed {
		return nil
	}
	old := legacyGroup(r.cfg.ID)
	had, err := r.adm.FetchOffsets(ctx, old)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("committed offsets of %s: %w", old, err)
	}
	ours := kadm.Offsets{}
	had.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 && r.ownTopic(o.Topic) {
			ours.Add(o.Offset)
		}
	})
	if len(ours) == 0 {
		return nil
	}
	cr, err := r.adm.CommitOffsets(ctx, group, ours)
	if err == nil {
		err = cr.Error()
	}
	if err != nil {
		return fmt.Errorf("move the offsets of %s on %s to %s: %w", old, r.topic, group, err)
	}
	r.d.Log.Info("replay: its group now takes its topic's name; offsets moved", "id", r.cfg.ID, "from", old, "to", group)
	// Left behind, they would be listed as this replay's group still.
	dr, err := r.adm.DeleteOffsets(ctx, old, ours.TopicsSet())
	if err == nil {
		err = dr.Error()
	}
	if err != nil {
		r.d.Log.Warn("replay: offsets of the earlier group not deleted", "id", r.cfg.ID, "group", old, "error", err)
	}
	return nil
}

// ownTopic: name is the replay's topic or one of its retry topics.
func (r *run) ownTopic(name string) bool {
	if name == r.topic {
		return true
	}
	tier, ok := strings.CutPrefix(name, r.topic+retryInID)
	return ok && isTierName(tier)
}

// checkNotExpired fails when the replay topic's start is past where the
// replay's group got to: retention deleted copies it never processed, and
// counting what is left would report the replay complete with events
// missing.
func (r *run) checkNotExpired(ctx context.Context, group string) error {
	starts, err := r.adm.ListStartOffsets(ctx, r.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", r.topic, err)
	}
	committed, err := r.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	var lost int64
	starts.Each(func(s kadm.ListedOffset) {
		at := int64(0)
		if o, ok := committed.Lookup(r.topic, s.Partition); ok && o.Err == nil {
			at = o.At
		}
		if s.Offset > at {
			lost += s.Offset - at
		}
	})
	if lost > 0 {
		return fmt.Errorf("%w: about %d copies on %s were deleted by retention (7 days) before this replay processed them; start a new replay (another --id) over the same range", ErrExpired, lost, r.topic)
	}
	return nil
}

// standing is what stands on the failure queues for a raw record: an
// undecided entry, or (else) a discarded one.
type standing int

const (
	undecided standing = iota + 1
	discarded
)

// failureOrigins lists the raw records (topic/partition/offset, their
// inlet-origin) whose entry on the DLQ or the invalid topic still stands:
// undecided (to requeue), or discarded (decided). A record with both is
// undecided. An undecided entry without a copy of its event (ops.Entry
// NoEvent) cannot be requeued, and does not count: the replay is its way
// back. A requeued entry was sent back into processing, and its event
// is replayed like any other (a requeued entry cannot be requeued again,
// so leaving it would leave it for good).
func (r *run) failureOrigins(ctx context.Context) (map[string]standing, error) {
	q, err := ops.New(r.d.KafkaOpts, r.d.Topics, r.d.Codec)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	q.SetLogger(r.d.Log)
	out := map[string]standing{}
	for _, topic := range []string{r.d.Topics.DLQ, r.d.Topics.Invalid} {
		err := q.Scan(ctx, topic, ops.Filter{}, func(e *ops.Entry) error {
			switch {
			case e.Origin == "":
			case e.Decision == nil && e.NoEvent:
				// It cannot be requeued: replaying the raw record is the
				// way (ops.SkipHint), so it holds nothing back.
			case e.Decision == nil:
				out[e.Origin] = undecided
			case e.Decision.Action == ops.ActionDiscard && out[e.Origin] != undecided:
				out[e.Origin] = discarded
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
	}
	return out, nil
}

// selected: the record is the replay's source (by header, else by the
// decoded envelope). A tombstone (null value: another producer erasing
// its key) is no event, as the processor reads past it: copied, it got no
// outcome, and the replay waited for one for good.
func (r *run) selected(ctx context.Context, rec *kgo.Record) bool {
	if rec.Value == nil {
		return false
	}
	if s := retry.Get(rec.Headers, retry.HeaderSource); s != "" {
		return s == r.cfg.Source
	}
	if k := string(rec.Key); strings.HasPrefix(k, r.cfg.Source+":") {
		return true
	}
	env, err := r.d.Codec.Decode(ctx, rec.Value)
	return err == nil && env.Source == r.cfg.Source
}

// maxKeptSample bounds the kept entities a rebuild names.
const maxKeptSample = 20

// deleteState deletes the dedup claims of the copied events (keys from the
// handlers, as the processor computes them) and the state of the entities
// they touch, but only while that state is one of the copied events
// (Store.DeleteEntitiesIf, atomic per entity): any other state, such as a
// newer event received after To, is kept, counted and named, and the range
// applied onto it (docs/operations.md, Replay). Three passes over the
// copies, a batch of keys at a time: delete; find the entities left;
// delete those whose state is a copied event all the same (one the fixed
// handler gives to another entity).
func (r *run) deleteState(ctx context.Context, saved map[string]string) error {
	r.report(Progress{Phase: "delete"})
	sp, err := kafka.RangeOf(ctx, r.adm, r.topic, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	// Each pass calls fn with each copy's envelope and, when the handler
	// gives them, its keys.
	// pass reads the copies with fn, then runs end (when not nil) for what
	// fn left batched.
	pass := func(fn func(env *envelope.Envelope, claim, entity string, ok bool) error, end func() error) error {
		err := kafka.ReadSpan(ctx, r.d.KafkaOpts, r.topic, sp, func(rec *kgo.Record) error {
			env, err := r.d.Codec.Decode(ctx, rec.Value)
			if err != nil {
				return nil // undecodable: it goes to invalid again
			}
			claim, entity, ok := Keys(ctx, r.d.Router, env)
			return fn(env, claim, entity, ok)
		})
		if err == nil && end != nil {
			err = end()
		}
		return err
	}
	// The counts so far (a resumed rebuild's keys deleted by the runs
	// before delete nothing now, and count nothing).
	var nc, ne int64
	if prev, ok := saved[fDeleting]; ok {
		_, _ = fmt.Sscanf(prev, "%d,%d", &nc, &ne)
	}
	short := saved[fShort] == "1"
	defer func() { r.sum.DeletedClaims, r.sum.DeletedEntities, r.sum.DeletedAtLeast = nc, ne, short }()
	if saved[fDeleteBatch] != "" && !short {
		// A batch of the last run deleted keys whose count it never
		// recorded (or may have): said for good before the next batch
		// clears the mark.
		if err := r.d.Redis.HSet(ctx, r.key, fShort, "1").Err(); err != nil {
			return err
		}
		short = true
	}
	// A batch once begun is finished and counted whether or not ctx is
	// cancelled meanwhile (Ctrl-C stops after the batch in hand): run
	// with ctx, a stop landing between a batch's deletions and the
	// recording of its count lost the count (its calls failed at once on
	// the cancelled ctx), and the resumed run, deleting those keys again,
	// removed and counted nothing, reporting fewer deletions than were
	// made. A stop is taken before a batch instead.
	bctx := context.WithoutCancel(ctx)
	// del deletes claims, and the states of evs whose state is still that
	// event (Store.DeleteEntitiesIf), then records the counts.
	del := func(claims []string, evs []store.EntityEvent) ([]bool, error) {
		if len(claims) == 0 && len(evs) == 0 {
			return nil, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err // stopped before the batch: nothing deleted
		}
		if err := r.d.Redis.HSet(bctx, r.key, fDeleteBatch, "1").Err(); err != nil {
			return nil, err
		}
		// What a failed DeleteClaims deleted in its chunks before failing
		// is counted; a failed chunk, or a failed DeleteEntitiesIf, may
		// have deleted keys it reports nothing of.
		c, err := r.d.Store.DeleteClaims(bctx, claims)
		nc += c
		var deleted []bool
		if err == nil {
			deleted, err = r.d.Store.DeleteEntitiesIf(bctx, evs)
			for _, d := range deleted {
				if d {
					ne++
				}
			}
		}
		if err != nil {
			short = true
			// The mark left on the batch says so too, should this fail.
			if rerr := r.d.Redis.HSet(bctx, r.key, fDeleting, fmt.Sprintf("%d,%d", nc, ne), fShort, "1").Err(); rerr != nil {
				r.d.Log.Warn("replay: deletion counts not recorded", "id", r.cfg.ID, "error", rerr)
			}
			return nil, err
		}
		pipe := r.d.Redis.TxPipeline()
		pipe.HSet(bctx, r.key, fDeleting, fmt.Sprintf("%d,%d", nc, ne))
		pipe.HDel(bctx, r.key, fDeleteBatch)
		if _, err := pipe.Exec(bctx); err != nil {
			short = true // the mark stays: the next run says so too
			return nil, fmt.Errorf("record the deletion counts: %w", err)
		}
		return deleted, nil
	}

	// 1. Deleted as they are read, deleteBatch keys at a time: holding
	// every key of a range of tens of millions of events took gigabytes. A
	// key met again later is deleted again, which removes nothing and
	// counts nothing.
	claims, states := map[string]bool{}, map[store.EntityEvent]bool{}
	flush := func() error {
		if _, err := del(setKeys(claims), setKeys(states)); err != nil {
			return err
		}
		clear(claims)
		clear(states)
		if afterDeleteBatch != nil {
			afterDeleteBatch()
		}
		return nil
	}
	err = pass(func(env *envelope.Envelope, claim, entity string, ok bool) error {
		if ok {
			claims[claim], states[store.EntityEvent{EntityKey: entity, EventID: env.EventID}] = true, true
		}
		if max(len(claims), len(states)) >= deleteBatch {
			return flush()
		}
		return nil
	}, flush)
	if err != nil {
		return err
	}

	// 2. The entities whose state is left, and its event.
	kept := map[string]string{}
	batch := map[string]bool{}
	check := func() error {
		evs, err := r.d.Store.EntityEvents(ctx, setKeys(batch))
		if err != nil {
			return err
		}
		for _, e := range evs {
			if !e.EventTime.IsZero() {
				kept[e.EntityKey] = e.EventID
			}
		}
		clear(batch)
		return nil
	}
	err = pass(func(_ *envelope.Envelope, _, entity string, ok bool) error {
		if _, seen := kept[entity]; ok && !seen {
			batch[entity] = true
		}
		if len(batch) >= deleteBatch {
			return check()
		}
		return nil
	}, check)
	if err != nil {
		return err
	}

	// 3. Of those, the ones whose event is among the copies all the same.
	if len(kept) > 0 {
		byEvent := map[string][]string{}
		for entity, id := range kept {
			byEvent[id] = append(byEvent[id], entity)
		}
		var found []store.EntityEvent
		err = pass(func(env *envelope.Envelope, _, _ string, _ bool) error {
			for _, entity := range byEvent[env.EventID] {
				found = append(found, store.EntityEvent{EntityKey: entity, EventID: env.EventID})
			}
			delete(byEvent, env.EventID)
			return nil
		}, nil)
		if err != nil {
			return err
		}
		deleted, err := del(nil, found)
		if err != nil {
			return err
		}
		for i, d := range deleted {
			if d {
				delete(kept, found[i].EntityKey)
			}
		}
	}

	sample := slices.Sorted(maps.Keys(kept))
	if len(sample) > maxKeptSample {
		sample = sample[:maxKeptSample]
	}
	r.sum.KeptEntities, r.sum.KeptSample = int64(len(kept)), sample
	if len(kept) > 0 {
		r.d.Log.Warn("replay: rebuild kept entities whose state is not an event of the range (a newer one received after it?); the range is applied onto them, newest wins",
			"id", r.cfg.ID, "kept", len(kept), "sample", sample)
	}
	r.d.Log.Info("replay: rebuild deleted state", "id", r.cfg.ID, "claims", nc, "entities", ne, "kept", len(kept), "at_least", short)
	b, _ := json.Marshal(sample)
	// The deletion done, it is recorded even when ctx was cancelled
	// meanwhile: a resume goes on to processing.
	return r.d.Redis.HSet(bctx, r.key, fDeleted, fmt.Sprintf("%d,%d", nc, ne), fKept, len(kept), fKeptSample, b).Err()
}

func setKeys[K comparable](m map[K]bool) []K {
	return slices.Collect(maps.Keys(m))
}

// Keys runs env's handler and returns the dedup claim key and entity key
// the processor uses for it; ok is false when the event has no handler or
// fails it (it would be invalid or retried, touching no state).
//
// The claim key mirrors pkg/processor: "dedup:" + the natural key
// prefixed with the source, or the idempotency key when the handler
// gives none.
func Keys(ctx context.Context, rt *router.Router, env *envelope.Envelope) (claim, entity string, ok bool) {
	claim, entity, _, ok = keysOf(ctx, rt, env)
	return claim, entity, ok
}

// keysOf is Keys, with the event's business time (zero when it has none).
func keysOf(ctx context.Context, rt *router.Router, env *envelope.Envelope) (claim, entity string, at time.Time, ok bool) {
	h, _, err := rt.Lookup(env.Source, env.EventType, env.SchemaVersion)
	if err != nil {
		return "", "", time.Time{}, false
	}
	out, err := h.Handle(ctx, &router.Event{Envelope: env, Attempt: 1})
	if err != nil || out == nil || out.EntityKey == "" {
		return "", "", time.Time{}, false
	}
	natural := env.IdempotencyKey
	if out.NaturalKey != "" {
		natural = env.Source + ":" + out.NaturalKey
	}
	return "dedup:" + natural, out.EntityKey, out.OccurredAt, true
}

// process runs the replay's processor until everything pending in its
// topics has a final outcome.
func (r *run) process(ctx context.Context) error {
	group := r.topic // Group
	if err := r.adoptLegacyGroup(ctx, group); err != nil {
		return err
	}
	if err := r.checkNotExpired(ctx, group); err != nil {
		return err
	}
	pcfg := r.cfg.Processor
	if pcfg.BatchSize == 0 {
		pcfg = processor.DefaultConfig()
	}
	// The copy's last commit (and a resumed run's retries) may not be
	// readable yet: counted by stable offsets, they would be missing, and
	// a replay with nothing left to count is complete. A run killed
	// mid-batch left its transaction open until the broker aborts it,
	// after the transaction timeout.
	sctx, cancel := context.WithTimeout(ctx, pcfg.TxnTimeout+15*time.Second)
	err := kafka.AwaitStable(sctx, r.adm, append([]string{r.topic}, r.retry...)...)
	cancel()
	if err != nil {
		return fmt.Errorf("wait for the copies to be readable: %w", err)
	}
	need, err := pending(ctx, r.adm, r.d.KafkaOpts, group, append([]string{r.topic}, r.retry...)...)
	if err != nil {
		return err
	}
	if need == 0 {
		return nil
	}
	pcfg.Group = group
	host, _ := os.Hostname()
	pcfg.InstanceID = "replay-" + r.cfg.ID + "-" + host + "-" + strconv.Itoa(os.Getpid())
	topics := r.d.Topics
	topics.Raw, topics.Retry = r.topic, r.retry
	pdeps := processor.Deps{
		KafkaOpts: r.d.KafkaOpts, Topics: topics, Sources: r.d.Sources, Router: r.d.Router,
		Registry: r.d.Registry, Codec: r.d.Codec, Store: r.d.Store, History: r.d.History, Log: r.d.Log,
		// The topic of a removed run of the id held copies at the same
		// positions: its done claims are not these copies' own.
		PositionTag: r.runTag,
	}
	if r.cfg.Mode == Fill {
		pdeps.FillReplay = r.cfg.ID // the copies markApplied marked are duplicates
	}
	p, err := processor.New(pcfg, pdeps)
	if err != nil {
		return err
	}
	pctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	// Only committed outcomes are counted; they are added to the progress
	// record as they come (each tick), so a process killed midway loses
	// at most the last tick's counts, not the whole run's.
	outcomes := []processor.Outcome{processor.Processed, processor.Duplicate, processor.Stale, processor.Invalid, processor.DeadLetter}
	final := func() int64 {
		c := p.Counts()
		var n int64
		for _, o := range outcomes {
			n += c.Total(o)
		}
		return n
	}
	recorded := map[processor.Outcome]int64{}
	record := func() error {
		c := p.Counts()
		delta := map[processor.Outcome]int64{}
		pipe := r.d.Redis.TxPipeline()
		for _, o := range outcomes {
			if d := c.Total(o) - recorded[o]; d > 0 {
				delta[o] = d
				pipe.HIncrBy(context.Background(), r.key, string(o), d)
			}
		}
		if len(delta) == 0 {
			return nil
		}
		if _, err := pipe.Exec(context.Background()); err != nil {
			return err
		}
		for o, d := range delta {
			recorded[o] += d
		}
		return nil
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var runErr, waitErr error
wait:
	for {
		select {
		case <-ctx.Done():
			waitErr = ctx.Err()
			break wait
		case runErr = <-done:
			done <- runErr
			if runErr == nil {
				runErr = errors.New("replay processor stopped early")
			}
			break wait
		case <-tick.C:
			n := final()
			r.report(Progress{Phase: "process", Done: n, Total: need})
			if err := record(); err != nil {
				r.d.Log.Warn("replay: outcome counts not recorded yet", "id", r.cfg.ID, "error", err)
			}
			if n >= need {
				break wait
			}
		}
	}
	stop()
	if err := <-done; err != nil && runErr == nil {
		runErr = err
	}
	if waitErr != nil && runErr == nil && final() >= need {
		// The stop landed once every copy had its outcome, before a
		// tick saw it: the replay is done (a stop is "interrupted,
		// resume" only while copies are left).
		waitErr = nil
	}
	perr := record()
	c := p.Counts()
	r.sum.Applied += c.Total(processor.Processed)
	r.sum.Duplicate += c.Total(processor.Duplicate)
	r.sum.Stale += c.Total(processor.Stale)
	r.sum.Invalid += c.Total(processor.Invalid)
	r.sum.DLQ += c.Total(processor.DeadLetter)
	return errors.Join(waitErr, runErr, perr)
}

func (r *run) report(p Progress) {
	if r.d.Progress != nil {
		r.d.Progress(p)
	}
}
