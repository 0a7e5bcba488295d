package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of Remove.
var (
	// ErrUnfinished is wrapped by Remove's *RefusedError when the replay
	// is not finished, or its topics hold copies its group has not
	// processed: removing it loses them (RefusedError.Lost says what).
	// RemoveOptions.Force removes it all the same.
	ErrUnfinished = errors.New("replay: not finished")
	// ErrActive is wrapped by Remove's *RefusedError when the replay's
	// group has active members (a run in progress, perhaps of another
	// deployment sharing the group's name): Force does not override it.
	ErrActive = errors.New("replay: its consumer group has active members")
	// ErrNotReplay is returned by Remove when a name it would delete may
	// be another's: a topic under another Inlet deployment's topic prefix,
	// or a Redis key that is not a progress record. Nothing is deleted.
	ErrNotReplay = errors.New("replay: not only this replay's")
	// ErrNoWho and ErrNoReason: a removal is audited, naming who removes
	// it; a forced one says why.
	ErrNoWho    = errors.New("replay: who removes it is required (--who)")
	ErrNoReason = errors.New("replay: a forced removal needs a reason (--reason)")
)

// RefusedError is Remove's refusal, before anything was deleted.
type RefusedError struct {
	ID     string
	Reason error // ErrUnfinished or ErrActive
	Why    string
	// Lost says what removing it anyway (Force) loses; empty for
	// ErrActive, which Force does not override.
	Lost string
}

func (e *RefusedError) Error() string {
	if e.Lost == "" {
		return fmt.Sprintf("%v: replay %s %s: nothing deleted", e.Reason, e.ID, e.Why)
	}
	return fmt.Sprintf("%v: replay %s %s; removing it loses %s: nothing deleted (--force removes it all the same)", e.Reason, e.ID, e.Why, e.Lost)
}

func (e *RefusedError) Unwrap() error { return e.Reason }

// RemoveOptions says how Remove goes.
type RemoveOptions struct {
	// DryRun finds and checks what would be deleted, and deletes (and
	// audits, and locks) nothing.
	DryRun bool
	// Force removes a replay that is not finished, or whose topics hold
	// records its group has not processed (Removal.Lost says what was
	// given up). It does not override a running replay, active group
	// members or a name that may be another's.
	Force bool
	// Who removes it and Why, audited; Why is required with Force.
	Who, Why string
}

// Removal is what Remove deleted (or, in a dry run, would delete).
type Removal struct {
	ID     string `json:"id"`
	DryRun bool   `json:"dry_run"`
	// Topics, Group and Key are what was (would be) deleted. Group is
	// empty when the group was shared with topics not of this replay
	// (GroupInfo.Foreign): then only its offsets on this replay's topics
	// are deleted, listed in GroupOffsetsOf.
	Topics         []string `json:"topics"`
	Group          string   `json:"group,omitempty"`
	GroupOffsetsOf string   `json:"group_offsets_of,omitempty"`
	Key            string   `json:"key,omitempty"`
	// Gone lists what was already gone when deleted (another removal
	// meanwhile): not an error.
	Gone []string `json:"already_gone,omitempty"`
	// Lost is what Force gave up (see RefusedError.Lost).
	Lost string `json:"lost,omitempty"`
	// Audit is the audit record's key on the audit topic.
	Audit string `json:"audit,omitempty"`
	// Before is the replay as found.
	Before *Info `json:"before"`
}

// Nothing reports whether nothing was (would be) deleted: the replay had
// left nothing, or it was removed already.
func (r *Removal) Nothing() bool {
	return len(r.Topics) == 0 && r.Group == "" && r.GroupOffsetsOf == "" && r.Key == ""
}

// AuditRecord is a removal as written to the audit topic, under key
// replay:<id>:removed:<unix ms>. It has no "id" field: the readers of
// requeue and discard decisions (ops.Decision) pass over it.
type AuditRecord struct {
	Action string    `json:"action"` // AuditRemove
	Replay string    `json:"replay"`
	Who    string    `json:"who"`
	Why    string    `json:"why,omitempty"`
	At     time.Time `json:"at"`
	Forced bool      `json:"forced,omitempty"`
	Lost   string    `json:"lost,omitempty"`
	Topics []string  `json:"topics"`
	Group  string    `json:"group,omitempty"`
	Key    string    `json:"key,omitempty"`
}

// AuditRemove is AuditRecord.Action.
const AuditRemove = "replay-remove"

