package processor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/envelope"
	"github.com/inletdev/inlet/pkg/testenv"
)

// TestIntegrationPythonConsumerReadsProcessedRecords: data teams read the
// processed topic with Confluent's own Python client and AvroDeserializer
// (docs/examples/consume.py), nothing of Inlet's; what it prints is what
// was processed.
func TestIntegrationPythonConsumerReadsProcessedRecords(t *testing.T) {
	env := testenv.Real(t)
	python := os.Getenv("INLET_PYTHON")
	if python == "" {
		python = "python3"
	}
	if _, err := exec.LookPath(python); err != nil {
		t.Skipf("%s not found: install Python 3 and pip install -r docs/examples/requirements.txt", python)
	}
	if out, err := exec.Command(python, "-c", "import confluent_kafka.schema_registry.avro, fastavro").CombinedOutput(); err != nil {
		t.Skipf("confluent_kafka's Avro support is not installed (pip install -r docs/examples/requirements.txt): %s", out)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "docs", "examples", "consume.py")

	h := newHarness(t, env)
	h.start("a", nil)
	h.send("stripe", "payment_intent.succeeded", "evt_py1", "2024-06-20", envelope.ChannelWebhook, paymentIntent("evt_py1", "pi_py1", "succeeded", 1700000000))
	h.send("shop", "orders/updated", "wh-py2", "2024-07", envelope.ChannelWebhook, shopOrder(4242, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "paid", false))
	h.waitAll(2)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, "--bootstrap", strings.Join(env.Brokers, ","), "--registry", env.RegistryURL,
		"--topic", h.topics.Processed, "--group", env.Prefix+"-py", "--from-beginning", "--max", "2", "--timeout", "30")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("consume.py: %v\n%s", err, stderr.String())
	}
	printed := stdout.String()
	got := map[string]map[string]any{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Key     string            `json:"key"`
			Headers map[string]string `json:"headers"`
			Value   map[string]any    `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("consume.py printed %q: %v", sc.Text(), err)
		}
		if rec.Headers["correlation-id"] == "" {
			t.Errorf("%s: no correlation-id header", rec.Key)
		}
		got[rec.Key] = rec.Value
	}
	pi, shop := got["stripe:pi:pi_py1"], got["shopify:order:4242"]
	if pi == nil || shop == nil {
		t.Fatalf("python read %v\n%s", got, printed)
	}
	if pi["event_id"] != "evt_py1" || pi["contract_version"] != "v1" {
		t.Errorf("payment intent: %v", pi)
	}
	// The v1 (API 2024-07) order reaches data teams in the canonical v2
	// schema: financial_status kept, current_total_price null.
	data, _ := shop["data"].(map[string]any)
	if data["financial_status"] != "paid" || data["current_total_price"] != nil || shop["contract_version"] != "v1" {
		t.Errorf("order: %v", shop)
	}
}
