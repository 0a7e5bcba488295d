package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/retry"
)

// exitNotFound is trace's exit code when nothing is known of the event.
const exitNotFound = 3

// traceCmd is trace, also by the sender's event id: --event ID --source S
// finds the event's correlation id on the raw topic (key source:event-id),
// then shows its history like trace <correlation-id>.
func traceCmd(args []string, kcfg *kafka.Config, out io.Writer) (int, error) {
	var eventID, src string
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "event" && name != "source") {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return exitUsage, fmt.Errorf("trace: -%s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "event" {
			eventID = val
		} else {
			src = val
		}
	}
	if eventID == "" && src == "" {
		return trace(rest, out)
	}
	if eventID == "" || src == "" {
		return exitUsage, errors.New("trace: --event and --source go together")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return exitError, err
	}
	topic := kafka.TopicNames(kcfg.TopicPrefix, nil).Raw
	corr, err := correlationOf(ctx, opts, topic, envelope.IdempotencyKey(src, eventID))
	if err != nil {
		return exitError, err
	}
	if corr == "" {
		return exitNotFound, fmt.Errorf("event %s of source %s is not on %s (never received?)", eventID, src, topic)
	}
	return trace(append(rest, corr), out)
}

// correlationOf finds key on the raw topic and returns the correlation id
// of its latest record: first in the partition the key hashes to (the
// producer's default partitioner), then, if the partition count changed
// since, everywhere.
func correlationOf(ctx context.Context, opts []kgo.Opt, topic, key string) (string, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return "", err
	}
	t, ok := td[topic]
	if !ok || t.Err != nil || len(t.Partitions) == 0 {
		return "", fmt.Errorf("topic %s not found", topic)
	}
	n := len(t.Partitions)
	home := int32(kgo.StickyKeyPartitioner(nil).ForTopic(topic).Partition(&kgo.Record{Key: []byte(key)}, n))
	all, err := kafka.RangeOf(ctx, adm, topic, time.Time{}, time.Time{})
	if err != nil {
		return "", err
	}
	// Read as every topic reader here does (kafka.ReadSpan): a first poll
	// may take seconds on a cold client over a slow link, and stopping at
	// the first empty one said "never received" for events on the log.
	find := func(parts []int32) (string, error) {
		sp := kafka.Span{}
		for _, p := range parts {
			if r, ok := all[p]; ok {
				sp[p] = r
			}
		}
		corr := ""
		err := kafka.ReadSpan(ctx, opts, topic, sp, func(r *kgo.Record) error {
			if string(r.Key) == key {
				corr = retry.Get(r.Headers, retry.HeaderCorrelationID)
			}
			return nil
		})
		return corr, err
	}
	if corr, err := find([]int32{home}); err != nil || corr != "" {
		return corr, err
	}
	var others []int32
	for p := range t.Partitions {
		if p != home {
			others = append(others, p)
		}
	}
	return find(others)
}
