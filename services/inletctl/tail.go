package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/service"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func run(args []string, out io.Writer) (int, error) {
	fs := flagenv.New("inletctl")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	var kcfg kafka.Config
	var rcfg service.RegistryConfig
	kcfg.RegisterFlags(fs)
	rcfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil
		}
		return exitUsage, err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage, nil
	}
	code, err := dispatch(fs.Arg(0), fs.Args()[1:], &kcfg, &rcfg, out)
	if err != nil && code == exitError {
		err = withConnectionHint(err, &kcfg, &rcfg)
	}
	return code, err
}

// dispatch runs the command cmd with its arguments.
func dispatch(cmd string, rest []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	switch cmd {
	case "tail":
		return tail(rest, kcfg, rcfg, out)
	case "trace":
		return traceCmd(rest, kcfg, out)
	case "dlq", "invalid":
		if len(rest) > 0 && isHelp(rest[0]) {
			// Before a command: queue would take -h for one.
			topics := kafka.TopicNames(kcfg.TopicPrefix, kafka.DefaultRetryTiers)
			topic := topics.DLQ
			if cmd == "invalid" {
				topic = topics.Invalid
			}
			fmt.Fprintf(os.Stderr, queueUsage, cmd, topic)
			return exitOK, nil
		}
		return queue(cmd, rest, kcfg, rcfg, out)
	case "replay":
		return replayCmd(rest, kcfg, rcfg, out)
	case "reconcile":
		return reconcileCmd(rest, kcfg, rcfg, out)
	case "schemas":
		if len(rest) > 0 && isHelp(rest[0]) { // before check
			fmt.Fprint(os.Stderr, schemasUsage)
			return exitOK, nil
		}
		return schemasCmd(rest, kcfg, rcfg, out)
	default:
		return exitUsage, fmt.Errorf("unknown command %q", cmd)
	}
}

// isHelp reports whether arg asks for usage as the flag package takes it:
// -h or -help, with one dash or two.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--h", "-help", "--help":
		return true
	}
	return false
}

type printed struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Timestamp time.Time      `json:"timestamp"`
	Key       string         `json:"key"`
	Headers   map[string]any `json:"headers,omitempty"`
	SchemaID  int            `json:"schema_id,omitempty"`
	Value     any            `json:"value"` // null: none (a tombstone)
}

// headersOf are r's headers as tail prints them: each value as text (or
// its bytes, see text), and a key given more than once with every value,
// in order: printed once, it showed the last, and Inlet reads the first.
func headersOf(r *kgo.Record) map[string]any {
	hs := map[string]any{}
	n := map[string]int{}
	for _, h := range r.Headers {
		n[h.Key]++
	}
	for _, h := range r.Headers {
		if n[h.Key] == 1 {
			hs[h.Key] = text(h.Value)
			continue
		}
		vs, _ := hs[h.Key].([]any)
		hs[h.Key] = append(vs, text(h.Value))
	}
	return hs
}

func tail(args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	fs := flagenv.New("tail")
	nFlag := fs.FlagSet.String("n", "20", "print the last N records of each partition; 0: none (with -follow, only new ones, as tail -n 0 -f); all: every record")
	follow := fs.FlagSet.Bool("follow", false, "keep printing new records until interrupted")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: inletctl tail [-n N|all] [-follow] <topic>\n\nExamples: inletctl tail -n 5 inlet.raw\n          inletctl tail -n 0 -follow inlet.processed")
		fs.PrintDefaults()
	}
	pos, err := fs.ParseInterspersed(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, nil // usage asked for, and printed
		}
		return exitUsage, err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage, fmt.Errorf("tail takes one topic (got %d)", len(pos))
	}
	// -n 0 once meant every record: on the raw topic (infinite retention)
	// that printed all of it to someone used to tail -n 0 -f.
	n := -1 // all
	if *nFlag != "all" {
		v, err := strconv.Atoi(*nFlag)
		if err != nil || v < 0 {
			return exitUsage, fmt.Errorf("-n %q: a number of records (0 or more) or all", *nFlag)
		}
		n = v
	}
	reg, err := rcfg.Client()
	if err != nil {
		return exitError, err
	}
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return exitError, err
	}
	topic := pos[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	recs, ends, err := lastRecords(ctx, opts, topic, n)
	cancel()
	if err != nil {
		return exitError, err
	}
	enc := json.NewEncoder(jsonOut{out})
	emit := func(r *kgo.Record) error {
		p := printed{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: string(r.Key), Headers: headersOf(r)}
		p.SchemaID, p.Value = decodeValue(reg, r.Value)
		return enc.Encode(p)
	}
	for _, r := range recs {
		if err := emit(r); err != nil {
			return exitError, err
		}
	}
	if !*follow {
		return exitOK, nil
	}
	// Follow from the ends listed above, so nothing produced meanwhile is
	// skipped.
	from := map[int32]kgo.Offset{}
	for p, e := range ends {
		from[p] = kgo.NewOffset().At(e)
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return exitError, err
	}
	defer cl.Close()
	fctx, stop := followContext()
	defer stop()
	go followNewPartitions(fctx, cl, topic, from)
	for {
		fs := cl.PollFetches(fctx)
		if fs.IsClientClosed() || fctx.Err() != nil {
			return exitOK, nil
		}
		for _, fe := range fs.Errors() {
			return exitError, fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		for _, r := range fs.Records() {
			if err := emit(r); err != nil {
				return exitError, err
			}
		}
	}
}

// followNewPartitions adds to cl's partitions of topic, every
// newPartitionsEvery until ctx ends, those the topic gained since known
// was listed, each from its first record: written after tail started, all
// of them are new. Consuming only the partitions listed at the start, a
// -follow begun before an operator added partitions never printed the
// records written to the new ones.
func followNewPartitions(ctx context.Context, cl *kgo.Client, topic string, known map[int32]kgo.Offset) {
	seen := map[int32]bool{}
	for p := range known {
		seen[p] = true
	}
	adm := kadm.NewClient(cl)
	t := time.NewTicker(newPartitionsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, newPartitionsEvery)
		tds, err := adm.ListTopics(lctx, topic)
		cancel()
		td, ok := tds[topic]
		if err != nil || !ok || td.Err != nil {
			continue // asked again at the next tick; the fetches report a topic gone
		}
		added := map[int32]kgo.Offset{}
		for p := range td.Partitions {
			if !seen[p] {
				seen[p] = true
				added[p] = kgo.NewOffset().AtStart()
			}
		}
		if len(added) > 0 {
			cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: added})
		}
	}
}

