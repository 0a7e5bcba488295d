package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/inletdev/inlet/pkg/service/servicetest"
)

// The admin listener's paths (services/*/main.go): what probes and scrapes
// may ask for.
const (
	healthPath  = "/healthz"
	readyPath   = "/readyz"
	metricsPath = "/metrics"
)

// wantProbePath is the path each probe must ask: liveness and startup ask
// only whether the process serves, readiness whether it may take traffic.
var wantProbePath = map[string]string{"startupProbe": healthPath, "livenessProbe": healthPath, "readinessProbe": readyPath}

// listenAddr is the address c's service listens on for the flag whose
// variable is env: the artifact's value, else the binary's default.
func listenAddr(t *testing.T, c container, env string) (addr string, port int) {
	t.Helper()
	addr = flags(t, c.Service).ByEnv[env].Def
	if v, ok := c.Env[env]; ok {
		addr = v.Value
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %s %s=%q: %v", c.Artifact, c.Service, env, addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: %s listens on %s=%q: in a container it must listen on every interface (\":%s\"), or probes and Prometheus, which reach the pod's address, find nothing",
			c.Artifact, c.Service, env, addr, p)
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %s %s=%q: port %q", c.Artifact, c.Service, env, addr, p)
	}
	return addr, port
}

// listenPorts are c's listeners: "admin" and, for ingest, "http".
func listenPorts(t *testing.T, c container) map[string]int {
	t.Helper()
	ports := map[string]int{}
	_, ports["admin"] = listenAddr(t, c, "INLET_ADMIN_ADDR")
	if c.Service == "ingest" {
		_, ports["http"] = listenAddr(t, c, "INLET_INGEST_ADDR")
	}
	return ports
}

// TestManifestPorts: the ports the artifacts name are the ones the
// services listen on: the container ports, the probes (on the admin port,
// asking /healthz or /readyz), the prometheus.io annotations and the
// Prometheus scrape configurations (/metrics on the admin port), and the
// Kubernetes Services' target ports.
func TestManifestPorts(t *testing.T) {
	objs, files := readK8s(t)
	for _, c := range k8sContainers(t) {
		t.Run(c.Artifact+"/"+c.Service, func(t *testing.T) {
			listen := listenPorts(t, c)
			byNumber := map[int]string{}
			for name, n := range c.Ports {
				byNumber[n] = name
				want, ok := listen[name]
				switch {
				case !ok:
					t.Errorf("%s: %s's container port %s (%d) is neither of its listeners (%v)", c.Artifact, c.Service, name, n, listen)
				case want != n:
					t.Errorf("%s: %s's container port %s is %d, but it listens on %d there", c.Artifact, c.Service, name, n, want)
				}
			}
			for name := range listen {
				if _, ok := c.Ports[name]; !ok {
					t.Errorf("%s: %s has no container port named %s (port %d): kubernetes-scrape.yml and the Services find the listeners by name", c.Artifact, c.Service, name, listen[name])
				}
			}
			for name, p := range c.Probes {
				if p.Path != wantProbePath[name] {
					t.Errorf("%s: %s's %s asks %q, want %q", c.Artifact, c.Service, name, p.Path, wantProbePath[name])
				}
				n, ok := c.Ports[p.Port]
				if !ok {
					if n, _ = strconv.Atoi(p.Port); byNumber[n] == "" {
						t.Errorf("%s: %s's %s asks port %q, which is no container port", c.Artifact, c.Service, name, p.Port)
						continue
					}
				}
				if n != listen["admin"] {
					t.Errorf("%s: %s's %s asks port %s (%d), not the admin listener's (%d), the one that answers from the start",
						c.Artifact, c.Service, name, p.Port, n, listen["admin"])
				}
			}
			a := c.Annotations
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(listen["admin"]) || a["prometheus.io/path"] != metricsPath {
				t.Errorf("%s: %s's prometheus.io annotations are scrape=%q port=%q path=%q, want true, %d (the admin listener), %s",
					c.Artifact, c.Service, a["prometheus.io/scrape"], a["prometheus.io/port"], a["prometheus.io/path"], listen["admin"], metricsPath)
			}
			for i, o := range objs {
				if o.Kind != "Service" || !selects(o.Spec.Selector, c.Selector) {
					continue
				}
				for _, sp := range o.Spec.Ports {
					target := toString(sp.TargetPort)
					if target == "" {
						target = strconv.Itoa(sp.Port)
					}
					if _, ok := c.Ports[target]; !ok {
						if n, _ := strconv.Atoi(target); byNumber[n] == "" {
							t.Errorf("%s: Service %s port %s targets %q, which %s has no container port for", files[i], o.Metadata.Name, sp.Name, target, c.Service)
						}
					}
				}
			}
		})
	}
	scrape := readPrometheus(t, "prometheus/kubernetes-scrape.yml")
	for _, job := range []string{"inlet-ingest", "inlet-processor"} {
		sc, ok := scrape[job]
		if !ok {
			t.Errorf("deploy/prometheus/kubernetes-scrape.yml: no job %s", job)
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != metricsPath {
			t.Errorf("deploy/prometheus/kubernetes-scrape.yml: job %s scrapes %s, want %s", job, sc.MetricsPath, metricsPath)
		}
		if !strings.Contains(yamlString(sc.Relabel), "admin") {
			t.Errorf("deploy/prometheus/kubernetes-scrape.yml: job %s does not keep the container port named admin", job)
		}
	}

	prom := readPrometheus(t, "prometheus/prometheus.yml")
	for _, c := range composeContainers(t) {
		t.Run(c.Artifact+"/"+c.Service, func(t *testing.T) {
			listen := listenPorts(t, c)
			published := map[int]bool{}
			for spec, n := range c.Ports {
				published[n] = true
				found := false
				for _, l := range listen {
					found = found || l == n
				}
				if !found {
					t.Errorf("%s: %s publishes %q, but listens on %v", c.Artifact, c.Service, spec, listen)
				}
			}
			if !published[listen["admin"]] {
				t.Errorf("%s: %s does not publish its admin port %d", c.Artifact, c.Service, listen["admin"])
			}
			job := "inlet-" + c.Service
			sc, ok := prom[job]
			if !ok {
				t.Fatalf("deploy/prometheus/prometheus.yml: no job %s", job)
			}
			if sc.MetricsPath != "" && sc.MetricsPath != metricsPath {
				t.Errorf("deploy/prometheus/prometheus.yml: job %s scrapes %s, want %s", job, sc.MetricsPath, metricsPath)
			}
			want := net.JoinHostPort(c.Selector["compose"], strconv.Itoa(listen["admin"]))
			var targets []string
			for _, s := range sc.Static {
				targets = append(targets, s.Targets...)
			}
			if len(targets) != 1 || targets[0] != want {
				t.Errorf("deploy/prometheus/prometheus.yml: job %s scrapes %v, want [%s] (the compose service's admin listener)", job, targets, want)
			}
		})
	}
}

// selects reports whether a Service's selector picks pods a Deployment
// with matchLabels runs.
func selects(selector map[string]any, matchLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if matchLabels[k] != toString(v) {
			return false
		}
	}
	return true
}

