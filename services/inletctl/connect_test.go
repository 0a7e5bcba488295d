package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/inletdev/inlet/pkg/registry/registrytest"
	"github.com/inletdev/inlet/pkg/testenv"
)

// requestLog records the requests a test registry saw.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
	l.mu.Unlock()
}

func (l *requestLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// withRegistry is flags with the schema registry URL replaced.
func withRegistry(flags []string, url string) []string {
	out := slices.Clone(flags)
	i := slices.Index(out, "-schema-registry-url")
	out[i+1] = url
	return out
}

// TestReadOnlyRegistry: the read-only commands work with read-only
// registry credentials and write nothing to the registry; they used to
// register the envelope schema first, which such a user may not do.
func TestReadOnlyRegistry(t *testing.T) {
	env, _, _, flags := dlqEntry(t)
	t.Run("dlq ls decodes and registers nothing", func(t *testing.T) {
		ro, writes := registrytest.ReadOnly(t, env.RegistryURL)
		var out bytes.Buffer
		if code, err := run(append(withRegistry(flags, ro), "dlq", "ls", "--output", "json"), &out); code != exitOK {
			t.Fatalf("exit %d: %v", code, err)
		}
		// The event id is in the envelope only: it shows that decoding
		// through the read-only registry worked.
		if !strings.Contains(out.String(), `"event_id": "evt_q1"`) {
			t.Fatalf("entry not decoded:\n%s", out.String())
		}
		if w := writes(); len(w) > 0 {
			t.Fatalf("wrote to the registry: %v", w)
		}
	})
	t.Run("depth asks no registry", func(t *testing.T) {
		asked := &requestLog{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked.add(r)
			w.WriteHeader(http.StatusForbidden)
		}))
		t.Cleanup(srv.Close)
		for queue, want := range map[string]string{"dlq": "1", "invalid": "0"} {
			var out bytes.Buffer
			if code, err := run(append(withRegistry(flags, srv.URL), queue, "depth"), &out); code != exitOK || strings.TrimSpace(out.String()) != want {
				t.Fatalf("%s depth: exit %d (%v): %q, want %s", queue, code, err, out.String(), want)
			}
		}
		if a := asked.get(); len(a) > 0 {
			t.Fatalf("depth asked the registry: %v", a)
		}
	})
	t.Run("denied is said as denied", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error_code":401,"message":"Unauthorized"}`))
		}))
		t.Cleanup(srv.Close)
		code, err := run(append(withRegistry(flags, srv.URL), "dlq", "ls"), &bytes.Buffer{})
		if code != exitError || err == nil || !strings.Contains(err.Error(), "permission denied or authentication failed") || strings.Contains(err.Error(), "unavailable") {
			t.Fatalf("exit %d: %v; want a permission error, not unavailable", code, err)
		}
	})
	t.Run("envelope schema not registered", func(t *testing.T) {
		env := testenv.Embedded(t)
		topics := env.CreateTopics(t, nil) // no service started: nothing registered
		ro, writes := registrytest.ReadOnly(t, env.RegistryURL)
		flags := []string{"-kafka-brokers", strings.Join(env.Brokers, ","), "-schema-registry-url", ro, "-topic-prefix", env.Prefix}
		code, err := run(append(flags, "dlq", "ls"), &bytes.Buffer{})
		if code != exitError || err == nil || !strings.Contains(err.Error(), "not registered under "+topics.RawSubject()) ||
			!strings.Contains(err.Error(), "ingest and the processor register it when they start") {
			t.Fatalf("exit %d: %v; want: not registered, and who registers it", code, err)
		}
		if w := writes(); len(w) > 0 {
			t.Fatalf("wrote to the registry: %v", w)
		}
	})
}
