package replay

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/testenv"
)

// cluster is what a test checks is left alone: every topic, every group,
// every Redis key.
type cluster struct {
	topics, groups, keys map[string]bool
}

func (h *harness) snapshot(t *testing.T) cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(h.env.Client(t))
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := h.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	c := cluster{topics: map[string]bool{}, groups: map[string]bool{}, keys: map[string]bool{}}
	for name := range td {
		c.topics[name] = true
	}
	for _, g := range gs.Groups() {
		c.groups[g] = true
	}
	for _, k := range keys {
		c.keys[k] = true
	}
	return c
}

// gone returns what b lacks of a, and what b has that a had not.
func gone(a, b map[string]bool) (lost, added []string) {
	for k := range a {
		if !b[k] {
			lost = append(lost, k)
		}
	}
	for k := range b {
		if !a[k] {
			added = append(added, k)
		}
	}
	slices.Sort(lost)
	slices.Sort(added)
	return lost, added
}

// replayNames are the topics, group and key replay id makes.
func (h *harness) replayNames(id string) (topics []string, group, key string) {
	topic := Topic(h.topics, id)
	topics = []string{topic}
	for _, tier := range h.topics.RetryTiers {
		topics = append(topics, topic+".retry."+kafka.TierName(tier))
	}
	slices.Sort(topics)
	return topics, Group(h.topics, id), h.env.Prefix + ":replay:" + id
}

// auditRecords reads the replay removals on the audit topic.
func (h *harness) auditRecords(t *testing.T) []AuditRecord {
	t.Helper()
	var out []AuditRecord
	for _, r := range h.env.ReadAll(t, h.topics.Audit, 0, time.Second, 10*time.Second) {
		var a AuditRecord
		if json.Unmarshal(r.Value, &a) == nil && a.Action == AuditRemove {
			out = append(out, a)
		}
	}
	return out
}

