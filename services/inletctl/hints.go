package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/inletdev/inlet/pkg/kafka"
	"github.com/inletdev/inlet/pkg/service"
)

// withConnectionHint adds to an error that could not reach an address
// which setting names it: client errors end in "dial tcp 127.0.0.1:9092:
// connect: connection refused", and mapping that to a flag was left to
// the operator. The trace command names its admin URL itself.
func withConnectionHint(err error, kcfg *kafka.Config, rcfg *service.RegistryConfig) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil {
		return err
	}
	addr := op.Addr.String()
	for _, raw := range rcfg.URLs {
		if u, perr := url.Parse(raw); perr == nil && sameAddr(u.Host, addr, u.Scheme) {
			return fmt.Errorf("%w\nthe schema registry does not answer at %s: is it up and reachable from here? Its URL is -schema-registry-url or INLET_SCHEMA_REGISTRY_URL (now %s)", err, addr, service.ShownURLs(rcfg.URLs))
		}
	}
	bootstrap := slices.ContainsFunc(kcfg.Brokers, func(b string) bool { return sameAddr(b, addr, "") })
	// franz-go's dial errors say "unable to dial"; another address (Redis,
	// for replay) is left as its error names it.
	if !bootstrap && !strings.Contains(err.Error(), "unable to dial") {
		return err
	}
	hint := fmt.Sprintf("Kafka does not answer at %s: is it up and reachable from here? The brokers are -kafka-brokers or INLET_KAFKA_BROKERS (now %s)", addr, strings.Join(kcfg.Brokers, ","))
	if !bootstrap {
		hint += "; an address that is not among them is one a broker advertises, which must be reachable from here too"
	}
	return fmt.Errorf("%w\n%s", err, hint)
}

// sameAddr reports whether host (a URL's, the port perhaps implied by
// scheme) is the dialed addr; a name matches the addresses it resolves to
// now. Taken to match any address on its port, an https registry's name
// claimed every refused dial to port 443: Stripe unreachable read as "the
// schema registry does not answer".
func sameAddr(host, addr, scheme string) bool {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, map[string]string{"https": "443"}[scheme]
		if p == "" {
			p = "80"
		}
	}
	ah, ap, err := net.SplitHostPort(addr)
	if err != nil || p != ap {
		return false
	}
	if h == ah || net.ParseIP(h) != nil {
		return h == ah
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, h)
	return err == nil && slices.Contains(ips, ah)
}

// withRedisHint is withConnectionHint for Redis (replay, replay ls and
// rm): -redis-url defaults to 127.0.0.1:6379, so an operator who did not
// set it saw a refused dial to an address they never typed.
func withRedisHint(err error, ropt *service.RedisOptions) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || op.Addr == nil {
		return err
	}
	addr := op.Addr.String()
	if !slices.ContainsFunc(ropt.Seeds(), func(s string) bool { return sameAddr(s, addr, "") }) {
		return err
	}
	return fmt.Errorf("%w\nRedis does not answer at %s: is it up and reachable from here? It is -redis-url or INLET_REDIS_URL (now %s)", err, addr, ropt.Addr)
}

// redisClient is ropt's client, with go-redis's own log lines dropped:
// inletctl has no log, and they came as plain text on stderr, one per
// dial attempt, before the error that says the same.
func redisClient(ropt *service.RedisOptions) redis.UniversalClient {
	service.RedisClientLog(slog.New(slog.DiscardHandler))
	return ropt.NewClient()
}
