package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/handlers"
	"github.com/inletdev/inlet/pkg/history"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/replay"
	"github.com/inletdev/inlet/pkg/service"
	"github.com/inletdev/inlet/pkg/source"
	"github.com/inletdev/inlet/pkg/store"
)

const replayUsage = `Usage: inletctl [connection flags] replay --source S [--from T1] [--to T2] [--mode fill|rebuild] [--id NAME] [flags]
       inletctl [connection flags] replay ls|rm [flags] [id]

Re-reads the raw topic's records of one source received in [--from, --to)
(by each record's time, read from a minute around the range: records land
out of time order) and processes them again (in this process, as consumer group
<prefix>.replay.<id>, into the ordinary processed/state/DLQ/invalid topics
and Redis state).

  fill     dedup respected: only events never processed are applied (gaps);
           once its dedup claim expired (older than the source's
           dedup_window), an event without a business time, or whose entity
           has no stored state, is processed again
  rebuild  first delete the dedup claims and entity state of the events in
           the range, then process them: those entities are rebuilt (an
           entity whose state is an event outside the range, such as a
           newer one received since, is kept and reported)

Interrupt (Ctrl-C) and run the same command again to resume; while a run
of the id is under way (another terminal, another pod), a second one is
refused at once (exit 2), naming the host and pid of the first. With --to
the id defaults to one derived from source, range and mode; without it
(up to the end of the topic when the first run starts) name the replay
with --id. A --to or --from later than now is refused: the raw topic
holds nothing after now, and a finished replay is not run again, so
events arriving later inside the range would never be replayed.

The processing flags (-batch-size, -workers, -claim-lease, -txn-timeout,
-backoff-max, -batch-deadline, -drain-timeout, or their INLET_* variables)
are the processor's: give the replay the processor's values.

A replay's topics, group and progress record stay until removed: list
replays with "inletctl replay ls", remove a finished one with
"inletctl replay rm <id>" (run "inletctl replay rm -h").

Examples:
  inletctl replay --source shop --from 2025-01-31T00:00:00Z --to 2025-02-01T00:00:00Z
  inletctl replay --source stripe --mode rebuild --id stripe-rebuild-1 --output json
  inletctl replay ls
  inletctl replay rm --dry-run stripe-rebuild-1
`