func infoOf(t *testing.T, infos []*Info, id string) *Info {
	t.Helper()
	for _, in := range infos {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("replay %s not listed", id)
	return nil
}

func TestListAndRemove(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_2", 1700000200)
	h.send("other", "evt_3", "pi_3", 1700000300)
	h.process(3) // the processor's group, and every topic of the deployment in use
	// Two finished replays, one's id a prefix of the other's names: a
	// dot and ".retry" in an id are allowed.
	if s := h.replay(t, "done", Fill, before); !s.Complete || s.Read != 2 {
		t.Fatalf("replay done: %+v", s)
	}
	if s := h.replay(t, "done.retry", Fill, before); !s.Complete {
		t.Fatalf("replay done.retry: %+v", s)
	}

	// One running: held after its first copy is committed.
	defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
	copyChunk = 1
	held, release := make(chan struct{}), make(chan struct{})
	afterCommit = func() {
		select {
		case <-held:
		default:
			close(held)
			<-release
		}
	}
	busy := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Config{ID: "busy", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}, h.deps())
		busy <- err
	}()
	select {
	case <-held:
	case err := <-busy:
		t.Fatalf("replay busy ended before it was held: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("replay busy never committed a copy")
	}
	released := false
	finish := func() {
		if !released {
			released = true
			close(release)
			if err := <-busy; err != nil {
				t.Fatalf("replay busy: %v", err)
			}
		}
	}
	defer finish()

	t.Run("list shows the finished and the running replays", func(t *testing.T) {
		infos, err := List(ctx, h.deps())
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, in := range infos {
			ids = append(ids, in.ID)
		}
		if !slices.Equal(ids, []string{"busy", "done", "done.retry"}) {
			t.Fatalf("listed %v", ids)
		}
		done := infoOf(t, infos, "done")
		topics, group, key := h.replayNames("done")
		var names []string
		for _, tp := range done.Topics {
			names = append(names, tp.Name)
		}
		slices.Sort(names)
		if done.Status != StatusFinished || !done.Complete || done.Phase != "complete" || done.Source != "stripe" || done.Mode != Fill ||
			!done.From.Equal(before.Truncate(time.Millisecond)) || done.To.IsZero() || done.Done != 2 || done.Total != 2 || done.Holder != nil {
			t.Errorf("done: %+v", done)
		}
		if !slices.Equal(names, topics) || done.Key != key || done.Group == nil || done.Group.Name != group || done.Group.Members != 0 || done.Pending != 0 {
			t.Errorf("done: topics %v (want %v), key %q, group %+v, pending %d", names, topics, done.Key, done.Group, done.Pending)
		}
		if done.Topics[0].Name != Topic(h.topics, "done") || done.Topics[0].Offsets == 0 || done.Topics[0].Bytes <= 0 || done.Topics[0].Partitions != 3 {
			t.Errorf("done's topic first, with its size: %+v", done.Topics)
		}
		if n := len(infoOf(t, infos, "done.retry").Topics); n != 4 {
			t.Errorf("done.retry has %d topics, want its own 4", n)
		}
		b := infoOf(t, infos, "busy")
		if b.Status != StatusRunning || b.Complete || b.Phase != "copy" || b.Holder == nil || b.Holder.PID != os.Getpid() || b.Holder.Token != "" || b.Pending == 0 {
			t.Errorf("busy: %+v (holder %+v)", b, b.Holder)
		}
		only, err := List(ctx, h.deps(), "done", "nosuch")
		if err != nil || len(only) != 1 || only[0].ID != "done" {
			t.Errorf("List(done, nosuch) = %v, %v; want done alone", only, err)
		}
	})

	t.Run("a running replay is refused, dry run too, and nothing is deleted", func(t *testing.T) {
		snap := h.snapshot(t)
		for _, dry := range []bool{true, false} {
			_, err := Remove(ctx, h.deps(), "busy", RemoveOptions{DryRun: dry, Force: true, Who: "sre", Why: "test"})
			var re *RunningError
			if !errors.As(err, &re) || re.Holder.PID != os.Getpid() {
				t.Errorf("dry run %v: %v, want a *RunningError naming this process", dry, err)
			}
		}
		if lost, added := gone(snap.topics, h.snapshot(t).topics); len(lost)+len(added) > 0 {
			t.Fatalf("topics deleted %v, added %v", lost, added)
		}
	})

	finish()
	snap := h.snapshot(t)
	topics, group, key := h.replayNames("done")

	t.Run("dry run lists what would be deleted and deletes nothing", func(t *testing.T) {
		rm, err := Remove(ctx, h.deps(), "done", RemoveOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(rm.Topics))
		if !slices.Equal(got, topics) || rm.Group != group || rm.Key != key || rm.Audit != "" || !rm.DryRun {
			t.Fatalf("dry run %+v; want topics %v, group %s, key %s", rm, topics, group, key)
		}
		after := h.snapshot(t)
		for _, m := range []struct{ a, b map[string]bool }{{snap.topics, after.topics}, {snap.groups, after.groups}, {snap.keys, after.keys}} {
			if lost, added := gone(m.a, m.b); len(lost)+len(added) > 0 {
				t.Fatalf("dry run deleted %v, added %v", lost, added)
			}
		}
	})

	t.Run("remove deletes exactly the replay's topics, group and key", func(t *testing.T) {
		rm, err := Remove(ctx, h.deps(), "done", RemoveOptions{Who: "sre", Why: "cleanup"})
		if err != nil {
			t.Fatal(err)
		}
		if rm.Nothing() || rm.Audit == "" || len(rm.Gone) > 0 {
			t.Fatalf("removal %+v", rm)
		}
		after := h.snapshot(t)
		if lost, added := gone(snap.topics, after.topics); !slices.Equal(lost, topics) || len(added) > 0 {
			t.Errorf("topics deleted %v (want %v), added %v", lost, topics, added)
		}
		if lost, added := gone(snap.groups, after.groups); !slices.Equal(lost, []string{group}) || len(added) > 0 {
			t.Errorf("groups deleted %v (want %s), added %v", lost, group, added)
		}
		if lost, added := gone(snap.keys, after.keys); !slices.Equal(lost, []string{key}) || len(added) > 0 {
			t.Errorf("keys deleted %v (want %s), added %v", lost, key, added)
		}
		for _, kept := range append([]string{h.topics.Raw, h.topics.DLQ, h.topics.Invalid, h.topics.Processed, h.topics.State, h.topics.Audit,
			Topic(h.topics, "done.retry"), Topic(h.topics, "busy")}, h.topics.Retry...) {
			if !after.topics[kept] {
				t.Errorf("topic %s was deleted", kept)
			}
		}
		for _, kept := range []string{h.pcfg().Group, Group(h.topics, "done.retry"), Group(h.topics, "busy")} {
			if !after.groups[kept] {
				t.Errorf("group %s was deleted", kept)
			}
		}
		audits := h.auditRecords(t)
		if len(audits) != 1 || audits[0].Replay != "done" || audits[0].Who != "sre" || audits[0].Why != "cleanup" || audits[0].Forced ||
			!slices.Equal(slices.Sorted(slices.Values(audits[0].Topics)), topics) || audits[0].Group != group || audits[0].Key != key {
			t.Errorf("audit records %+v", audits)
		}
		t.Run("the same id runs again from the start", func(t *testing.T) {
			if s := h.replay(t, "done", Fill, before); s.Resumed || !s.Complete || s.Read != 2 {
				t.Fatalf("after removal: %+v, want a new replay", s)
			}
		})
	})

	t.Run("a second remove is a no-op success", func(t *testing.T) {
		if _, err := Remove(ctx, h.deps(), "done", RemoveOptions{Who: "sre"}); err != nil { // what the rerun above left
			t.Fatal(err)
		}
		audits := len(h.auditRecords(t))
		snap := h.snapshot(t)
		rm, err := Remove(ctx, h.deps(), "done", RemoveOptions{Who: "sre"})
		if err != nil || !rm.Nothing() || rm.Audit != "" {
			t.Fatalf("second remove: %+v, %v; want nothing to do", rm, err)
		}
		if lost, _ := gone(snap.topics, h.snapshot(t).topics); len(lost) > 0 {
			t.Fatalf("deleted %v", lost)
		}
		if n := len(h.auditRecords(t)); n != audits {
			t.Fatalf("%d audit records, want %d: nothing removed, nothing audited", n, audits)
		}
	})
}