// Remove deletes what replay id left: its topic and retry topics, its
// consumer group and its progress record (in that order: while the
// record lasts, a run of the id reports it finished rather than starting
// over into half-deleted topics). It uses d's KafkaOpts, Topics, Redis,
// KeyPrefix and Log.
//
// It holds the id's lock meanwhile, so a run of the id cannot start, and
// is refused at once (ErrRunning, a *RunningError) while a run holds it.
// It refuses (a *RefusedError, nothing deleted) a replay that is not
// finished or whose topics hold records its group has not processed,
// unless o.Force, and one whose group has active members; and
// (ErrNotReplay) names that may be another's. What is gone already is
// skipped: a second Remove is a no-op returning a Removal that deleted
// Nothing. The removal is written to the audit topic before anything is
// deleted; when that fails nothing is. The Removal is returned with
// every error but a bad id or options, and says what was deleted before
// a failure; run it again to finish. Cancelling ctx stops it between
// deletions.
func Remove(ctx context.Context, d Deps, id string, o RemoveOptions) (_ *Removal, err error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if !o.DryRun && strings.TrimSpace(o.Who) == "" {
		return nil, ErrNoWho
	}
	if o.Force && !o.DryRun && strings.TrimSpace(o.Why) == "" {
		return nil, ErrNoReason
	}
	if d.KeyPrefix == "" {
		d.KeyPrefix = "inlet:"
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if !o.DryRun {
		if d.Redis == nil {
			return nil, fmt.Errorf("%w: redis is required", ErrConfig)
		}
		var stop context.CancelCauseFunc
		ctx, stop = context.WithCancelCause(ctx)
		defer stop(nil)
		lk, err := lockFor(ctx, d.Redis, lockKey(d.KeyPrefix, id), id, OpRemove, stop)
		if err != nil {
			return nil, err
		}
		defer func() {
			if uerr := lk.unlock(ctx); uerr != nil {
				d.Log.Warn("replay: lock not released (it expires by itself)", "id", id, "lease", lockLease, "error", uerr)
			}
			if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrLockLost) {
				err = fmt.Errorf("%w (stopped at: %v)", cause, err)
			}
		}()
	}
	inv, err := newInventory(ctx, d)
	if err != nil {
		return nil, err
	}
	defer inv.close()
	in, err := inv.info(ctx, id, o.DryRun)
	if err != nil {
		return nil, err
	}
	// Planned before a refusal, which then says what the replay holds.
	rm := &Removal{ID: id, DryRun: o.DryRun, Topics: []string{}, Before: in}
	for _, t := range in.Topics {
		rm.Topics = append(rm.Topics, t.Name)
	}
	if g := in.Group; g != nil && len(g.Foreign) == 0 {
		rm.Group = g.Name
	} else if g != nil && len(in.Topics) > 0 {
		// Shared: only its offsets on the replay's topics go (deleting a
		// topic takes its offsets with it too, on Kafka).
		rm.GroupOffsetsOf = g.Name
	}
	rm.Key = in.Key
	if err := refuse(in, o.Force); err != nil {
		return rm, err
	}
	if o.Force {
		rm.Lost = in.loss()
	}
	if rm.Nothing() || o.DryRun {
		return rm, nil
	}
	if rm.Audit, err = inv.audit(ctx, rm, o); err != nil {
		return rm, fmt.Errorf("write the removal's audit record to %s (nothing deleted): %w", d.Topics.Audit, err)
	}
	d.Log.Info("replay: removing", "id", id, "who", o.Who, "topics", rm.Topics, "group", rm.Group, "key", rm.Key, "forced", o.Force)
	return rm, inv.remove(ctx, rm)
}

// refuse is Remove's refusal of in, if any.
func refuse(in *Info, force bool) error {
	if h := in.Holder; h != nil {
		return &RunningError{ID: in.ID, Holder: *h}
	}
	if in.Conflict != "" {
		return fmt.Errorf("%w: replay %s: %s: nothing deleted (delete by hand what is this replay's, if you are sure)", ErrNotReplay, in.ID, in.Conflict)
	}
	if g := in.Group; g != nil && g.Members > 0 {
		return &RefusedError{ID: in.ID, Reason: ErrActive,
			Why: fmt.Sprintf("has %d active consumer(s) in group %s (state %s): a run in progress (of this deployment or another sharing the group's name); stop it first", g.Members, g.Name, g.State)}
	}
	if lost := in.loss(); lost != "" && !force {
		why := "is not finished (phase " + in.Phase + ")"
		switch {
		case in.Complete:
			why = "is finished, but its topics hold records its group has not processed"
		case in.Key == "":
			why = "has no progress record, and its topics hold records its group has not processed"
		}
		return &RefusedError{ID: in.ID, Reason: ErrUnfinished, Why: why, Lost: lost}
	}
	return nil
}

