package deploy

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"go.opentelemetry.io/otel/metric"

	"github.com/inletdev/inlet/pkg/telemetry"
)

// instrument is one OpenTelemetry instrument Inlet's code creates.
type instrument struct {
	Kind, Name, Unit string
	At               string // file:line
}

// instruments finds every instrument created with a constant name in the
// non-test Go files under dir: meter.Int64Counter("inlet.events", …).
func instruments(t *testing.T, dir string) []instrument {
	t.Helper()
	var out []instrument
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !instrumentKind.MatchString(sel.Sel.Name) {
				return true
			}
			name, ok := stringLit(call.Args[0])
			if !ok {
				return true
			}
			in := instrument{Kind: sel.Sel.Name, Name: name, At: fset.Position(call.Pos()).String()}
			for _, a := range call.Args[1:] {
				if c, ok := a.(*ast.CallExpr); ok {
					if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "WithUnit" && len(c.Args) == 1 {
						in.Unit, _ = stringLit(c.Args[0])
					}
				}
			}
			out = append(out, in)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var instrumentKind = regexp.MustCompile(`^(Int64|Float64)(Observable)?(Counter|UpDownCounter|Histogram|Gauge)$`)

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// exported returns the metric names /metrics shows for ins: each is
// created on pkg/telemetry's meter provider, given a value, and the
// Prometheus handler scraped, so the names are the exporter's (suffixes,
// units), not a guess. The Go and process collectors' come along.
func exported(t *testing.T, ins []instrument) map[string]bool {
	t.Helper()
	ctx := context.Background()
	tel, err := telemetry.New(ctx, "deploy-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	m := tel.Meter
	for _, in := range ins {
		unit := metric.WithUnit(in.Unit)
		var err error
		switch in.Kind {
		case "Int64Counter":
			var c metric.Int64Counter
			if c, err = m.Int64Counter(in.Name, unit); err == nil {
				c.Add(ctx, 1)
			}
		case "Float64Counter":
			var c metric.Float64Counter
			if c, err = m.Float64Counter(in.Name, unit); err == nil {
				c.Add(ctx, 1)
			}
		case "Int64UpDownCounter":
			var c metric.Int64UpDownCounter
			if c, err = m.Int64UpDownCounter(in.Name, unit); err == nil {
				c.Add(ctx, 1)
			}
		case "Float64UpDownCounter":
			var c metric.Float64UpDownCounter
			if c, err = m.Float64UpDownCounter(in.Name, unit); err == nil {
				c.Add(ctx, 1)
			}
		case "Int64Histogram":
			var c metric.Int64Histogram
			if c, err = m.Int64Histogram(in.Name, unit); err == nil {
				c.Record(ctx, 1)
			}
		case "Float64Histogram":
			var c metric.Float64Histogram
			if c, err = m.Float64Histogram(in.Name, unit); err == nil {
				c.Record(ctx, 1)
			}
		case "Int64Gauge":
			var c metric.Int64Gauge
			if c, err = m.Int64Gauge(in.Name, unit); err == nil {
				c.Record(ctx, 1)
			}
		case "Float64Gauge":
			var c metric.Float64Gauge
			if c, err = m.Float64Gauge(in.Name, unit); err == nil {
				c.Record(ctx, 1)
			}
		case "Int64ObservableCounter":
			_, err = m.Int64ObservableCounter(in.Name, metric.WithUnit(in.Unit), metric.WithInt64Callback(observe1))
		case "Int64ObservableUpDownCounter":
			_, err = m.Int64ObservableUpDownCounter(in.Name, metric.WithUnit(in.Unit), metric.WithInt64Callback(observe1))
		case "Int64ObservableGauge":
			_, err = m.Int64ObservableGauge(in.Name, metric.WithUnit(in.Unit), metric.WithInt64Callback(observe1))
		case "Float64ObservableCounter":
			_, err = m.Float64ObservableCounter(in.Name, metric.WithUnit(in.Unit), metric.WithFloat64Callback(observe1f))
		case "Float64ObservableUpDownCounter":
			_, err = m.Float64ObservableUpDownCounter(in.Name, metric.WithUnit(in.Unit), metric.WithFloat64Callback(observe1f))
		case "Float64ObservableGauge":
			_, err = m.Float64ObservableGauge(in.Name, metric.WithUnit(in.Unit), metric.WithFloat64Callback(observe1f))
		default:
			t.Fatalf("%s: instrument kind %s: the test does not know it", in.At, in.Kind)
		}
		if err != nil {
			t.Fatalf("%s: %v", in.At, err)
		}
	}
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	names := map[string]bool{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		names[name] = true
	}
	return names
}

func observe1(_ context.Context, o metric.Int64Observer) error    { o.Observe(1); return nil }
func observe1f(_ context.Context, o metric.Float64Observer) error { o.Observe(1); return nil }

// prometheusBuiltins are series Prometheus makes itself.
var prometheusBuiltins = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promLabelArg = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames are the metric names a PromQL expression selects.
func metricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promBraces.ReplaceAllString(e, " ")
	e = promLabelArg.ReplaceAllString(e, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatchIndex(e, -1) {
		if m[2] >= 0 {
			continue // a function or aggregation
		}
		if m[0] > 0 && (e[m[0]-1] == '$' || e[m[0]-1] >= '0' && e[m[0]-1] <= '9' || e[m[0]-1] == '.') {
			continue // $variable, 5m, 0.99
		}
		id := e[m[0]:m[1]]
		if !promKeywords[strings.ToLower(id)] {
			out = append(out, id)
		}
	}
	return out
}

// TestMetricNames: the alert rules, their promtool tests' input series and
// the Grafana dashboards select only metrics the services export: the
// instruments under pkg/ (names as the Prometheus exporter writes them),
// the Go and process collectors', and Prometheus' own (up).
func TestMetricNames(t *testing.T) {
	ins := instruments(t, filepath.Join(root, "pkg"))
	if len(ins) < 10 {
		t.Fatalf("found %d instruments under pkg/: the scan is broken", len(ins))
	}
	names := exported(t, ins)
	check := func(where, expr string) {
		seen := map[string]bool{}
		for _, n := range metricNames(expr) {
			if !names[n] && !prometheusBuiltins[n] && !seen[n] {
				seen[n] = true
				t.Errorf("%s selects %s, which no Inlet service exports", where, n)
			}
		}
	}

	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	readYAML(t, "prometheus/alerts.yml", &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			check("deploy/prometheus/alerts.yml "+r.Alert+r.Record, r.Expr)
		}
	}

	var tests struct {
		Tests []struct {
			Name        string
			InputSeries []struct {
				Series string
			} `yaml:"input_series"`
			PromqlExprTest []struct {
				Expr string
			} `yaml:"promql_expr_test"`
		}
	}
	readYAML(t, "prometheus/alerts_test.yml", &tests)
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			check("deploy/prometheus/alerts_test.yml "+strconv.Quote(tc.Name)+" input series", s.Series)
		}
		for _, e := range tc.PromqlExprTest {
			check("deploy/prometheus/alerts_test.yml "+strconv.Quote(tc.Name), e.Expr)
		}
	}

	dashboards, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(dashboards) == 0 {
		t.Fatal("no deploy/grafana/dashboards/*.json")
	}
	for _, path := range dashboards {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("deploy/%s: %v", path, err)
		}
		// Every "expr" anywhere: panel targets, nested rows, annotations.
		var walk func(where string, v any)
		walk = func(where string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if title, ok := v["title"].(string); ok {
					where = "deploy/" + path + " " + strconv.Quote(title)
				}
				for k, x := range v {
					if s, ok := x.(string); ok && k == "expr" {
						check(where, s)
						continue
					}
					walk(where, x)
				}
			case []any:
				for _, x := range v {
					walk(where, x)
				}
			}
		}
		walk("deploy/"+path, d)
	}
	list := make([]string, 0, len(names))
	for n := range names {
		if strings.HasPrefix(n, "inlet_") {
			list = append(list, n)
		}
	}
	sort.Strings(list)
	t.Logf("exported inlet metrics: %v", list)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("deploy/%s: %v", path, err)
	}
}