// An unfinished replay is refused, saying what would be lost; --force
// removes it, saying so, and with a reason only.
func TestRemoveUnfinished(t *testing.T) {
	h := newHarness(t)
	before := time.Now().Add(-time.Second)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.send("stripe", "evt_2", "pi_2", 1700000200)
	defer func(c int) { copyChunk, afterCommit = c, nil }(copyChunk)
	copyChunk = 1
	ctx, cancel := context.WithCancel(context.Background())
	afterCommit = cancel // stopped after its first copy
	if _, err := Run(ctx, Config{ID: "half", Source: "stripe", From: before, Mode: Fill, Processor: h.pcfg()}, h.deps()); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped replay: %v", err)
	}
	afterCommit = nil
	bg := context.Background()
	infos, err := List(bg, h.deps(), "half")
	if err != nil || len(infos) != 1 {
		t.Fatalf("list: %v, %v", infos, err)
	}
	if in := infos[0]; in.Status != StatusStopped || in.Phase != "copy" || in.Pending != 1 || in.Group != nil || in.Holder != nil {
		t.Fatalf("half: %+v", in)
	}
	snap := h.snapshot(t)
	for _, dry := range []bool{true, false} {
		rm, err := Remove(bg, h.deps(), "half", RemoveOptions{DryRun: dry, Who: "sre"})
		var re *RefusedError
		if !errors.As(err, &re) || !errors.Is(err, ErrUnfinished) || !strings.Contains(err.Error(), "--force") ||
			!strings.Contains(re.Lost, "its copy, not finished") || !strings.Contains(re.Lost, "progress record") {
			t.Fatalf("dry run %v: %v, want a refusal saying what is lost", dry, err)
		}
		if rm == nil || len(rm.Topics) != 4 {
			t.Fatalf("dry run %v: refused removal %+v, want what it holds", dry, rm)
		}
	}
	if _, err := Remove(bg, h.deps(), "half", RemoveOptions{Force: true, Who: "sre"}); !errors.Is(err, ErrNoReason) {
		t.Fatalf("forced without a reason: %v", err)
	}
	if lost, _ := gone(snap.topics, h.snapshot(t).topics); len(lost) > 0 {
		t.Fatalf("refused, yet deleted %v", lost)
	}
	rm, err := Remove(bg, h.deps(), "half", RemoveOptions{Force: true, Who: "sre", Why: "abandoned"})
	if err != nil || !strings.Contains(rm.Lost, "its copy, not finished") {
		t.Fatalf("forced: %+v, %v", rm, err)
	}
	if lost, _ := gone(snap.topics, h.snapshot(t).topics); len(lost) != 4 {
		t.Fatalf("forced removal deleted %v, want the 4 topics", lost)
	}
	if a := h.auditRecords(t); len(a) != 1 || !a[0].Forced || a[0].Why != "abandoned" || !strings.Contains(a[0].Lost, "its copy") {
		t.Fatalf("audit %+v", a)
	}
}

