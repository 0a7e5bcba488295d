package ingest

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TestStartSpanNoop: with the no-op tracer, startSpan's span and context
// carry what the tracer's own Start gives, whatever the parent context
// holds.
func TestStartSpanNoop(t *testing.T) {
	s := &Server{tracer: tracenoop.NewTracerProvider().Tracer(""), noopTracer: true,
		serverSpan: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recording, _ := tp.Tracer("t").Start(context.Background(), "middleware")
	for name, parent := range map[string]context.Context{
		"no span":        context.Background(),
		"remote parent":  trace.ContextWithRemoteSpanContext(context.Background(), remote),
		"recording span": recording,
	} {
		t.Run(name, func(t *testing.T) {
			gotCtx, got := s.startSpan(parent, "ingest.webhook")
			wantCtx, want := s.tracer.Start(parent, "ingest.webhook", s.serverSpan...)
			if got.IsRecording() != want.IsRecording() || !got.SpanContext().Equal(want.SpanContext()) {
				t.Errorf("span: recording %v, %v; tracer: %v, %v", got.IsRecording(), got.SpanContext(), want.IsRecording(), want.SpanContext())
			}
			g, w := trace.SpanFromContext(gotCtx), trace.SpanFromContext(wantCtx)
			if g.IsRecording() != w.IsRecording() || !g.SpanContext().Equal(w.SpanContext()) {
				t.Errorf("context span: recording %v, %v; tracer: %v, %v", g.IsRecording(), g.SpanContext(), w.IsRecording(), w.SpanContext())
			}
		})
	}
}
