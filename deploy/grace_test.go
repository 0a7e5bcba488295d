package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// Past its drain, a service's stop still closes things, each bounded by
// a constant in the code: after the processor's bound (-batch-deadline +
// -drain-timeout + stopMargin, 3 s, services/processor) the admin
// server's shutdown (5 s), the alert webhook's final flush
// (pkg/alert shutdownBudget, 5 s) and the trace export
// (telemetry.Shutdown, 5 s); after ingest's (-drain-timeout + 250 ms) the
// trace export. An orchestrator that kills sooner loses the DLQ and
// invalid alerts still pending (counted nowhere) and the last spans.
const (
	processorStopPastDrain = 3*time.Second + 15*time.Second
	ingestStopPastDrain    = 250*time.Millisecond + 5*time.Second
)

// stopBound is the longest a service's stop takes with c's configuration.
func stopBound(t *testing.T, c container) time.Duration {
	t.Helper()
	dur := func(env string) time.Duration {
		v, ok := c.Env[env]
		s := v.Value
		if !ok {
			f := flags(t, c.Service).ByEnv[env]
			if f == nil {
				t.Fatalf("%s reads no %s", c.Service, env)
			}
			s = f.Def
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("%s: %s %s=%q: %v", c.Artifact, c.Service, env, s, err)
		}
		return d
	}
	if c.Service == "processor" {
		return dur("INLET_BATCH_DEADLINE") + dur("INLET_DRAIN_TIMEOUT") + processorStopPastDrain
	}
	return dur("INLET_DRAIN_TIMEOUT") + ingestStopPastDrain
}

// TestStopGraceCoversDrain: docker-compose.yml's stop_grace_period and
// deploy/k8s's terminationGracePeriodSeconds (less the preStop sleep, which
// counts against it) cover each service's longest stop, computed from
// the configuration the artifact gives it and the code's bounds.
func TestStopGraceCoversDrain(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			StopGracePeriod string `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	for _, c := range composeContainers(t) {
		name := c.Selector["compose"]
		grace := 10 * time.Second // compose's default
		if s := compose.Services[name].StopGracePeriod; s != "" {
			if grace, err = time.ParseDuration(s); err != nil {
				t.Fatalf("docker-compose.yml: %s stop_grace_period %q: %v", name, s, err)
			}
		}
		if need := stopBound(t, c); grace <= need {
			t.Errorf("docker-compose.yml: %s stop_grace_period %v, but its stop may take %v: compose kills it first", name, grace, need)
		}
	}

	var pods []struct {
		file  string
		grace time.Duration
		sleep time.Duration
		image string
	}
	paths, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no deploy/k8s/*.yaml: %v", err)
	}
	for _, p := range paths {
		f, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(f))
		for {
			var o struct {
				Kind string
				Spec struct {
					Template struct {
						Spec struct {
							TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
							Containers                    []struct {
								Image     string
								Lifecycle struct {
									PreStop struct {
										Sleep *struct{ Seconds int }
									} `yaml:"preStop"`
								}
							}
						}
					}
				}
			}
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("deploy/%s: %v", p, err)
			}
			if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
				continue
			}
			grace := 30 * time.Second // Kubernetes' default
			if g := o.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = time.Duration(*g) * time.Second
			}
			for _, c := range o.Spec.Template.Spec.Containers {
				var sleep time.Duration
				if s := c.Lifecycle.PreStop.Sleep; s != nil {
					sleep = time.Duration(s.Seconds) * time.Second
				}
				pods = append(pods, struct {
					file  string
					grace time.Duration
					sleep time.Duration
					image string
				}{"deploy/" + p, grace, sleep, c.Image})
			}
		}
	}
	for _, c := range k8sContainers(t) {
		for _, p := range pods {
			if p.file != c.Artifact || serviceOfImage(p.image) != c.Service {
				continue
			}
			if need := stopBound(t, c); p.grace-p.sleep <= need {
				t.Errorf("%s: %s terminationGracePeriodSeconds %v less the preStop sleep %v leaves %v, but its stop may take %v: the kubelet kills it first",
					p.file, c.Service, p.grace, p.sleep, p.grace-p.sleep, need)
			}
		}
	}
}
