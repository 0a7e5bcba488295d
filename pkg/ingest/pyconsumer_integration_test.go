package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/inletdev/inlet/pkg/testenv"
)

// pyRecord is one line printed by docs/examples/consume.py.
type pyRecord struct {
	Topic     string                     `json:"topic"`
	Partition int32                      `json:"partition"`
	Offset    int64                      `json:"offset"`
	Key       json.RawMessage            `json:"key"`
	SchemaID  *int                       `json:"schema_id"`
	Headers   map[string]json.RawMessage `json:"headers"`
	Value     map[string]json.RawMessage `json:"value"`
	Error     string                     `json:"error"`
}

// pyBytes reads a bytes value as consume.py prints it: a JSON string when
// the bytes are valid UTF-8, else {"base64": "..."}.
func pyBytes(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []byte(s)
	}
	var b struct {
		Base64 *string `json:"base64"`
	}
	if err := json.Unmarshal(raw, &b); err != nil || b.Base64 == nil {
		t.Fatalf("not a printed bytes value: %s", raw)
	}
	out, err := base64.StdEncoding.DecodeString(*b.Base64)
	if err != nil {
		t.Fatalf("bad base64 in %s: %v", raw, err)
	}
	return out
}

func pyString(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("not a JSON string: %s", raw)
	}
	return s
}

