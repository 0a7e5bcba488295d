package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/replay"
	"github.com/inletdev/inlet/pkg/service"
)

// exitRefused is replay rm's exit code when it refuses: the replay is
// running, not finished (without --force), its group has active members,
// or a name it would delete may be another deployment's. Nothing was
// deleted.
const exitRefused = 3

const replayManageUsage = `Usage: inletctl [connection flags] replay ls [--output table|json] [id ...]
       inletctl [connection flags] replay rm [--dry-run] [--force --reason TEXT] [--who NAME] [--output table|json] <id>

A replay leaves its topic <prefix>.replay.<id>, its retry topics
<prefix>.replay.<id>.retry.<tier>, its consumer group <prefix>.replay.<id>
(inlet-replay-<id> for one stopped before the group took its topic's name)
and its progress record <redis key prefix>replay:<id> until they are
removed.

  ls   list replays (those with a progress record, a lock or a topic; only
       the ids named, if any): status (finished, running, stopped: run the
       same id to resume, orphaned: topics or group without a progress
       record), source, mode, range, progress, topics and their size, the
       group, and the copies its group has not processed (pending; counting
       stops at 100000). With ids, each replay's topics too.
  rm   remove a finished replay: its group, then its topics, then its
       progress record (deleting the record makes the same id start over).
       Audited on <prefix>.ops.audit before anything is deleted. Refused
       (exit 3, nothing deleted) while a run of the id holds its lock, while
       its group has active members, when a name it would delete is under
       another Inlet deployment's topic prefix, and, unless --force (with
       --reason), when it is not finished or copies are pending: the error
       says what would be lost. What is gone already is skipped: removing
       again succeeds, deleting nothing. --dry-run lists what would be
       deleted, and is refused as rm would be.

Exit codes: 0 done (or nothing left to remove); 1 an error (what was
deleted before it is listed: run rm again to finish); 2 a usage error (a
bad id: 1-100 of A-Za-z0-9._-, not holding .retry.); 3 refused.

Flags besides the connection flags: --redis-url, --redis-key-prefix (the
processor's, as for replay).

Examples:
  inletctl replay ls
  inletctl replay rm --dry-run stripe-20250131T000000Z-20250201T000000Z-fill
  inletctl replay rm fill-27th
  inletctl replay rm --force --reason "abandoned, range replayed as fill-27b" fill-27th
`

// isReplayManage: args start with a replay subcommand (replay itself
// takes no arguments, only flags).
func isReplayManage(args []string) bool {
	return len(args) > 0 && (args[0] == "ls" || args[0] == "rm")
}

