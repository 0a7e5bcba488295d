package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// steps records what a lifecycle did, in order.
type steps struct {
	mu  sync.Mutex
	got []string
}

func (s *steps) add(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, step)
}

func (s *steps) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// server is a shutdowner that records its Shutdown.
type server struct {
	name string
	s    *steps
}

func (f server) Shutdown(context.Context) error { f.s.add(f.name + " shut down"); return nil }

// untilStopped is a task's function that runs until its context ends, then
// takes a moment to finish (as the processor finishes its batch) and
// records that it did.
func untilStopped(name string, s *steps) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond)
		s.add(name + " stopped")
		return nil
	}
}

// newLifecycle is a lifecycle over recording fakes; proc is the
// processor's Run.
func newLifecycle(t *testing.T, s *steps, served chan error, proc func(context.Context) error) (lifecycle, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	l := lifecycle{
		log: slog.New(slog.NewJSONHandler(&logs, nil)), drain: time.Second, served: served,
		ingest: server{"ingest", s}, admin: server{"admin", s},
		proc: goTask(proc), alerts: goTask(untilStopped("alerter", s)),
	}
	t.Cleanup(func() { l.proc.Stop(); l.alerts.Stop() })
	return l, &logs
}

// runWithin runs l until it returns, failing the test if it takes longer
// than a few seconds.
func runWithin(t *testing.T, ctx context.Context, l lifecycle) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the lifecycle did not stop")
		return nil
	}
}

// TestLifecycle: whatever ends the dev stack — a signal, a server that
// stopped, or the processor ending by itself — ingest drains first, then
// the processor is stopped and waited for, then the alerter (its pending
// alerts get their one try) before run returns and the stack is closed. A
// processor that ends by itself stops the stack with an error: ingest
// used to go on answering 202 for events nothing processed, until Ctrl-C.
func TestLifecycle(t *testing.T) {
	ordered := []string{"ingest shut down", "admin shut down", "processor stopped", "alerter stopped"}
	t.Run("signal", func(t *testing.T) {
		var s steps
		l, _ := newLifecycle(t, &s, make(chan error), untilStopped("processor", &s))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := runWithin(t, ctx, l); err != nil {
			t.Fatalf("a signal and a clean stop: %v, want nil", err)
		}
		if got := s.list(); !slices.Equal(got, ordered) {
			t.Fatalf("steps %q, want %q", got, ordered)
		}
	})
	t.Run("server stopped", func(t *testing.T) {
		var s steps
		served := make(chan error, 1)
		l, _ := newLifecycle(t, &s, served, untilStopped("processor", &s))
		failed := errors.New("admin server: accept: too many open files")
		served <- failed
		if err := runWithin(t, context.Background(), l); !errors.Is(err, failed) {
			t.Fatalf("%v, want the server's error", err)
		}
		if got := s.list(); !slices.Equal(got, ordered) {
			t.Fatalf("steps %q, want %q: the processor stopped and waited for before the stack closes", got, ordered)
		}
	})
	t.Run("processor ended by itself", func(t *testing.T) {
		var s steps
		renewal := errors.New("renew transactional session: INVALID_PRODUCER_EPOCH")
		l, logs := newLifecycle(t, &s, make(chan error), func(context.Context) error {
			time.Sleep(20 * time.Millisecond)
			s.add("processor ended")
			return renewal
		})
		err := runWithin(t, context.Background(), l)
		if !errors.Is(err, errProcessorStopped) || !errors.Is(err, renewal) {
			t.Fatalf("%v, want an error saying the processor stopped, with its error", err)
		}
		if strings.Count(err.Error(), renewal.Error()) != 1 {
			t.Errorf("%v: the processor's error once", err)
		}
		want := []string{"processor ended", "ingest shut down", "admin shut down", "alerter stopped"}
		if got := s.list(); !slices.Equal(got, want) {
			t.Fatalf("steps %q, want %q", got, want)
		}
		if !strings.Contains(logs.String(), `"level":"ERROR","msg":"PROCESSOR STOPPED`) || !strings.Contains(logs.String(), renewal.Error()) {
			t.Fatalf("log %s: want an error saying the processor stopped, and why", logs.String())
		}
	})
	t.Run("processor ended by itself without an error", func(t *testing.T) {
		var s steps
		l, _ := newLifecycle(t, &s, make(chan error), func(context.Context) error { return nil })
		if err := runWithin(t, context.Background(), l); !errors.Is(err, errProcessorStopped) {
			t.Fatalf("%v, want an error saying the processor stopped", err)
		}
	})
}

// TestTaskStop: Stop cancels, waits and returns the task's error, as often
// as it is called, also after the task returned by itself.
func TestTaskStop(t *testing.T) {
	boom := errors.New("boom")
	finished := false
	tk := goTask(func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(10 * time.Millisecond)
		finished = true
		return boom
	})
	if err := tk.Stop(); !errors.Is(err, boom) || !finished {
		t.Fatalf("Stop: %v (finished %v), want the task's error once it finished", err, finished)
	}
	if err := tk.Stop(); !errors.Is(err, boom) {
		t.Fatalf("second Stop: %v", err)
	}
	ended := goTask(func(context.Context) error { return nil })
	<-ended.done
	if err := ended.Stop(); err != nil {
		t.Fatalf("Stop after the task ended: %v", err)
	}
}

// TestEmbeddedRegistry: the dev stack's registry client sends no
// credentials, and INLET_SCHEMA_REGISTRY_* set for another registry (a
// password without its user is refused elsewhere) neither reach the
// embedded one nor stop the stack.
func TestEmbeddedRegistry(t *testing.T) {
	t.Setenv("INLET_SCHEMA_REGISTRY_PASSWORD", "pw-for-another-registry")
	t.Setenv("INLET_SCHEMA_REGISTRY_TOKEN", "token-for-another-registry")
	var auth []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	reg, err := embeddedRegistry(srv.URL)
	if err != nil {
		t.Fatalf("embedded registry client: %v", err)
	}
	if _, err := reg.SR().Subjects(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) == 0 || slices.ContainsFunc(auth, func(a string) bool { return a != "" }) {
		t.Fatalf("Authorization headers %q, want requests without any", auth)
	}
}