// newPartitionsEvery is how often -follow looks for partitions added to
// its topic. A variable for tests.
var newPartitionsEvery = 5 * time.Second

// followContext bounds -follow: until interrupted (Ctrl-C or SIGTERM ends
// it with exit 0). A variable for tests.
var followContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// lastRecords returns the last n committed records of each partition of
// topic (none when n is 0, all of them when n is negative), by partition
// and offset, and each
// partition's end offset. Offsets are not records: transaction markers take
// one each and compaction leaves holes, so "the last n offsets" can hold
// fewer than n records (none, for one event per transaction with n = 1).
// The window read back therefore grows until it holds n records or reaches
// the partition's start.
func lastRecords(ctx context.Context, opts []kgo.Opt, topic string, n int) ([]*kgo.Record, map[int32]int64, error) {
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	// Last stable offsets: an open transaction's records are neither
	// fetched now nor to be skipped by -follow if they commit later.
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	// endOf has every partition (-follow starts at each end); todo only
	// those holding records.
	endOf := map[int32]int64{}
	todo := kafka.Span{}
	ends.Each(func(o kadm.ListedOffset) {
		endOf[o.Partition] = o.Offset
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Offset > s.Offset && n != 0 {
			todo[o.Partition] = [2]int64{s.Offset, o.Offset}
		}
	})
	got := map[int32][]*kgo.Record{}
	window := int64(n)
	for len(todo) > 0 {
		sp := kafka.Span{}
		for p, r := range todo {
			start := r[0]
			if n > 0 {
				start = max(r[0], r[1]-window)
			}
			sp[p] = [2]int64{start, r[1]}
		}
		read := map[int32][]*kgo.Record{}
		// A read that stalls still shows what it got.
		if err := kafka.ReadSpan(ctx, opts, topic, sp, func(r *kgo.Record) error {
			read[r.Partition] = append(read[r.Partition], r)
			return nil
		}); err != nil && !errors.Is(err, kafka.ErrIncomplete) {
			return nil, nil, err
		}
		next := kafka.Span{}
		for p, r := range sp {
			got[p] = read[p]
			if n > 0 && len(read[p]) < n && r[0] > todo[p][0] {
				next[p] = todo[p] // not enough records yet: read further back
			}
		}
		todo, window = next, window*4
	}
	var out []*kgo.Record
	for _, p := range slices.Sorted(maps.Keys(got)) {
		rs := got[p]
		if n > 0 && len(rs) > n {
			rs = rs[len(rs)-n:]
		}
		out = append(out, rs...)
	}
	return out, endOf, nil
}

// decodeValue decodes a Confluent-framed Avro value with its writer schema;
// anything else is shown as text (or says why it is not), and no value
// (a tombstone, on the compacted raw topic a deletion) as nil: printed as
// "", it read as an empty value.
func decodeValue(reg *registry.Client, b []byte) (int, any) {
	if b == nil {
		return 0, nil
	}
	id, err := reg.SchemaID(b)
	if err != nil {
		return 0, text(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	schema, err := reg.WriterSchema(ctx, id)
	if err != nil {
		return id, map[string]any{"error": err.Error()}
	}
	var v any
	if err := reg.Decode(ctx, b, schema, &v); err != nil {
		return id, map[string]any{"error": err.Error()}
	}
	return id, readable(v)
}

// readable turns JSON payload bytes into JSON and other bytes into text, so
// an envelope prints as a person wants to read it.
func readable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = readable(e)
		}
	case []any:
		for i, e := range x {
			x[i] = readable(e)
		}
	case []byte:
		var j any
		dec := json.NewDecoder(bytes.NewReader(x))
		dec.UseNumber() // ids such as Shopify's exceed float64 precision
		if json.Valid(x) && dec.Decode(&j) == nil {
			return j
		}
		return text(x)
	}
	return v
}

func text(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return map[string]any{"base64": b}
}
