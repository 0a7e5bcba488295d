package deploy

import (
	"strconv"
	"strings"
	"testing"
)

// memBytes parses a Kubernetes memory quantity (256Mi, 1Gi, 536870912)
// or a GOMEMLIMIT value (900MiB, 1GiB).
func memBytes(t *testing.T, where, q string) int64 {
	t.Helper()
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			q, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatalf("%s: memory %q: %v", where, q, err)
	}
	return n * mult
}

// TestManifestMemoryReserved: each Inlet container's memory request
// reserves what its GOMEMLIMIT lets the Go runtime fill, below its limit.
// The manifests size GOMEMLIMIT for conditions that are expected, not
// exceptional: ingest holds request bodies and unacknowledged records up
// to it while Kafka is slow, on every replica at once; the processor
// runs GOGC=400 under it. A request far below it let the scheduler pack
// pods onto nodes without that memory, and the kubelet evicts first the
// pods furthest above their requests: ingest, across the fleet, during a
// Kafka incident.
func TestManifestMemoryReserved(t *testing.T) {
	objs, files := readK8s(t)
	seen := 0
	for i, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			svc := serviceOfImage(c.Image)
			if svc == "" {
				continue
			}
			seen++
			where := files[i] + " " + svc
			req, lim := c.Resources.Requests["memory"], c.Resources.Limits["memory"]
			if req == "" || lim == "" {
				t.Errorf("%s: resources.requests.memory %q and limits.memory %q: want both set", where, req, lim)
				continue
			}
			var goLimit string
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" {
					goLimit = e.Value
				}
			}
			if goLimit == "" {
				t.Errorf("%s: no GOMEMLIMIT: the Go runtime does not know its memory limit %s and collects late", where, lim)
				continue
			}
			reqB, limB, goB := memBytes(t, where, req), memBytes(t, where, lim), memBytes(t, where, goLimit)
			if goB >= limB {
				t.Errorf("%s: GOMEMLIMIT %s is not below limits.memory %s: stacks and buffers outside the heap meet the OOM kill first", where, goLimit, lim)
			}
			if reqB < goB || reqB > limB {
				t.Errorf("%s: requests.memory %s, want GOMEMLIMIT (%s) to limits.memory (%s): the pod is sized to grow to GOMEMLIMIT, and the scheduler reserves only the request",
					where, req, goLimit, lim)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("deploy/k8s runs %d Inlet containers, want ingest and processor", seen)
	}
}