type scrapeConfig struct {
	JobName     string `yaml:"job_name"`
	MetricsPath string `yaml:"metrics_path"`
	Static      []struct {
		Targets []string `yaml:"targets"`
	} `yaml:"static_configs"`
	Relabel []map[string]any `yaml:"relabel_configs"`
}

// readPrometheus returns a Prometheus configuration's scrape jobs by name.
func readPrometheus(t *testing.T, path string) map[string]scrapeConfig {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("deploy/%s: %v", path, err)
	}
	jobs := map[string]scrapeConfig{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = sc
	}
	return jobs
}

// TestAdminServesProbes: each service, started with the Kubernetes
// manifest's environment, answers the manifest's probes on its admin
// listener from the start, while it waits for Kafka: the startup and
// liveness paths 200, the readiness path 503 saying what it waits on, and
// the scrape path with metrics. Kafka and the registry are a closed local
// port, so nothing is contacted; the listeners are moved to free loopback
// ports.
func TestAdminServesProbes(t *testing.T) {
	closed := servicetest.ClosedAddr(t)
	for _, c := range k8sContainers(t) {
		t.Run(c.Artifact+"/"+c.Service, func(t *testing.T) {
			env := append(checkEnv(t, c),
				"INLET_ADMIN_ADDR=127.0.0.1:0", "INLET_INGEST_ADDR=127.0.0.1:0",
				"INLET_KAFKA_BROKERS="+closed, "INLET_SCHEMA_REGISTRY_URL=http://"+closed,
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_ENDPOINT=")
			admin := start(t, c.Service, env)
			for name, p := range c.Probes {
				code, body := get(t, "http://"+admin+p.Path)
				want := http.StatusOK
				if name == "readinessProbe" {
					want = http.StatusServiceUnavailable // waiting on Kafka
				}
				if code != want || !json.Valid([]byte(body)) {
					t.Errorf("%s: %s's %s %s answered %d %q while waiting for Kafka, want %d and a JSON body", c.Artifact, c.Service, name, p.Path, code, body, want)
				}
			}
			path := c.Annotations["prometheus.io/path"]
			if code, body := get(t, "http://"+admin+path); code != http.StatusOK || !strings.Contains(body, "# TYPE go_goroutines") {
				t.Errorf("%s: %s's scrape path %s answered %d, want 200 with metrics:\n%.300s", c.Artifact, c.Service, path, code, body)
			}
		})
	}
}

// start runs service with env until the test ends and returns its admin
// listener's address, read from its "starting" log line.
func start(t *testing.T, service string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin(t, service))
	cmd.Env = append(env, "INLET_LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addrc := make(chan string, 1)
	var log strings.Builder
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			var line struct{ Msg, Admin string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == service+" starting" {
				addrc <- line.Admin
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addrc:
		return a
	case <-done:
		t.Fatalf("%s exited before serving its admin listener:\n%s", service, log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not log %q within 20s", service, service+" starting") // its log is the reader's until it exits
	}
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
