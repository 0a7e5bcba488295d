package ingest

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

// TestStalledUnsignedBodiesFreeTheBudget: a party holding no
// secret at all opens a few connections to a source's webhook path,
// declares 1 MiB bodies and sends a quarter of each, then waits. The
// bodies are read before any signature is checked, and each buffer is
// reserved four times what arrived, so the whole
// -max-body-bytes-in-flight is held for up to -read-timeout: every other
// source's correctly signed webhook is refused 503 meanwhile.
func TestStalledUnsignedBodiesFreeTheBudget(t *testing.T) {
	const mib = 1 << 20
	h := newHarness(t, testenv.Embedded(t), func(c *Config) {
		c.MaxBodyBytesInFlight, c.ReadTimeout, c.BodyIdleTimeout = 16*mib, 30*time.Second, 2*time.Second
	})
	sent := 0
	for range 16 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		// To the shop path: no secret is needed to be read.
		fmt.Fprintf(conn, "POST /webhooks/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", mib)
		part := make([]byte, mib/4+1)
		if _, err := conn.Write(part); err != nil {
			t.Fatal(err)
		}
		sent += len(part)
	}
	testenv.Eventually(t, 10*time.Second, "the budget held", func() bool { return h.bodiesHeld() >= 16*mib-64<<10 })
	t.Logf("%d KiB sent (no secret) hold %d KiB of the %d KiB budget", sent>>10, h.bodiesHeld()>>10, 16*mib>>10)
	held := time.Now()
	h.waitHeld(t, 0, "the stalled bodies cut and the budget freed")
	if waited := time.Since(held); waited > 5*time.Second {
		t.Errorf("the budget was held %v more, want about -body-idle-timeout (2s)", waited)
	}
	body := []byte(`{"id":"evt_iso","type":"payment_intent.succeeded","created":1700000000,"data":{"object":{"id":"pi_1"}}}`)
	a := do(t, h.signed(t, "stripe", body, nil))
	if a.status != http.StatusAccepted {
		t.Errorf("another source's signed %d-byte webhook: %d %s", len(body), a.status, a.raw)
	}
}
