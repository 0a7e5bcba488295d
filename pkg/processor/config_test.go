package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/registry"
)

// TestConfigClaimLeaseCoversABatch: a batch holds its claims and entity
// locks for up to the batch deadline plus the drain timeout; a lease that
// ends sooner is refused at start.
func TestConfigClaimLeaseCoversABatch(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		lease, deadline, drain time.Duration
		ok                     bool
	}{
		{60 * time.Second, 30 * time.Second, 20 * time.Second, true},
		{40 * time.Second, 30 * time.Second, 20 * time.Second, false}, // passed before: only the deadline was checked
		{50 * time.Second, 30 * time.Second, 20 * time.Second, false},
		{10 * time.Second, 5 * time.Second, 4 * time.Second, true},
		{60 * time.Second, 30 * time.Second, -time.Second, false},
	} {
		c := DefaultConfig()
		c.ClaimLease, c.BatchDeadline, c.DrainTimeout = tc.lease, tc.deadline, tc.drain
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "claim lease")) {
			t.Errorf("lease %v deadline %v drain %v: %v, want ok=%v", tc.lease, tc.deadline, tc.drain, err, tc.ok)
		}
	}
}

// TestWaitOutNamesRefusedCredentials: a registry refusing our credentials
// also pauses the batch (it says nothing about the event), but is logged
// as an error naming what to fix, not as an outage that will pass.
func TestWaitOutNamesRefusedCredentials(t *testing.T) {
	var logs bytes.Buffer
	p := &Processor{log: slog.New(slog.NewJSONHandler(&logs, nil)), cfg: Config{BackoffMax: time.Millisecond}}
	denied := fmt.Errorf("register: %w", registry.ErrDenied)
	err := p.waitOut(context.Background(), context.Background(), time.Now(), "schema registry", func() (bool, error) {
		return registry.IsUnavailable(denied), denied
	})
	if !errors.Is(err, registry.ErrDenied) {
		t.Fatalf("err %v, want the denial past the deadline", err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "refused our credentials") {
		t.Fatalf("log %s: want an error naming the credentials", logs.String())
	}
}
