package deploy

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// envVar is one variable a container is given, and where it was set.
type envVar struct {
	Value string
	From  string // "deploy/k8s/ingest.yaml env", "deploy/compose.dev.env", …
}

// container is one Inlet service as an artifact runs it.
type container struct {
	Artifact string // "deploy/k8s/ingest.yaml", "docker-compose.yml"
	Service  string // "ingest" or "processor"
	Env      map[string]envVar
	// Args are the container's command and args after the binary.
	Args []string
	// Mounts maps a path in the container to a host directory or file
	// holding what the artifact mounts there (a ConfigMap written out,
	// a compose bind mount).
	Mounts map[string]string
	// Ports are the container ports: named ones (Kubernetes) by name,
	// compose's published ones by "host:container".
	Ports map[string]int
	// Probes: "startupProbe" → {path, port name or number}.
	Probes map[string]probe
	// Annotations of the pod (prometheus.io/*).
	Annotations map[string]string
	// Selector is the pod selector of the Deployment (Kubernetes), or the
	// compose service's name under "compose".
	Selector map[string]string
	// Optional are variables from an optional secretKeyRef whose key the
	// example Secret lacks: left unset, as Kubernetes does.
	Optional map[string]bool
}

type probe struct{ Path, Port string }

// k8sObject is the part of a Kubernetes object the tests read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []struct {
		Name            string   `yaml:"name"`
		Image           string   `yaml:"image"`
		ImagePullPolicy string   `yaml:"imagePullPolicy"`
		Command         []string `yaml:"command"`
		Args            []string `yaml:"args"`
		Ports           []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		EnvFrom []struct {
			ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
			SecretRef    *struct{ Name string } `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name     string `yaml:"name"`
					Key      string `yaml:"key"`
					Optional bool   `yaml:"optional"`
				} `yaml:"secretKeyRef"`
				ConfigMapKeyRef *struct {
					Name     string `yaml:"name"`
					Key      string `yaml:"key"`
					Optional bool   `yaml:"optional"`
				} `yaml:"configMapKeyRef"`
				FieldRef *struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		StartupProbe   *k8sProbe `yaml:"startupProbe"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// readK8s returns every object of deploy/k8s/*.yaml by kind, and the file
// each came from.
func readK8s(t *testing.T) (objs []k8sObject, files []string) {
	t.Helper()
	paths, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no deploy/k8s/*.yaml: %v", err)
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("deploy/%s: %v", p, err)
			}
			if o.Kind != "" {
				objs = append(objs, o)
				files = append(files, "deploy/"+p)
			}
		}
		f.Close()
	}
	return objs, files
}

// serviceOfImage is the Inlet service an image runs: inlet/ingest → ingest.
func serviceOfImage(image string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(image, "inlet/"), ":")
	if name == "ingest" || name == "processor" {
		return name
	}
	return ""
}

// dockerfileEnv is the ENV of a service's image (the last stage's): the
// manifests add to it.
func dockerfileEnv(t *testing.T, service string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "services", service, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, then take the ENV instructions after the
	// last FROM.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			env = map[string]string{}
		case "ENV":
			for _, kv := range f[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		}
	}
	return env
}

// k8sContainers returns ingest and processor as deploy/k8s runs them. The
// Secret's values come from secret-example.yaml; ConfigMap volumes are
// written under dir.
func k8sContainers(t *testing.T) []container {
	t.Helper()
	objs, files := readK8s(t)
	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	for _, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o.Data
		case "Secret":
			secrets[o.Metadata.Name] = o.StringData
		}
	}
	var out []container
	for i, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		spec := o.Spec.Template.Spec
		for _, c := range spec.Containers {
			svc := serviceOfImage(c.Image)
			if svc == "" {
				continue
			}
			ct := container{
				Artifact: files[i], Service: svc, Env: map[string]envVar{},
				Args: append(append([]string{}, c.Command...), c.Args...), Mounts: map[string]string{},
				Ports: map[string]int{}, Probes: map[string]probe{}, Optional: map[string]bool{},
				Annotations: o.Spec.Template.Metadata.Annotations, Selector: map[string]string{},
			}
			if ml, ok := o.Spec.Selector["matchLabels"].(map[string]any); ok {
				for k, v := range ml {
					ct.Selector[k] = toString(v)
				}
			}
			for k, v := range dockerfileEnv(t, svc) {
				ct.Env[k] = envVar{v, "services/" + svc + "/Dockerfile ENV"}
			}
			for _, ef := range c.EnvFrom {
				switch {
				case ef.ConfigMapRef != nil:
					cm, ok := configMaps[ef.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: envFrom ConfigMap %s is in no deploy/k8s file", files[i], ef.ConfigMapRef.Name)
					}
					for k, v := range cm {
						ct.Env[k] = envVar{v, "ConfigMap " + ef.ConfigMapRef.Name}
					}
				case ef.SecretRef != nil:
					for k, v := range secrets[ef.SecretRef.Name] {
						ct.Env[k] = envVar{v, "Secret " + ef.SecretRef.Name}
					}
				}
			}
			seen := map[string]bool{}
			for _, e := range c.Env {
				if seen[e.Name] {
					t.Errorf("%s: %s sets %s twice", files[i], svc, e.Name)
				}
				seen[e.Name] = true
				from := files[i] + " env"
				switch {
				case e.ValueFrom == nil:
					ct.Env[e.Name] = envVar{e.Value, from}
				case e.ValueFrom.SecretKeyRef != nil:
					r := e.ValueFrom.SecretKeyRef
					v, ok := secrets[r.Name][r.Key]
					switch {
					case ok:
						ct.Env[e.Name] = envVar{v, from + " (Secret " + r.Name + ")"}
					case r.Optional:
						ct.Optional[e.Name] = true
					default:
						t.Errorf("%s: %s takes %s from key %s of Secret %s, which secret-example.yaml lacks: the example no longer shows every secret a pod needs",
							files[i], svc, e.Name, r.Key, r.Name)
					}
				case e.ValueFrom.ConfigMapKeyRef != nil:
					r := e.ValueFrom.ConfigMapKeyRef
					v, ok := configMaps[r.Name][r.Key]
					if !ok && !r.Optional {
						t.Errorf("%s: %s takes %s from key %s of ConfigMap %s, which has no such key", files[i], svc, e.Name, r.Key, r.Name)
					}
					ct.Env[e.Name] = envVar{v, from + " (ConfigMap " + r.Name + ")"}
				case e.ValueFrom.FieldRef != nil:
					ct.Env[e.Name] = envVar{"inlet-pod-0", from + " (fieldRef)"}
				}
			}
			for _, p := range c.Ports {
				ct.Ports[p.Name] = p.ContainerPort
			}
			for name, p := range map[string]*k8sProbe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				if p == nil {
					t.Errorf("%s: %s has no %s", files[i], svc, name)
					continue
				}
				if p.HTTPGet == nil {
					t.Errorf("%s: %s's %s is not an httpGet", files[i], svc, name)
					continue
				}
				ct.Probes[name] = probe{p.HTTPGet.Path, toString(p.HTTPGet.Port)}
			}
			volumes := map[string]string{}
			for _, v := range spec.Volumes {
				if v.ConfigMap != nil {
					volumes[v.Name] = v.ConfigMap.Name
				}
			}
			for _, m := range c.VolumeMounts {
				cm, ok := volumes[m.Name]
				if !ok {
					continue
				}
				dir := t.TempDir()
				for k, v := range configMaps[cm] {
					if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				ct.Mounts[m.MountPath] = dir
			}
			out = append(out, ct)
		}
	}
	if len(out) != 2 {
		t.Fatalf("deploy/k8s runs %d Inlet containers, want ingest and processor", len(out))
	}
	return out
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case uint64:
		return strconv.FormatUint(v, 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case nil:
		return ""
	}
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(yamlString(v)), `"`))
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     any               `yaml:"command"`
		Entrypoint  any               `yaml:"entrypoint"`
		EnvFile     []string          `yaml:"env_file"`
		Environment map[string]any    `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Build       map[string]string `yaml:"build"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	// A key merged from an x- anchor may be set again (compose's own
	// rule: the service's wins); goccy/go-yaml calls it a duplicate.
	if err := yaml.UnmarshalWithOptions(b, &c, yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// composeInterpolation is ${VAR}, ${VAR:-default}, ${VAR-default}.
var composeInterpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// composeContainers returns ingest and processor as docker-compose.yml runs
// them, with the variables compose interpolates unset (their defaults).
func composeContainers(t *testing.T) []container {
	t.Helper()
	c := readCompose(t)
	var out []container
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Services[name]
		svc := serviceOfImage(s.Image)
		if svc == "" {
			continue
		}
		ct := container{
			Artifact: "docker-compose.yml", Service: svc, Env: map[string]envVar{},
			Mounts: map[string]string{}, Ports: map[string]int{}, Probes: map[string]probe{}, Optional: map[string]bool{},
			Selector: map[string]string{"compose": name},
		}
		if s.Entrypoint != nil {
			t.Errorf("docker-compose.yml: %s sets an entrypoint: the tests read only command", name)
		}
		switch cmd := s.Command.(type) {
		case nil:
		case []any:
			for _, a := range cmd {
				ct.Args = append(ct.Args, toString(a))
			}
		default:
			ct.Args = strings.Fields(toString(cmd))
		}
		for k, v := range dockerfileEnv(t, svc) {
			ct.Env[k] = envVar{v, "services/" + svc + "/Dockerfile ENV"}
		}
		for _, f := range s.EnvFile {
			for k, v := range readEnvFile(t, filepath.Join(root, f)) {
				ct.Env[k] = envVar{v, f}
			}
		}
		for k, v := range s.Environment {
			val := composeInterpolation.ReplaceAllString(toString(v), "$2")
			ct.Env[k] = envVar{val, "docker-compose.yml " + name + ".environment"}
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
				continue // a named volume
			}
			ct.Mounts[parts[1]] = filepath.Join(root, parts[0])
		}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			n, err := strconv.Atoi(parts[len(parts)-1])
			if err != nil {
				t.Errorf("docker-compose.yml: %s port %q: the container side is not a port number", name, p)
				continue
			}
			ct.Ports[p] = n
		}
		out = append(out, ct)
	}
	if len(out) != 2 {
		t.Fatalf("docker-compose.yml runs %d Inlet services, want ingest and processor", len(out))
	}
	return out
}

// readEnvFile reads a compose env file: KEY=VALUE lines, # comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not KEY=VALUE", path, line)
			continue
		}
		env[k] = v
	}
	return env
}

// allContainers is every Inlet container of every artifact.
func allContainers(t *testing.T) []container {
	t.Helper()
	return append(k8sContainers(t), composeContainers(t)...)
}

// sourcesFile is what the tests read of a sources file: per source its
// kind and the variables it names.
type sourcesFile struct {
	Sources map[string]struct {
		Kind       string   `yaml:"kind"`
		SecretsEnv []string `yaml:"secrets_env"`
		Batch      struct {
			TokensEnv []string `yaml:"tokens_env"`
		} `yaml:"batch"`
	} `yaml:"sources"`
}

// sourceVars returns the variables a sources file names, by the service
// that reads them: the signing secrets and batch tokens are ingest's, the
// sinks' headers_env the processor's; each may also be given as _FILE.
// It also returns the standard-webhooks secrets, which must look like
// whsec_<base64> even as dummies.
func sourceVars(t *testing.T, path string) (byService map[string]map[string]bool, whsec map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the sources file: %v", err)
	}
	var f sourcesFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	byService = map[string]map[string]bool{"ingest": {}, "processor": {}}
	whsec = map[string]bool{}
	add := func(svc, name string) {
		byService[svc][name] = true
		byService[svc][name+"_FILE"] = true
	}
	for _, s := range f.Sources {
		for _, n := range s.SecretsEnv {
			add("ingest", n)
			if s.Kind == "standard-webhooks" {
				whsec[n] = true
			}
		}
		for _, n := range s.Batch.TokensEnv {
			add("ingest", n)
		}
	}
	// headers_env sits in sinks, wherever they are: walk the document.
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "headers_env" {
					if m, ok := x.(map[string]any); ok {
						for _, n := range m {
							add("processor", toString(n))
						}
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return byService, whsec
}

// sourcesPath is the host path of the sources file c's service reads.
func sourcesPath(t *testing.T, c container) string {
	t.Helper()
	p, ok := hostPath(c, c.Env["INLET_SOURCES"].Value)
	if !ok {
		t.Fatalf("%s: %s reads INLET_SOURCES=%q, which no mount of the artifact provides", c.Artifact, c.Service, c.Env["INLET_SOURCES"].Value)
	}
	return p
}

// hostPath maps a path in c to the host file the artifact mounts there.
func hostPath(c container, p string) (string, bool) {
	for mount, host := range c.Mounts {
		if p == mount {
			return host, true
		}
		if strings.HasPrefix(p, strings.TrimSuffix(mount, "/")+"/") {
			return filepath.Join(host, strings.TrimPrefix(p, strings.TrimSuffix(mount, "/")+"/")), true
		}
	}
	return "", false
}

// dummyWhsec is a well-formed standard-webhooks secret for the checks.
var dummyWhsec = "whsec_" + base64.StdEncoding.EncodeToString([]byte("deploy-test-secret"))
