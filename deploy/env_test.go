package deploy

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// runtimeVars are variables read by what the binaries link rather than by
// Inlet's flags: the Go runtime, and the OpenTelemetry SDK with its
// OTLP/HTTP trace and metric exporters (pkg/telemetry). Only names these
// actually read belong here: OTEL_EXPORTER_OTLP_PROTOCOL, say, is not
// (the exporters are HTTP only), and a manifest setting it would be a
// setting silently ignored.
var runtimeVars = func() map[string]bool {
	m := map[string]bool{
		"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true, "GOTRACEBACK": true,
		"OTEL_SERVICE_NAME": true, "OTEL_RESOURCE_ATTRIBUTES": true, "OTEL_PROPAGATORS": true,
		"OTEL_TRACES_SAMPLER": true, "OTEL_TRACES_SAMPLER_ARG": true,
		"OTEL_BSP_SCHEDULE_DELAY": true, "OTEL_BSP_EXPORT_TIMEOUT": true,
		"OTEL_BSP_MAX_QUEUE_SIZE": true, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": true,
	}
	for _, signal := range []string{"", "TRACES_", "METRICS_"} {
		for _, s := range []string{"ENDPOINT", "HEADERS", "TIMEOUT", "COMPRESSION", "CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY", "INSECURE"} {
			m["OTEL_EXPORTER_OTLP_"+signal+s] = true
		}
	}
	return m
}()

// TestManifestEnvIsRead: every variable deploy/k8s, docker-compose.yml
// and deploy/compose.dev.env give ingest or the processor is one that
// service reads: a flag's variable, a secret its usage names (with its
// _FILE variant), a variable its sources file names for it (secrets_env and
// batch tokens_env for ingest, sinks' headers_env for the processor), or
// the Go runtime's and OpenTelemetry's. Anything else is ignored by the
// service, most likely a typo or a renamed flag's old name.
func TestManifestEnvIsRead(t *testing.T) {
	for _, c := range allContainers(t) {
		t.Run(c.Artifact+"/"+c.Service, func(t *testing.T) {
			fs := flags(t, c.Service)
			src, _ := sourceVars(t, sourcesPath(t, c))
			names := make([]string, 0, len(c.Env)+len(c.Optional))
			from := map[string]string{}
			for k, v := range c.Env {
				names = append(names, k)
				from[k] = v.From
			}
			for k := range c.Optional {
				names = append(names, k)
				from[k] = "an optional secretKeyRef"
			}
			sort.Strings(names)
			for _, k := range names {
				if fs.reads(k) || src[c.Service][k] || runtimeVars[k] {
					continue
				}
				hint := ""
				if near := nearest(k, fs); near != "" {
					hint = " (did you mean " + near + "?)"
				}
				if other := otherService(c.Service); flags(t, other).reads(k) || src[other][k] {
					hint = " (" + other + " reads it, " + c.Service + " does not)"
				}
				t.Errorf("%s gives %s the variable %s (from %s), which %s does not read%s",
					c.Artifact, c.Service, k, from[k], c.Service, hint)
			}
		})
	}
}

func otherService(s string) string {
	if s == "ingest" {
		return "processor"
	}
	return "ingest"
}

// nearest is the variable of fs closest to name, if it is close.
func nearest(name string, fs *flagSet) string {
	best, bestD := "", 4
	for env := range fs.ByEnv {
		if d := editDistance(name, env); d < bestD {
			best, bestD = env, d
		}
	}
	for env := range fs.Secrets {
		if d := editDistance(name, env); d < bestD {
			best, bestD = env, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// checkEnv is c's environment for a run on this machine: mounted paths
// mapped to the files the artifact mounts, and the example Secret's
// placeholders replaced by well-formed dummies (a placeholder is
// deliberately not one: deploying it must fail).
func checkEnv(t *testing.T, c container) []string {
	t.Helper()
	_, whsec := sourceVars(t, sourcesPath(t, c))
	var env []string
	for k, v := range c.Env {
		val := v.Value
		if p, ok := hostPath(c, val); ok {
			val = p
		}
		switch {
		case whsec[k] && strings.Contains(val, "REPLACE_ME"):
			val = dummyWhsec
		case strings.HasPrefix(val, "REPLACE_ME"):
			// A placeholder need not have a secret's shape (an admin
			// token's length): a real one is checked when deployed.
			val = "deploy-test-dummy-0123456789abcdef0123456789abcdef"
		case strings.Contains(val, "REPLACE_ME"):
			// Inside a value, as the Redis URL's password.
			val = strings.ReplaceAll(val, "REPLACE_ME", "deploy-test-dummy")
		}
		env = append(env, k+"="+val)
	}
	sort.Strings(env)
	return env
}

// TestManifestCheckConfig: each service's --check-config accepts the
// configuration each artifact gives it: every value parses for its flag
// (durations, sizes, URLs, lists), the sources file the artifact mounts
// loads with the secrets it is given, the listen addresses are addresses,
// and the container's args are flags. --check-config contacts nothing.
func TestManifestCheckConfig(t *testing.T) {
	for _, c := range allContainers(t) {
		t.Run(c.Artifact+"/"+c.Service, func(t *testing.T) {
			for _, a := range c.Args {
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if strings.HasPrefix(a, "-") && flags(t, c.Service).Flags[name] == nil {
					t.Errorf("%s: %s's args name -%s, which is not a flag of %s", c.Artifact, c.Service, name, c.Service)
				}
			}
			cmd := exec.Command(bin(t, c.Service), append(append([]string{}, c.Args...), "--check-config")...)
			cmd.Env = checkEnv(t, c)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "configuration ok") {
				t.Errorf("%s: %s --check-config with its environment: %v\n%s\nenvironment:\n  %s",
					c.Artifact, c.Service, err, out.String(), strings.Join(cmd.Env, "\n  "))
			}
		})
	}
}
