package processor

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// guard runs a handler's Handle or Deliver (f) for it, turning a panic
// into an error: a processing failure like any other, retried through the
// tiers and dead-lettered if it keeps panicking. Unguarded, a panicking
// handler crashed the processor, which met the same record again on every
// start and took its partitions' other events down with it. The stack goes
// to the log once per panic; the error, which lands in the event's history
// and alert, says only what panicked.
func (p *Processor) guard(it *item, stage string, f func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err = fmt.Errorf("the handler's %s panicked: %v", stage, r)
		// The log contract's keys: stage is the pipeline's, the step
		// that failed is failed_stage (as on the outcome's own line).
		// The outcome (retried or dead-lettered) is decided after.
		attrs := []any{"stage", "process", "failed_stage", strings.ToLower(stage), "panic", fmt.Sprint(r), "stack", string(debug.Stack())}
		if it.env != nil {
			attrs = append(attrs, "correlation_id", it.env.CorrelationID, "source", it.env.Source, "event_type", it.env.EventType, "event_id", it.env.EventID)
		}
		p.log.Error("handler panicked; the event fails and takes its retry tiers", attrs...)
	}()
	return f()
}