// replayManage runs replay ls and replay rm.
func replayManage(cmd string, args []string, kcfg *kafka.Config, out io.Writer) (int, error) {
	fs := flagenv.New("replay " + cmd)
	fs.Usage = func() { fmt.Fprint(os.Stderr, replayManageUsage); fs.PrintDefaults() }
	var redcfg service.RedisConfig
	var output, who, reason string
	var dry, force bool
	redcfg.RegisterFlags(fs)
	fs.StringVar(&output, "output", "table", "table or json")
	if cmd == "rm" {
		fs.BoolVar(&dry, "dry-run", false, "list what would be deleted, delete nothing")
		fs.BoolVar(&force, "force", false, "remove a replay that is not finished or has copies pending (needs --reason; says what is lost)")
		fs.StringVar(&reason, "reason", "", "why (audited; required with --force)")
		fs.StringVar(&who, "who", currentUser(), "who removes it (audited; default: the current user)")
	}
	ids, err := fs.ParseInterspersed(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if output != "table" && output != "json" {
		return exitUsage, fmt.Errorf("--output %q: table or json", output)
	}
	for _, id := range ids {
		if err := replay.CheckID(id); err != nil {
			return exitUsage, err
		}
	}
	if cmd == "rm" {
		if len(ids) != 1 {
			fs.Usage()
			return exitUsage, fmt.Errorf("replay rm takes one replay id (as replay ls lists them), got %d", len(ids))
		}
		if !dry && strings.TrimSpace(who) == "" {
			return exitUsage, fmt.Errorf("%w: --who is blank, or no user name was found for this process (USER unset?): pass --who NAME, it is audited", replay.ErrNoWho)
		}
		if force && !dry && strings.TrimSpace(reason) == "" {
			return exitUsage, replay.ErrNoReason
		}
	}
	ropt, err := redcfg.Parse()
	if err != nil {
		return exitUsage, err
	}
	c, err := connectKafka(kcfg)
	if err != nil {
		return exitError, err
	}
	rdb := redisClient(ropt)
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := replay.Deps{KafkaOpts: c.opts, Topics: kafka.TopicNames(kcfg.TopicPrefix, kafka.DefaultRetryTiers), Redis: rdb, KeyPrefix: redcfg.KeyPrefix}
	var code int
	if cmd == "ls" {
		code, err = replayList(ctx, d, ids, output == "json", out)
	} else {
		code, err = replayRemove(ctx, d, ids[0], replay.RemoveOptions{DryRun: dry, Force: force, Who: who, Why: reason}, output == "json", out)
	}
	return code, withRedisHint(err, ropt)
}

func replayList(ctx context.Context, d replay.Deps, ids []string, asJSON bool, out io.Writer) (int, error) {
	infos, err := replay.List(ctx, d, ids...)
	if err != nil {
		return exitError, err
	}
	// A named id that left nothing: saying nothing would read as "fine".
	var missing error
	if len(ids) > 0 {
		found := map[string]bool{}
		for _, in := range infos {
			found[in.ID] = true
		}
		var none []string
		for _, id := range ids {
			if !found[id] {
				found[id] = true
				none = append(none, id)
			}
		}
		if len(none) > 0 {
			missing = fmt.Errorf("no replay %s: no progress record, lock or topic (removed, or another -topic-prefix or --redis-key-prefix?)", strings.Join(none, ", "))
		}
	}
	code := exitOK
	if missing != nil {
		code = exitError
	}
	if asJSON {
		return code, errors.Join(missing, jsonEncode(out, map[string]any{"count": len(infos), "replays": infos}))
	}
	if len(infos) == 0 && len(ids) == 0 {
		fmt.Fprintln(out, "no replays")
		return exitOK, nil
	}
	printReplayTable(out, infos)
	if len(ids) > 0 {
		for _, in := range infos {
			printReplayTopics(out, in)
		}
	}
	return code, missing
}

func printReplayTable(out io.Writer, infos []*replay.Info) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSOURCE\tMODE\tRANGE\tPROGRESS\tTOPICS\tSIZE\tPENDING\tGROUP")
	for _, in := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", in.ID, statusCell(in), orDash(cell(in.Source)), orDash(string(in.Mode)),
			rangeCell(in), progressCell(in), len(in.Topics), sizeCell(in.Topics), pendingCell(in.Pending, in.PendingAtLeast), groupCell(in.Group))
	}
	tw.Flush()
}

// printReplayTopics lists in's topics, one a line.
func printReplayTopics(out io.Writer, in *replay.Info) {
	fmt.Fprintf(out, "\nreplay %s:\n", in.ID)
	if in.Key != "" {
		fmt.Fprintf(out, "  progress record %s\n", in.Key)
	}
	if in.Complete || in.Phase == "process" {
		fmt.Fprintf(out, "  applied %d  duplicate %d  stale %d  invalid %d  dlq %d\n", in.Applied, in.Duplicate, in.Stale, in.Invalid, in.DLQ)
	}
	for _, t := range in.Topics {
		fmt.Fprintf(out, "  topic %s: %d partitions, %d offsets, %s, %d pending\n", t.Name, t.Partitions, t.Offsets, bytesCell(t.Bytes), t.Pending)
	}
	if g := in.Group; g != nil && len(g.Foreign) > 0 {
		fmt.Fprintf(out, "  group %s also holds offsets of %s (another deployment's replay of the same id?): rm deletes only this replay's\n", g.Name, strings.Join(g.Foreign, ", "))
	}
	if in.Conflict != "" {
		fmt.Fprintf(out, "  not removable: %s\n", in.Conflict)
	}
}

func statusCell(in *replay.Info) string {
	s := in.Status
	if h := in.Holder; h != nil {
		by := "run"
		if h.Op == replay.OpRemove {
			by = "removal"
		}
		s += fmt.Sprintf(" (%s: host %s, pid %d, since %s)", by, cell(h.Host), h.PID, h.Since.UTC().Format(time.RFC3339))
	}
	if in.Conflict != "" {
		s += " (not removable: see replay ls " + in.ID + ")"
	}
	return s
}

func rangeCell(in *replay.Info) string {
	if in.Key == "" {
		return "-"
	}
	f := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	return f(in.From, "start") + ".." + f(in.To, "?")
}

func progressCell(in *replay.Info) string {
	switch {
	case in.Phase == "":
		return "-"
	case in.Phase == "copy":
		return fmt.Sprintf("copy: %d scanned", in.Done)
	case in.Total > 0:
		return fmt.Sprintf("%s: %d/%d (%.0f%%)", in.Phase, in.Done, in.Total, 100*float64(in.Done)/float64(in.Total))
	}
	return fmt.Sprintf("%s: %d/%d", in.Phase, in.Done, in.Total)
}