func replayCmd(args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	if isReplayManage(args) {
		return replayManage(args[0], args[1:], kcfg, out)
	}
	fs := flagenv.New("replay")
	fs.Usage = func() { fmt.Fprint(os.Stderr, replayUsage); fs.PrintDefaults() }
	var src, from, to, mode, id, output, sourcesPath string
	var redcfg service.RedisConfig
	var historyRetention time.Duration
	fs.StringVar(&src, "source", "", "the source to replay (required)")
	fs.StringVar(&from, "from", "", "first raw record time, RFC 3339 (default: the start of the topic)")
	fs.StringVar(&to, "to", "", "end of the range (exclusive), RFC 3339, not later than now (default: when the first run of this --id starts; --id is then required)")
	fs.StringVar(&mode, "mode", "fill", "fill or rebuild")
	fs.StringVar(&id, "id", "", "replay id; the same id resumes (default: derived from source, range and mode)")
	fs.StringVar(&output, "output", "table", "table or json")
	fs.String(&sourcesPath, "sources", "INLET_SOURCES", "sources.yaml", "sources file (the processor's)")
	redcfg.RegisterFlags(fs) // the processor's
	fs.Duration(&historyRetention, "history-retention", "INLET_HISTORY_RETENTION", 7*24*time.Hour, "the processor's: how long replayed events' history is kept (0: none written)")
	tiers := kafka.RetryTiersFlag(fs, "retry tier delays (the processor's)")
	var cfg replay.Config
	// The processor's tuning, read as the processor reads it: the claim
	// lease above all, as the replay claims the same events' keys.
	cfg.Processor.RegisterTuningFlags(fs)
	cfg.Processor.RegisterDrainFlag(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if src == "" || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage, errors.New("replay: --source is required and takes no arguments")
	}
	var err error
	if cfg.From, err = parseTime(from); err != nil {
		return exitUsage, err
	}
	if cfg.To, err = parseTime(to); err != nil {
		return exitUsage, err
	}
	if cfg.To.IsZero() && id == "" {
		// The first run fixes the end at its start; resuming keeps it.
		return exitUsage, errors.New("replay: without --to, name the replay with --id so it can be resumed (or give --to)")
	}
	if mode != string(replay.Fill) && mode != string(replay.Rebuild) {
		return exitUsage, fmt.Errorf("--mode %q: fill or rebuild", mode)
	}
	if output != "table" && output != "json" {
		return exitUsage, fmt.Errorf("--output %q: table or json", output)
	}
	if historyRetention < 0 {
		return exitUsage, fmt.Errorf("--history-retention %v: want 0 (off) or more", historyRetention)
	}
	cfg.Source, cfg.Mode, cfg.ID = src, replay.Mode(mode), id
	if cfg.ID == "" {
		cfg.ID = replay.DefaultID(src, cfg.From, cfg.To, cfg.Mode)
	}
	// As replay.Run checks it (a --to or --from later than now above all),
	// before connecting to anything.
	if err := cfg.Validate(); err != nil {
		return exitUsage, err
	}
	// Refused now rather than when the copy is done and processing starts.
	pcfg := cfg.Processor
	pcfg.Group = "replay" // any name passes; Run names the replay's group
	if err := pcfg.Validate(); err != nil {
		return exitUsage, err
	}
	delays, err := tiers()
	if err != nil {
		return exitUsage, err
	}

	sources, err := source.Load(sourcesPath, source.WithoutSecrets())
	if err != nil {
		return exitUsage, fmt.Errorf("--sources (INLET_SOURCES): %w", err)
	}
	scfg, ok := sources.Get(src)
	if !ok {
		return exitUsage, fmt.Errorf("replay: no source %q in %s", src, sourcesPath)
	}
	if cfg.Mode == replay.Fill {
		if w := fillWarning(src, scfg.DedupWindow.D(), cfg.From, time.Now()); w != "" {
			fmt.Fprintln(os.Stderr, "inletctl: warning:", w)
		}
	}
	rt, err := handlers.Router(sources)
	if err != nil {
		return exitError, err
	}
	ropt, err := redcfg.Parse()
	if err != nil {
		return exitUsage, err
	}
	rdb := redisClient(ropt)
	defer rdb.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	topics := kafka.TopicNames(kcfg.TopicPrefix, delays)
	// A replay processes as the processor does, and registers processed
	// schemas as it goes: with read-only registry credentials it would
	// wait on the refusal for good. So its envelope codec is built as the
	// processor's is, writing the schema, which checks the access up front
	// (the other commands only look it up: see connect).
	c, err := connectKafka(kcfg)
	if err != nil {
		return exitError, err
	}
	if c.reg, err = rcfg.Client(); err != nil {
		return exitError, err
	}
	if c.codec, err = envelope.NewCodec(ctx, c.reg, topics.RawSubject()); registry.IsDenied(err) {
		return exitError, fmt.Errorf("replay processes events and registers their schemas as the processor does, so its registry credentials need write access: %w", err)
	} else if err != nil {
		return exitError, err
	}
	d := replay.Deps{
		KafkaOpts: c.opts, Topics: topics, Sources: sources, Router: rt, Registry: c.reg, Codec: c.codec,
		Store: store.New(rdb, append(redcfg.StoreOpts(), cfg.Processor.StoreOpts()...)...),
		Redis: rdb, KeyPrefix: redcfg.KeyPrefix,
	}
	if historyRetention > 0 { // as the processor's: 0 writes none
		d.History = history.New(rdb, redcfg.KeyPrefix, historyRetention)
	}
	tty := isTerminal(os.Stdout) && output != "json"
	if tty {
		d.Progress = func(p replay.Progress) { fmt.Fprintf(out, "\r\033[K%s", progressLine(p)) }
	}
	sum, err := replay.Run(ctx, cfg, d)
	err = withRedisHint(err, ropt)
	if tty {
		fmt.Fprint(out, "\r\033[K")
	}
	// Another run of the id under way is refused at once, before
	// anything is read: as a usage error, run the command later.
	if errors.Is(err, replay.ErrConfig) || errors.Is(err, replay.ErrMismatch) || errors.Is(err, replay.ErrRunning) {
		return exitUsage, err
	}
	if sum != nil {
		if output == "json" {
			enc := json.NewEncoder(jsonOut{out})
			enc.SetIndent("", "  ")
			_ = enc.Encode(sum)
		} else {
			printReplay(out, sum)
		}
	}
	if errors.Is(err, context.Canceled) {
		return exitError, fmt.Errorf("interrupted: run the same command (id %s) to resume", cfg.ID)
	}
	if err != nil {
		return exitError, err
	}
	return exitOK, nil
}

