// Package processor consumes the raw topic in a consumer group and turns
// envelopes into processed records: route → validate → deduplicate (Redis
// claim) → newest-wins → write processed and state records together with the
// consumer offsets in one Kafka transaction, so the Kafka side is
// exactly-once and every event ends in exactly one counted outcome.
package processor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/inletdev/inlet/pkg/flagenv"
	"github.com/inletdev/inlet/pkg/store"
)

// Config tunes the processor.
type Config struct {
	// Group is the consumer group; instances sharing it share partitions.
	Group string
	// InstanceID makes the transactional id unique; default host-pid.
	InstanceID string
	// BatchSize caps records per transaction.
	BatchSize int
	// Workers is how many transactional group members the instance runs,
	// each with its own session and partitions, taking one batch at a time.
	Workers int
	// ClaimLease is how long a dedup claim lives without being confirmed:
	// a crashed worker's claims expire after it.
	ClaimLease time.Duration
	// LockLease is how long an entity lock lives without being renewed
	// (its batch renews it every third of this): a crashed worker's locks
	// free their entities after it (see lockKeeper).
	LockLease time.Duration
	// EntityRetention, when not 0, forgets an entity's newest-wins state
	// once no event of it came for that long (see store.EntityRetention).
	EntityRetention time.Duration
	// TxnTimeout is the Kafka transaction timeout.
	TxnTimeout time.Duration
	// BackoffMax caps the wait between tries when Redis or an entity lock
	// is unavailable.
	BackoffMax time.Duration
	// BatchDeadline bounds how long one batch may wait for Redis or locks
	// before it is abandoned (aborted and re-polled), so the group's
	// rebalance timeout is never exceeded.
	BatchDeadline time.Duration
	// DrainTimeout bounds graceful shutdown.
	DrainTimeout time.Duration
}

// RegisterFlags defines the processor flags, defaulting from
// INLET_PROCESSOR_* and the others named: -group and -instance-id, the
// tuning flags (RegisterTuningFlags) and -drain-timeout
// (RegisterDrainFlag).
func (c *Config) RegisterFlags(fs *flagenv.Set) {
	fs.String(&c.Group, "group", "INLET_PROCESSOR_GROUP", "inlet-processor", "consumer group")
	fs.String(&c.InstanceID, "instance-id", "INLET_INSTANCE_ID", "", "unique instance id for the transactional id (default host-pid)")
	c.RegisterTuningFlags(fs)
	c.RegisterDrainFlag(fs)
}

// RegisterTuningFlags defines the flags that tune how the processor works:
// all but -group, -instance-id and -drain-timeout. It is for a command that
// runs a processor under a group and instance id of its own (services/dev,
// inletctl replay) and must take the processor's settings as the processor
// does. -drain-timeout is RegisterDrainFlag's: a process that also runs
// ingest has ingest's, which reads the same INLET_DRAIN_TIMEOUT.
func (c *Config) RegisterTuningFlags(fs *flagenv.Set) {
	fs.Int(&c.BatchSize, "batch-size", "INLET_PROCESSOR_BATCH", 1000, "records per transaction at most")
	// Two, because a member spends much of each batch waiting on Redis
	// round trips and on its produce requests and transaction commit: a
	// second member's decoding and
	// encoding fills those waits. bench-processor on 2 cores: ~1.4× one
	// member. More members only add group members and connections.
	fs.Int(&c.Workers, "workers", "INLET_PROCESSOR_WORKERS", 2, "transactional group members in this instance (each has its own partitions)")
	fs.Duration(&c.ClaimLease, "claim-lease", "INLET_CLAIM_LEASE", 60*time.Second, "lease of a dedup claim before it is confirmed")
	fs.Duration(&c.LockLease, "lock-lease", "INLET_LOCK_LEASE", 10*time.Second, "lease of an entity lock, renewed by its batch every third of it: how long a crashed processor's locks hold up their entities' events on every partition")
	fs.Duration(&c.EntityRetention, "entity-retention", "INLET_ENTITY_RETENTION", 0, "forget an entity's newest-wins state (Redis) once no event of it came for this long; 0 keeps every entity for good. An older event arriving after it (a dead letter requeued, a replay) applies as the newest: keep it well past -dlq retention and the oldest range you replay")
	fs.Duration(&c.TxnTimeout, "txn-timeout", "INLET_TXN_TIMEOUT", 60*time.Second, "Kafka transaction timeout (more than -batch-deadline plus -drain-timeout)")
	fs.Duration(&c.BackoffMax, "backoff-max", "INLET_BACKOFF_MAX", 5*time.Second, "longest wait between tries while Redis is down or a claim is held by another member")
	fs.Duration(&c.BatchDeadline, "batch-deadline", "INLET_BATCH_DEADLINE", 30*time.Second, "abandon (abort and re-poll) a batch that waited this long")
}