// loss says what removing in loses: empty for a finished replay whose
// group processed everything on its topics.
func (in *Info) loss() string {
	pending := ""
	if in.Pending > 0 {
		n := fmt.Sprint(in.Pending)
		if in.PendingAtLeast {
			n = "at least " + n
		}
		pending = n + " copies on its topics not processed yet"
	}
	var parts []string
	switch {
	case in.Complete || in.Key == "":
		if pending == "" {
			return ""
		}
		parts = append(parts, pending)
	case in.Phase == "copy":
		parts = append(parts, fmt.Sprintf("its copy, not finished (%d raw records scanned so far), and the copies made", in.Done))
	case in.Phase == "delete":
		parts = append(parts, fmt.Sprintf("a rebuild midway: %d dedup claims and %d entity states deleted so far, none rebuilt (those entities stay without state until a replay of the range rebuilds them)",
			in.DeletedClaims, in.DeletedEntities))
	default:
		p := pending
		if p == "" {
			p = "copies not processed yet"
		}
		parts = append(parts, fmt.Sprintf("%s (%d of %d with an outcome)", p, in.Done, in.Total))
		if in.Mode == Rebuild {
			parts = append(parts, fmt.Sprintf("the rebuild of the entities whose state it deleted (%d) and whose events are among them: they stay without state, or with an older one, until a replay of the range rebuilds them", in.DeletedEntities))
		}
	}
	if in.Key != "" {
		parts = append(parts, "its progress record (the same id would start over, copying the range again)")
	}
	return strings.Join(parts, "; ") + "; the events themselves stay on the raw topic"
}

// audit writes rm to the audit topic and returns the record's key.
func (inv *inventory) audit(ctx context.Context, rm *Removal, o RemoveOptions) (string, error) {
	at := time.Now().UTC()
	key := fmt.Sprintf("replay:%s:removed:%d", rm.ID, at.UnixMilli())
	group := rm.Group
	if group == "" && rm.GroupOffsetsOf != "" {
		group = rm.GroupOffsetsOf + " (offsets on the replay's topics only)"
	}
	b, err := json.Marshal(AuditRecord{Action: AuditRemove, Replay: rm.ID, Who: o.Who, Why: o.Why, At: at, Forced: o.Force,
		Lost: rm.Lost, Topics: rm.Topics, Group: group, Key: rm.Key})
	if err != nil {
		return "", err
	}
	rec := &kgo.Record{Topic: inv.d.Topics.Audit, Key: []byte(key), Value: b, Timestamp: at}
	return key, inv.cl.ProduceSync(ctx, rec).FirstErr()
}

// remove deletes what rm names: the group (or its offsets on the replay's
// topics) first, while its offsets still say whose it is; then the
// topics; the progress record last.
func (inv *inventory) remove(ctx context.Context, rm *Removal) error {
	gone := func(what string) { rm.Gone = append(rm.Gone, what) }
	if rm.Group != "" {
		rs, err := inv.adm.DeleteGroups(ctx, rm.Group)
		if err == nil {
			err = rs[rm.Group].Err
		}
		switch {
		case errors.Is(err, kerr.GroupIDNotFound):
			gone("group " + rm.Group)
		case errors.Is(err, kerr.NonEmptyGroup):
			return fmt.Errorf("delete group %s: a consumer joined it meanwhile (a run started?): %w; nothing else deleted", rm.Group, err)
		case err != nil:
			return fmt.Errorf("delete group %s (nothing else deleted; run the removal again): %w", rm.Group, err)
		}
	}
	if rm.GroupOffsetsOf != "" {
		// Every partition of the replay's topics: DeleteOffsets takes
		// partitions, not topics.
		set := kadm.TopicsSet{}
		for _, t := range rm.Before.Topics {
			for p := range int32(t.Partitions) {
				set.Add(t.Name, p)
			}
		}
		rs, err := inv.adm.DeleteOffsets(ctx, rm.GroupOffsetsOf, set)
		if err == nil {
			err = rs.Error()
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return fmt.Errorf("delete the offsets of group %s on %s (nothing else deleted; run the removal again): %w", rm.GroupOffsetsOf, strings.Join(rm.Topics, ", "), err)
		}
	}
	if len(rm.Topics) > 0 {
		rs, err := inv.adm.DeleteTopics(ctx, rm.Topics...)
		if err != nil {
			return fmt.Errorf("delete topics %s (run the removal again): %w", strings.Join(rm.Topics, ", "), err)
		}
		var errs []error
		for _, t := range rm.Topics {
			switch r, ok := rs[t]; {
			case !ok:
				errs = append(errs, fmt.Errorf("delete topic %s: not in the broker's answer", t))
			case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
				gone("topic " + t)
			case r.Err != nil:
				errs = append(errs, fmt.Errorf("delete topic %s: %w", t, r.Err))
			}
		}
		if len(errs) > 0 {
			errs = append(errs, errors.New("progress record kept; run the removal again"))
			return errors.Join(errs...)
		}
	}
	if rm.Key != "" {
		n, err := inv.d.Redis.Del(ctx, rm.Key).Result()
		if err != nil {
			return fmt.Errorf("delete Redis key %s (topics and group are deleted; run the removal again): %w", rm.Key, err)
		}
		if n == 0 {
			gone("key " + rm.Key)
		}
	}
	return nil
}