// A group with active members is refused, --force or not.
func TestRemoveActiveGroup(t *testing.T) {
	h := newHarness(t)
	h.send("stripe", "evt_1", "pi_1", 1700000100)
	h.replay(t, "act", Fill, time.Now().Add(-time.Minute))
	cl := h.env.Client(t, kgo.ConsumerGroup(Group(h.topics, "act")), kgo.ConsumeTopics(Topic(h.topics, "act")))
	adm := kadm.NewClient(h.env.Client(t))
	testenv.Eventually(t, 30*time.Second, "a member in group "+Group(h.topics, "act"), func() bool {
		pctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx)
		d, err := adm.DescribeGroups(context.Background(), Group(h.topics, "act"))
		return err == nil && len(d[Group(h.topics, "act")].Members) > 0
	})
	_, err := Remove(context.Background(), h.deps(), "act", RemoveOptions{Force: true, Who: "sre", Why: "x"})
	if !errors.Is(err, ErrActive) {
		t.Fatalf("%v, want ErrActive", err)
	}
	cl.Close()
	if rm, err := Remove(context.Background(), h.deps(), "act", RemoveOptions{Who: "sre"}); err != nil || rm.Group != Group(h.topics, "act") {
		t.Fatalf("after the member left: %+v, %v", rm, err)
	}
}

