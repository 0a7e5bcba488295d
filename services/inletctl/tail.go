package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

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
	switch cmd, rest := fs.Arg(0), fs.Args()[1:]; cmd {
	case "tail":
		return tail(rest, &kcfg, &rcfg, out)
	case "trace":
		return traceCmd(rest, &kcfg, out)
	case "dlq", "invalid":
		return queue(cmd, rest, &kcfg, &rcfg, out)
	case "replay":
		return replayCmd(rest, &kcfg, &rcfg, out)
	case "reconcile":
		return reconcileCmd(rest, &kcfg, &rcfg, out)
	default:
		return exitUsage, fmt.Errorf("unknown command %q", cmd)
	}
}

type printed struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       string            `json:"key"`
	Headers   map[string]string `json:"headers,omitempty"`
	SchemaID  int               `json:"schema_id,omitempty"`
	Value     any               `json:"value"`
}

func tail(args []string, kcfg *kafka.Config, rcfg *service.RegistryConfig, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	n := fs.Int("n", 20, "print at most the last N records per partition (0: all)")
	follow := fs.Bool("follow", false, "keep printing new records until interrupted")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: inletctl tail [-n N] [-follow] <topic>\n\nExample: inletctl tail -n 5 inlet.raw")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage, errors.New("tail takes one topic")
	}
	reg, err := rcfg.Client()
	if err != nil {
		return exitError, err
	}
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return exitError, err
	}
	start := kgo.NewOffset().AtStart()
	if *n > 0 {
		start = kgo.NewOffset().AtEnd().Relative(int64(-*n))
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(fs.Arg(0)),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return exitError, err
	}
	defer cl.Close()
	enc := json.NewEncoder(out)
	for {
		wait := 2 * time.Second
		if *follow {
			wait = 24 * time.Hour
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return exitError, fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		recs := fs.Records()
		if len(recs) == 0 && !*follow {
			return exitOK, nil
		}
		for _, r := range recs {
			p := printed{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: string(r.Key), Headers: map[string]string{}}
			for _, h := range r.Headers {
				p.Headers[h.Key] = string(h.Value)
			}
			p.SchemaID, p.Value = decodeValue(reg, r.Value)
			if err := enc.Encode(p); err != nil {
				return exitError, err
			}
		}
	}
}

// decodeValue decodes a Confluent-framed Avro value with its writer schema;
// anything else is shown as text (or says why it is not).
func decodeValue(reg *registry.Client, b []byte) (int, any) {
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
