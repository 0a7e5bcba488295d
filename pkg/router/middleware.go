package router

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Recover turns a handler panic into an error (a processing failure, so
// the event is retried and, if it keeps panicking, dead-lettered). The
// processor already does this for every handler; Recover is for handlers
// run elsewhere, and keeps the stack in the error.
func Recover() Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, ev *Event) (out *Output, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
				}
			}()
			return next.Handle(ctx, ev)
		})
	}
}

// Timeout bounds each Handle call.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, ev *Event) (*Output, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Handle(ctx, ev)
		})
	}
}