// pythonConsumer returns the Python interpreter and the path of
// docs/examples/consume.py, skipping t when Python or the confluent-kafka
// client (with its schema-registry extras) is not installed.
// INLET_PYTHON overrides the interpreter (default python3 on PATH).
func pythonConsumer(t *testing.T) (python, script string) {
	t.Helper()
	python = os.Getenv("INLET_PYTHON")
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		t.Skipf("%s not found: Python consumer test skipped (install Python 3, then pip install -r docs/examples/requirements.txt)", python)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c", "import confluent_kafka, confluent_kafka.schema_registry.avro, fastavro").CombinedOutput()
	if err != nil {
		t.Skipf("%s cannot import confluent_kafka's schema-registry Avro support: Python consumer test skipped "+
			"(pip install -r docs/examples/requirements.txt): %v\n%s", path, err, lastLines(out, 3))
	}
	_, file, _, _ := runtime.Caller(0)
	script = filepath.Join(filepath.Dir(file), "..", "..", "docs", "examples", "consume.py")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("consume.py: %v", err)
	}
	return path, script
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestIntegrationPythonConsumerReadsRawEnvelopes checks DESIGN.md's promise
// that the raw topic is readable by any Kafka tool with a schema-registry
// Avro deserializer: webhooks go in through ingest on real Kafka, and
// Confluent's own Python client (librdkafka + AvroDeserializer, nothing of
// Inlet's) reads back the same payload bytes, ids and correlation ids.
func TestIntegrationPythonConsumerReadsRawEnvelopes(t *testing.T) {
	python, script := pythonConsumer(t)
	h := newHarness(t, testenv.Real(t), nil)

	type sent struct {
		name, src, eventType, eventID, corr string
		body                                []byte
	}
	binary := []byte("not json \x00\xff\xfe at all")
	cases := []*sent{
		{name: "stripe with X-Correlation-ID", src: "stripe", eventType: "payment_intent.succeeded", eventID: "evt_py_1", corr: "py-corr-0001", body: stripeEvent("evt_py_1")},
		{name: "stripe", src: "stripe", eventType: "payment_intent.succeeded", eventID: "evt_py_2", body: stripeEvent("evt_py_2")},
		{name: "stripe again", src: "stripe", eventType: "payment_intent.succeeded", eventID: "evt_py_3", body: stripeEvent("evt_py_3")},
		// Not UTF-8: consume.py prints the payload as base64.
		{name: "binary payload", src: "internal", eventType: "blob", body: binary},
	}
	for _, c := range cases {
		hdr := map[string]string{}
		if c.corr != "" {
			hdr["X-Correlation-ID"] = c.corr
		}
		if c.src == "internal" {
			hdr["Content-Type"] = "application/octet-stream"
		}
		a := do(t, h.signed(t, c.src, c.body, hdr))
		if a.status != http.StatusAccepted {
			t.Fatalf("%s %s: status %d (%s)", c.src, c.eventID, a.status, a.raw)
		}
		if c.corr != "" && a.body.CorrelationID != c.corr {
			t.Fatalf("%s: answered correlation id %q, want %q", c.eventID, a.body.CorrelationID, c.corr)
		}
		c.corr = a.body.CorrelationID
		if c.eventID == "" {
			c.eventID = a.body.EventID
		}
	}
	// What Inlet's own codec reads, to compare ids and times with.
	goEnvs := h.rawEnvelopes(t, len(cases))
	if len(goEnvs) != len(cases) {
		t.Fatalf("raw topic has %d envelopes, want %d", len(goEnvs), len(cases))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script,
		"--bootstrap", strings.Join(h.env.Brokers, ","),
		"--registry", h.env.RegistryURL,
		"--topic", h.topics.Raw,
		"--group", h.env.Prefix+"-python",
		"--from-beginning",
		"--max", "4",
		"--timeout", "30",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("consume.py: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("consume.py stderr: %s", strings.TrimSpace(stderr.String()))
	if testing.Verbose() {
		t.Logf("consume.py stdout:\n%s", stdout.String())
	}

	got := map[string]pyRecord{} // by event id
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	for sc.Scan() {
		var r pyRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("consume.py printed a line that is not JSON: %v\n%s", err, sc.Text())
		}
		if r.Error != "" || r.Value == nil {
			t.Fatalf("consume.py could not decode %s[%d]@%d: %s", r.Topic, r.Partition, r.Offset, r.Error)
		}
		got[pyString(t, r.Value["event_id"])] = r
	}
	if len(got) != len(cases) {
		t.Fatalf("consume.py printed %d distinct events, want %d:\n%s", len(got), len(cases), stdout.String())
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, ok := got[c.eventID]
			if !ok {
				t.Fatalf("event %s not printed", c.eventID)
			}
			if r.Topic != h.topics.Raw {
				t.Errorf("topic %q, want %q", r.Topic, h.topics.Raw)
			}
			if r.SchemaID == nil || *r.SchemaID != h.codec.SchemaID() {
				t.Errorf("schema id %v, want %d (Confluent framing)", r.SchemaID, h.codec.SchemaID())
			}
			key := c.src + ":" + c.eventID
			if k := pyString(t, r.Key); k != key {
				t.Errorf("key %q, want %q", k, key)
			}
			if k := pyString(t, r.Value["idempotency_key"]); k != key {
				t.Errorf("idempotency_key %q, want %q", k, key)
			}
			if s := pyString(t, r.Value["source"]); s != c.src {
				t.Errorf("source %q, want %q", s, c.src)
			}
			if et := pyString(t, r.Value["event_type"]); et != c.eventType {
				t.Errorf("event_type %q, want %q", et, c.eventType)
			}
			if p := pyBytes(t, r.Value["payload"]); !bytes.Equal(p, c.body) {
				t.Errorf("payload differs from what was sent:\n got %q\nwant %q", p, c.body)
			}
			if raw, ok := r.Headers[HeaderCorrelationID]; !ok || string(pyBytes(t, raw)) != c.corr {
				t.Errorf("header %s = %s, want %q", HeaderCorrelationID, raw, c.corr)
			}
			if v := pyString(t, r.Value["correlation_id"]); v != c.corr {
				t.Errorf("envelope correlation_id %q, want %q", v, c.corr)
			}
			// The same record as Inlet's codec decodes it.
			for _, e := range goEnvs {
				if e.IdempotencyKey != key {
					continue
				}
				if id := pyString(t, r.Value["id"]); id != e.ID {
					t.Errorf("envelope id %q, Inlet's codec reads %q", id, e.ID)
				}
				ra := pyString(t, r.Value["received_at"])
				at, err := time.Parse(time.RFC3339Nano, ra)
				if err != nil || !at.Equal(e.ReceivedAt.Truncate(time.Microsecond)) {
					t.Errorf("received_at %q (%v), Inlet's codec reads %v", ra, err, e.ReceivedAt)
				}
			}
		})
	}
	if raw := got["evt_py_1"].Headers[HeaderCorrelationID]; string(pyBytes(t, raw)) != "py-corr-0001" {
		t.Errorf("X-Correlation-ID sent with evt_py_1 not carried to the record header: %s", raw)
	}
	if p := got[cases[3].eventID].Value["payload"]; !bytes.Contains(p, []byte(`"base64"`)) {
		t.Errorf("non-UTF-8 payload not printed as base64: %s", p)
	}
}
