package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// demoteOutages is a slog.Handler that passes the Kafka client's errors
// caused by a broker being away or a coordinator moving at warn level:
// while a broker is down franz-go logs "group manage loop errored" at
// error level on every rejoin, for a condition it heals by itself. A
// record is demoted when it is at error level, carries at least one
// error-valued attribute ("err" for most, "error" for a partition's
// commit) and every such error is an outage (see outage). Everything
// else passes unchanged: other errors, records without an error, other
// levels. Attributes added by WithAttrs are not looked at.
type demoteOutages struct{ next slog.Handler }

func (d demoteOutages) Enabled(ctx context.Context, level slog.Level) bool {
	return d.next.Enabled(ctx, level)
}

func (d demoteOutages) Handle(ctx context.Context, r slog.Record) error {
	if r.Level != slog.LevelError || !outageOnly(r) {
		return d.next.Handle(ctx, r)
	}
	// The logger asked next about error level, not warn.
	if !d.next.Enabled(ctx, slog.LevelWarn) {
		return nil
	}
	r.Level = slog.LevelWarn
	return d.next.Handle(ctx, r)
}

func (d demoteOutages) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteOutages{d.next.WithAttrs(as)}
}

func (d demoteOutages) WithGroup(name string) slog.Handler {
	return demoteOutages{d.next.WithGroup(name)}
}

// outageOnly reports whether r carries an error and all its errors are
// outages.
func outageOnly(r slog.Record) bool {
	found, all := false, true
	r.Attrs(func(a slog.Attr) bool {
		err, ok := a.Value.Any().(error)
		if !ok || err == nil {
			return true
		}
		found = true
		all = outage(err)
		return all
	})
	return found && all
}

// outage reports whether err says a broker could not be reached or a
// coordinator moved: what the client retries and gets over once the
// broker is back. It follows franz-go (pkg/kgo):
//
//   - a group or transaction coordinator that moved, is not available
//     or is loading: the codes after which the client forgets the
//     coordinator and finds it again (Client.maybeDeleteStaleCoordinator);
//   - a dial that failed (refused, unreachable, timed out), but not for
//     a host that does not exist or a permission denied, which the
//     client does not retry (isPermanentDialErr);
//   - what kgo.IsRetryableBrokerErr accepts: a connection reset,
//     closed or timed out, io.EOF (not a first read's EOF, which hints
//     at TLS or SASL misconfigured, kgo.ErrFirstReadEOF), a broker
//     connection that died, a coordinator or controller the metadata
//     does not list yet.
//
// An error holding any other Kafka error code (authorization, fencing,
// unknown member, an unknown server error) is not an outage, even next
// to one that is: kgo.IsRetryableBrokerErr retries a failed producer ID
// load whatever its cause.
func outage(err error) bool {
	if otherKafkaCode(err) {
		return false
	}
	if coordinatorMoved(err) {
		return true
	}
	if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
		return kgo.IsRetryableBrokerErr(err)
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return !permanentDialErr(err)
	}
	return kgo.IsRetryableBrokerErr(err)
}

func coordinatorMoved(err error) bool {
	return errors.Is(err, kerr.NotCoordinator) ||
		errors.Is(err, kerr.CoordinatorNotAvailable) ||
		errors.Is(err, kerr.CoordinatorLoadInProgress)
}

// otherKafkaCode reports whether err's tree holds a Kafka error code other
// than the coordinator's moving.
func otherKafkaCode(err error) bool {
	switch e := err.(type) {
	case *kerr.Error:
		return !coordinatorMoved(e)
	case interface{ Unwrap() error }:
		return otherKafkaCode(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			if otherKafkaCode(e) {
				return true
			}
		}
	}
	return false
}

// permanentDialErr: the broker's host does not exist, or the socket is not
// permitted (franz-go's isPermanentDialErr).
func permanentDialErr(err error) bool {
	if dns, ok := errors.AsType[*net.DNSError](err); ok && dns.IsNotFound {
		return true
	}
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
