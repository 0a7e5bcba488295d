package sink

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestHTTPConcurrentDeliveriesReuseConnections: the processor delivers up
// to 16 events of a batch at once to a sink (maxDeliveries). Repeated
// batches must reuse the connections of the first, not open (and leave in
// TIME_WAIT) new ones for every batch.
func TestHTTPConcurrentDeliveriesReuseConnections(t *testing.T) {
	var conns atomic.Int64
	release := make(chan struct{})
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release // all 16 in flight at once, as a batch's deliveries are
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s, err := NewHTTP(HTTPConfig{URL: srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 50, 16
	for range batches {
		arrived.Add(perBatch)
		var wg sync.WaitGroup
		errs := make(chan error, perBatch)
		for range perBatch {
			wg.Go(func() { errs <- s.Send(context.Background(), []byte(`{}`), "application/json", "k", "c") })
		}
		arrived.Wait()
		for range perBatch {
			release <- struct{}{}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := conns.Load(); n > 2*perBatch {
		t.Fatalf("%d connections opened for %d batches of %d concurrent deliveries; want at most %d (reused across batches)", n, batches, perBatch, 2*perBatch)
	}
}
