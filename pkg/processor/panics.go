package processor

import (
	"fmt"
	"runtime/debug"
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
		attrs := []any{"stage", stage, "panic", fmt.Sprint(r), "stack", string(debug.Stack())}
		if it.env != nil {
			attrs = append(attrs, "correlation_id", it.env.CorrelationID, "source", it.env.Source, "event_type", it.env.EventType, "event_id", it.env.EventID)
		}
		p.log.Error("handler panicked; the event fails and takes its retry tiers", attrs...)
	}()
	return f()
}
