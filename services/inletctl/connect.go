package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/registry"
	"github.com/inletdev/inlet/pkg/service"
)

// cluster is what the commands that read Inlet's topics need: the Kafka
// client options, the schema registry and the envelope codec of topics.
type cluster struct {
	opts  []kgo.Opt
	reg   *registry.Client
	codec *envelope.Codec // nil from connectKafka
}

// connect builds the cluster from the connection flags; ctx bounds the
// envelope schema's lookup. The registry is only read: operators often
// hold read-only credentials, and an inletctl newer than the services must
// not register its envelope version behind their backs.
func connect(ctx context.Context, kcfg *kafka.Config, rcfg *service.RegistryConfig, topics kafka.Topics) (*cluster, error) {
	c, err := connectKafka(kcfg)
	if err != nil {
		return nil, err
	}
	if c.reg, err = rcfg.Client(); err != nil {
		return nil, err
	}
	c.codec, err = envelope.LookupCodec(ctx, c.reg, topics.RawSubject())
	switch {
	case registry.IsDenied(err):
		return nil, fmt.Errorf("%w; check -schema-registry-user and INLET_SCHEMA_REGISTRY_PASSWORD or INLET_SCHEMA_REGISTRY_TOKEN (inletctl needs read access only)", err)
	case errors.Is(err, registry.ErrNotRegistered):
		return nil, fmt.Errorf("%w; ingest and the processor register it when they start, so start one of them first (if they run: check -topic-prefix, or this inletctl is newer than they are and the inletctl of their version is needed)", err)
	case err != nil:
		return nil, err
	}
	return c, nil
}

// connectKafka is connect for commands that decode nothing (dlq depth,
// invalid depth): no registry is asked, so they work without registry
// credentials and while the registry is down.
func connectKafka(kcfg *kafka.Config) (*cluster, error) {
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return nil, err
	}
	return &cluster{opts: opts}, nil
}
