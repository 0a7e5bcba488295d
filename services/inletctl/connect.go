package main

import (
	"context"

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
	codec *envelope.Codec
}

// connect builds the cluster from the connection flags; ctx bounds the
// envelope schema's registration check.
func connect(ctx context.Context, kcfg *kafka.Config, rcfg *service.RegistryConfig, topics kafka.Topics) (*cluster, error) {
	reg, err := rcfg.Client()
	if err != nil {
		return nil, err
	}
	codec, err := envelope.NewCodec(ctx, reg, topics.RawSubject())
	if err != nil {
		return nil, err
	}
	opts, err := kcfg.ClientOpts(nil)
	if err != nil {
		return nil, err
	}
	return &cluster{opts: opts, reg: reg, codec: codec}, nil
}
