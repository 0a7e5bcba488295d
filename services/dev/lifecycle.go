package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// errProcessorStopped is why the dev stack stops when its processor ends
// by itself (a session it could not renew, say): ingest would go on
// answering 202 for events nothing processes.
var errProcessorStopped = errors.New("the processor stopped by itself, so nothing was processed any more: the dev stack was stopped")

// task is a goroutine run owns: started by goTask, stopped by cancelling
// the context it runs with, and waited for by Stop.
type task struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // f's result; read only once done is closed
}

// goTask runs f on a goroutine of its own. Its context is its own, not the
// signal's: the stack stops its parts one after the other (see lifecycle).
func goTask(f func(context.Context) error) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = f(ctx)
	}()
	return t
}

// Stop cancels the task's context, waits for f to return and returns its
// error. Safe to call more than once, and after f returned by itself.
func (t *task) Stop() error {
	t.cancel()
	<-t.done
	return t.err
}

// shutdowner is a server lifecycle drains: ingest.Server, http.Server.
type shutdowner interface {
	Shutdown(context.Context) error
}

// lifecycle is what run waits on once everything listens, and stops in
// this order: ingest (it drains: what it answered 202 is in Kafka), the
// admin server, the processor (it finishes the batch in hand), then the
// alerter (what is pending gets its one try). What run deferred closes the
// clients and the embedded infrastructure after that.
type lifecycle struct {
	log *slog.Logger
	// drain bounds the servers' shutdown.
	drain time.Duration
	// served receives the error of an ingest or admin server that stopped
	// by itself.
	served       <-chan error
	ingest       shutdowner
	admin        shutdowner
	proc, alerts *task
}

// run blocks until the stack must stop, stops it and returns why: nil for
// a signal (ctx's end) and a clean stop. A server failing, or the processor
// ending by itself, stops the whole stack too, with an error (the process
// exits non-zero).
func (l lifecycle) run(ctx context.Context) error {
	var why error
	procEnded := false
	select {
	case <-ctx.Done():
	case err := <-l.served:
		if err == nil {
			err = errors.New("a server stopped")
		}
		why = err
		l.log.Error("stopping the dev stack: a server stopped", "error", err)
	case <-l.proc.done:
		procEnded = true
		why = errProcessorStopped
		if l.proc.err != nil {
			why = fmt.Errorf("%w: %w", errProcessorStopped, l.proc.err)
		}
		l.log.Error("PROCESSOR STOPPED: events are no longer processed; stopping the dev stack (ingest drains first)", "error", l.proc.err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), l.drain)
	defer cancel()
	err := l.ingest.Shutdown(sctx)
	_ = l.admin.Shutdown(sctx)
	if perr := l.proc.Stop(); !procEnded {
		err = errors.Join(err, perr)
	}
	_ = l.alerts.Stop()
	err = errors.Join(why, err)
	l.log.Info("stopped", slog.Any("error", err))
	return err
}