func pendingCell(n int64, atLeast bool) string {
	if atLeast {
		return fmt.Sprintf("≥%d", n)
	}
	return fmt.Sprint(n)
}

func groupCell(g *replay.GroupInfo) string {
	if g == nil {
		return "-"
	}
	s := fmt.Sprintf("%s (%s, %d members)", g.Name, g.State, g.Members)
	if len(g.Foreign) > 0 {
		s += " shared"
	}
	return s
}

func sizeCell(ts []replay.TopicInfo) string {
	if len(ts) == 0 {
		return "-"
	}
	var n int64
	for _, t := range ts {
		if t.Bytes < 0 {
			return "?"
		}
		n += t.Bytes
	}
	return bytesCell(n)
}

// bytesCell is n bytes for a person: 0 B, 512 B, 1.5 KiB, 3.2 GiB.
func bytesCell(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// removeJSON is rm's JSON: the removal, and the error that stopped it.
type removeJSON struct {
	*replay.Removal
	Refused bool   `json:"refused,omitempty"`
	Error   string `json:"error,omitempty"`
}

func replayRemove(ctx context.Context, d replay.Deps, id string, o replay.RemoveOptions, asJSON bool, out io.Writer) (int, error) {
	rm, err := replay.Remove(ctx, d, id, o)
	if rm == nil && errors.Is(err, replay.ErrRunning) {
		err = fmt.Errorf("nothing deleted: %w", err) // refused before anything was read
	}
	code := removeCode(err)
	if code == exitUsage {
		return code, err
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", err)
	}
	if asJSON {
		if rm == nil {
			rm = &replay.Removal{ID: id, DryRun: o.DryRun, Topics: []string{}}
		}
		v := removeJSON{Removal: rm, Refused: code == exitRefused}
		if err != nil {
			v.Error = err.Error()
		}
		return code, errors.Join(err, jsonEncode(out, v))
	}
	if rm != nil {
		printRemoval(out, rm, err, code == exitRefused)
	}
	return code, err
}

// removeCode is rm's exit code for err.
func removeCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, replay.ErrConfig), errors.Is(err, replay.ErrNoWho), errors.Is(err, replay.ErrNoReason):
		return exitUsage
	case errors.Is(err, replay.ErrRunning), errors.Is(err, replay.ErrUnfinished), errors.Is(err, replay.ErrActive), errors.Is(err, replay.ErrNotReplay):
		return exitRefused
	}
	return exitError
}

func printRemoval(out io.Writer, rm *replay.Removal, err error, refused bool) {
	status := "-"
	if rm.Before != nil {
		status = rm.Before.Status
	}
	verb := "deleted"
	switch {
	case refused:
		verb = "has"
		fmt.Fprintf(out, "replay %s (%s): refused, nothing deleted\n", rm.ID, status)
		if rm.Nothing() {
			return
		}
	case rm.Nothing():
		fmt.Fprintf(out, "replay %s: nothing to remove (no topics, group or progress record: removed already?)\n", rm.ID)
		return
	case rm.DryRun:
		verb = "would delete"
		fmt.Fprintf(out, "replay %s (%s): dry run, nothing deleted\n", rm.ID, status)
	case err != nil:
		verb = "to delete"
		fmt.Fprintf(out, "replay %s (%s): removal stopped by an error; run it again to finish\n", rm.ID, status)
	default:
		fmt.Fprintf(out, "replay %s (%s): removed\n", rm.ID, status)
	}
	if rm.Group != "" {
		fmt.Fprintf(out, "  %s group %s\n", verb, rm.Group)
	}
	if rm.GroupOffsetsOf != "" {
		fmt.Fprintf(out, "  %s the offsets of group %s on the topics below (the group is shared with other topics: kept)\n", verb, rm.GroupOffsetsOf)
	}
	if rm.Before != nil {
		for _, t := range rm.Before.Topics {
			fmt.Fprintf(out, "  %s topic %s (%d partitions, %d offsets, %s, %d pending)\n", verb, t.Name, t.Partitions, t.Offsets, bytesCell(t.Bytes), t.Pending)
		}
	}
	if rm.Key != "" {
		fmt.Fprintf(out, "  %s Redis key %s (the same id would start over)\n", verb, rm.Key)
	}
	for _, g := range rm.Gone {
		fmt.Fprintf(out, "  already gone: %s\n", g)
	}
	switch {
	case rm.Lost != "" && rm.DryRun:
		fmt.Fprintf(out, "  forced: would lose %s\n", rm.Lost)
	case rm.Lost != "":
		fmt.Fprintf(out, "  forced: lost %s\n", rm.Lost)
	}
	if rm.Audit != "" {
		fmt.Fprintf(out, "  audited as %s\n", rm.Audit)
	}
}