func progressLine(p replay.Progress) string {
	switch {
	case p.Phase == "process" && p.Total > 0:
		return fmt.Sprintf("processing %d/%d (%.0f%%)", p.Done, p.Total, 100*float64(p.Done)/float64(p.Total))
	case p.Phase == "copy":
		return fmt.Sprintf("copying: %d raw records scanned (of every source)", p.Done)
	}
	return p.Phase + "…"
}

func printReplay(out io.Writer, s *replay.Summary) {
	state := "complete"
	if !s.Complete {
		state = "incomplete"
	}
	if s.Resumed {
		state += " (resumed)"
	}
	fmt.Fprintf(out, "replay %s: %s, mode %s, source %s, topic %s\n", s.ID, state, s.Mode, s.Source, s.Topic)
	fmt.Fprintf(out, "  read %d of source %s's %d raw records in range (%d raw records of all sources scanned)\n  applied %d  duplicate %d  stale %d  invalid %d  dlq %d\n",
		s.Read, s.Source, s.SourceRecords, s.Scanned, s.Applied, s.Duplicate, s.Stale, s.Invalid, s.DLQ)
	if n := s.OnFailureQueues; n > 0 {
		them := "them"
		if n == 1 {
			them = "it"
		}
		fmt.Fprintf(out, "  left %s whose DLQ or invalid entry is undecided (requeue %s from there)\n", eventCount(n), them)
	}
	if n := s.LeftDiscarded; n > 0 {
		fmt.Fprintf(out, "  left %s whose entry an operator discarded (decided: not replayed, and not to requeue)\n", eventCount(n))
	}
	if s.Mode == replay.Rebuild {
		if s.DeletedAtLeast {
			fmt.Fprintf(out, "  rebuild deleted at least %d dedup claims and %d entity states (a batch of deletions failed or was killed before its count was recorded: it may have deleted more)\n",
				s.DeletedClaims, s.DeletedEntities)
		} else {
			fmt.Fprintf(out, "  rebuild deleted %d dedup claims and %d entity states\n", s.DeletedClaims, s.DeletedEntities)
		}
		if s.KeptEntities > 0 {
			more := ""
			if n := s.KeptEntities - int64(len(s.KeptSample)); n > 0 {
				more = fmt.Sprintf(" and %d more", n)
			}
			fmt.Fprintf(out, "  kept %d entity states that are not events of the range (a newer event received since?), the range applied onto them: %s%s\n",
				s.KeptEntities, strings.Join(s.KeptSample, ", "), more)
		}
	}
}

// eventCount is "1 event" or "n events".
func eventCount(n int64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

// fillWarning warns when a fill's range starts before src's dedup window
// (or at the start of the raw topic); empty when it is inside it.
func fillWarning(src string, window time.Duration, from, now time.Time) string {
	start := "--from is"
	switch {
	case from.IsZero():
		start = "without --from the range starts at the beginning of the raw topic,"
	case !from.Before(now.Add(-window)):
		return ""
	}
	return fmt.Sprintf("%s before source %s's dedup_window (%v), where dedup claims have expired: events there "+
		"without a business time, or whose entity has no stored state, are processed again, a second output "+
		"(see docs/operations.md, Replay)", start, src, window)
}

// isTerminal: stdout is a character device (a terminal), not a pipe or file.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