// Hostile ids are refused before anything is read; ids that CheckID takes
// but whose names are under another deployment's prefix are refused too;
// an id with a dot removes its own names only.
func TestRemoveHostileIDs(t *testing.T) {
	for _, id := range []string{"", "../x", "*", "a/b", "a b", "x:lock", "a.retry.30s", strings.Repeat("a", 101), strings.Repeat("a", 300), "é"} {
		if _, err := Remove(context.Background(), Deps{}, id, RemoveOptions{DryRun: true}); !errors.Is(err, ErrConfig) {
			t.Errorf("Remove(%q): %v, want ErrConfig", id, err)
		}
		if _, err := List(context.Background(), Deps{}, id); !errors.Is(err, ErrConfig) {
			t.Errorf("List(%q): %v, want ErrConfig", id, err)
		}
	}

	h := newHarness(t)
	ctx := context.Background()
	adm := kadm.NewClient(h.env.Client(t))
	// Another deployment whose prefix is under this one's replay topics.
	other := Topic(h.topics, "staging")
	mk := func(names ...string) {
		for _, n := range names {
			if _, err := adm.CreateTopic(ctx, 1, -1, nil, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(other+".raw", other+".dlq", other+".retry.30s", other+".replay.x", Topic(h.topics, "a"), Topic(h.topics, "a.b"))
	if err := h.rdb.Set(ctx, h.env.Prefix+":replay:str", "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	snap := h.snapshot(t)
	for _, id := range []string{"staging", "staging.raw", "staging.dlq", "staging.replay.x", "str"} {
		for _, dry := range []bool{true, false} {
			if _, err := Remove(ctx, h.deps(), id, RemoveOptions{DryRun: dry, Force: true, Who: "sre", Why: "x"}); !errors.Is(err, ErrNotReplay) {
				t.Errorf("Remove(%q, dry run %v): %v, want ErrNotReplay", id, dry, err)
			}
		}
	}
	after := h.snapshot(t)
	if lost, _ := gone(snap.topics, after.topics); len(lost) > 0 {
		t.Fatalf("deleted %v", lost)
	}
	if !after.keys[h.env.Prefix+":replay:str"] {
		t.Fatal("the string key was deleted")
	}
	infos, err := List(ctx, h.deps(), "staging.raw")
	if err != nil || len(infos) != 1 || !strings.Contains(infos[0].Conflict, other+".raw exists") {
		t.Fatalf("list staging.raw: %+v, %v; want its conflict said", infos, err)
	}
	if rm, err := Remove(ctx, h.deps(), "a.b", RemoveOptions{Who: "sre"}); err != nil || !slices.Equal(rm.Topics, []string{Topic(h.topics, "a.b")}) {
		t.Fatalf("remove a.b: %+v, %v", rm, err)
	}
	if lost, _ := gone(after.topics, h.snapshot(t).topics); !slices.Equal(lost, []string{Topic(h.topics, "a.b")}) {
		t.Fatalf("remove a.b deleted %v", lost)
	}
}

func TestReplayOfTopicNames(t *testing.T) {
	inv := &inventory{base: "inlet.replay."}
	for name, want := range map[string]struct {
		id           string
		retry, valid bool
	}{
		"inlet.replay.a":                     {"a", false, true},
		"inlet.replay.a.retry.30s":           {"a", true, true},
		"inlet.replay.a.retry.1h30m":         {"a", true, true},
		"inlet.replay.a.retry":               {"a.retry", false, true},
		"inlet.replay.a.retry.retry.2m":      {"a.retry", true, true},
		"inlet.replay.a.retry.30s.retry.30s": {"a.retry.30s", true, false}, // no valid id: none's
		"inlet.replay.a.retry.0s":            {"a.retry.0s", false, false},
		"inlet.replay.a.retry.2m0s":          {"a.retry.2m0s", false, false}, // not as TierName writes 2m
		"inlet.raw":                          {"", false, false},
		"inlet.replay.":                      {"", false, false},
		"other.replay.a":                     {"", false, false},
	} {
		id, retry, ok := inv.replayOf(name)
		if ok != want.valid || (ok && (id != want.id || retry != want.retry)) {
			t.Errorf("replayOf(%q) = %q, %v, %v; want %+v", name, id, retry, ok, want)
		}
	}
}

func TestParseParams(t *testing.T) {
	from := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	r := &run{cfg: Config{Source: "a|b", Mode: Rebuild, From: from, To: from.Add(time.Hour)}}
	src, mode, f, to := parseParams(r.params())
	if src != "a|b" || mode != Rebuild || !f.Equal(from) || !to.Equal(from.Add(time.Hour)) {
		t.Fatalf("parseParams(%q) = %q %q %v %v", r.params(), src, mode, f, to)
	}
	r.cfg.From = time.Time{}
	if _, _, f, _ := parseParams(r.params()); !f.IsZero() {
		t.Fatalf("open start read as %v", f)
	}
	if src, _, _, _ := parseParams("garbage"); src != "" {
		t.Fatalf("garbage read as source %q", src)
	}
}

func TestGlobEscape(t *testing.T) {
	got := globEscape(`in*l?t[x]\-^:`)
	if want := `in\*l\?t\[x\]\\\-\^:`; got != want {
		t.Fatalf("globEscape = %s, want %s", got, want)
	}
}

// A legacy group (inlet-replay-<id>, named before groups took their
// topic's name) carries no topic prefix: one holding offsets of another
// deployment's replay of the same id is kept, and only this replay's
// offsets deleted.
func TestRemoveSharedGroup(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	adm := kadm.NewClient(h.env.Client(t))
	mine, theirs := Topic(h.topics, "shared"), "zz.replay.shared"
	for _, n := range []string{mine, theirs} {
		if _, err := adm.CreateTopic(ctx, 1, -1, nil, n); err != nil {
			t.Fatal(err)
		}
	}
	var offs kadm.Offsets
	offs.AddOffset(mine, 0, 0, -1)
	offs.AddOffset(theirs, 0, 0, -1)
	if r, err := adm.CommitOffsets(ctx, legacyGroup("shared"), offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	infos, err := List(ctx, h.deps(), "shared")
	if err != nil || len(infos) != 1 || infos[0].Group == nil || !slices.Equal(infos[0].Group.Foreign, []string{theirs}) {
		t.Fatalf("list: %+v, %v; want the group's foreign topic named", infos, err)
	}
	rm, err := Remove(ctx, h.deps(), "shared", RemoveOptions{Who: "sre"})
	if err != nil || rm.Group != "" || rm.GroupOffsetsOf != legacyGroup("shared") || !slices.Equal(rm.Topics, []string{mine}) {
		t.Fatalf("remove: %+v, %v", rm, err)
	}
	o, err := adm.FetchOffsets(ctx, legacyGroup("shared"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Lookup(theirs, 0); !ok {
		t.Fatalf("the other deployment's offsets were deleted: %+v", o)
	}
	if _, ok := o.Lookup(mine, 0); ok {
		t.Fatalf("this replay's offsets were kept: %+v", o)
	}
	td, err := adm.ListTopics(ctx, theirs)
	if err != nil || td[theirs].Err != nil {
		t.Fatalf("%s: %v %v", theirs, err, td[theirs].Err)
	}
}

// A run of an id being removed is told so, not that another run holds it.
func TestRunningErrorNamesARemoval(t *testing.T) {
	since := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	err := (&RunningError{ID: "r", Holder: Holder{Host: "ops-1", PID: 7, Since: since, Op: OpRemove}}).Error()
	if !strings.Contains(err, "replay r is being removed by inletctl replay rm (host ops-1, pid 7, since 2026-11-30T03:00:00Z)") {
		t.Fatalf("%s", err)
	}
}