// RegisterDrainFlag defines -drain-timeout (INLET_DRAIN_TIMEOUT).
func (c *Config) RegisterDrainFlag(fs *flagenv.Set) {
	fs.Duration(&c.DrainTimeout, "drain-timeout", "INLET_DRAIN_TIMEOUT", 20*time.Second, "graceful shutdown bound")
}

// DefaultConfig returns the built-in flag defaults; the environment is not
// read (a process reads it with RegisterFlags and a parsed flagenv.Set,
// which reports a malformed variable).
func DefaultConfig() Config {
	var c Config
	c.RegisterFlags(flagenv.Defaults("defaults"))
	return c
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("processor: -group (INLET_PROCESSOR_GROUP) is empty"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("processor: -batch-size (INLET_PROCESSOR_BATCH) %d: want 1 or more", c.BatchSize))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("processor: -workers (INLET_PROCESSOR_WORKERS) %d: want 1 or more", c.Workers))
	}
	if c.ClaimLease < time.Second {
		errs = append(errs, fmt.Errorf("processor: -claim-lease (INLET_CLAIM_LEASE) %v: want 1s or more", c.ClaimLease))
	}
	if c.LockLease < time.Second {
		errs = append(errs, fmt.Errorf("processor: -lock-lease (INLET_LOCK_LEASE) %v: want 1s or more", c.LockLease))
	}
	if c.BatchDeadline <= 0 {
		errs = append(errs, fmt.Errorf("processor: -batch-deadline (INLET_BATCH_DEADLINE) %v: want more than 0", c.BatchDeadline))
	}
	if c.BackoffMax <= 0 {
		errs = append(errs, fmt.Errorf("processor: -backoff-max (INLET_BACKOFF_MAX) %v: want more than 0", c.BackoffMax))
	}
	if c.EntityRetention != 0 && c.EntityRetention < time.Hour {
		errs = append(errs, fmt.Errorf("processor: -entity-retention (INLET_ENTITY_RETENTION) %v: want 0 (keep entities for good) or 1h or more: an entity forgotten sooner takes late and retried older events as its newest", c.EntityRetention))
	}
	// A batch runs from its claims to its confirm for at most the batch
	// deadline plus the drain timeout (its context's bound). Dedup claims
	// that expired before that would let duplicates through. (Entity
	// locks are renewed while the batch runs: see lockKeeper.)
	if c.DrainTimeout < 0 || c.BatchDeadline+c.DrainTimeout >= c.ClaimLease {
		errs = append(errs, fmt.Errorf("processor: -claim-lease (%v) must exceed -batch-deadline plus -drain-timeout (%v + %v): a batch may hold its claims that long", c.ClaimLease, c.BatchDeadline, c.DrainTimeout))
	}
	// Its transaction is open as long: one the broker times out first is
	// aborted under it, and the commit fails.
	if c.TxnTimeout <= 0 || c.BatchDeadline+c.DrainTimeout >= c.TxnTimeout {
		errs = append(errs, fmt.Errorf("processor: -txn-timeout (%v) must exceed -batch-deadline plus -drain-timeout (%v + %v): a batch may keep its transaction open that long", c.TxnTimeout, c.BatchDeadline, c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// StoreOpts are the Redis store options the processor's settings give:
// the claim and lock leases and the entity retention.
func (c *Config) StoreOpts() []store.Opt {
	return []store.Opt{store.ClaimLease(c.ClaimLease), store.LockLease(c.LockLease), store.EntityRetention(c.EntityRetention)}
}

func (c *Config) instanceID() string {
	if c.InstanceID != "" {
		return c.InstanceID
	}
	h, _ := os.Hostname()
	return h + "-" + strconv.Itoa(os.Getpid())
}
