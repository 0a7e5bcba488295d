package source

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Duration is a time.Duration written as "30s", "5m" or "168h" in YAML.
// It is more than 0: 0 would read as "left out", and take a default.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (want e.g. 30s, 5m, 168h): %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	// 0 reads as "left out": dedup_window: 0s was 7 days and max_future:
	// 0s an hour, defaults the operator did not ask for (as a ByteSize).
	if v == 0 {
		return fmt.Errorf("duration %q: must be more than 0 (leave the setting out for its default)", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: UnmarshalText, its error
// a *ValueError saying where the value is.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	return unmarshalNode(node, d.UnmarshalText)
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size written as 1048576, "512KiB", "1MiB" or "1MB" in YAML.
// It is at least one byte: 0 would read as "left out", and take a default
// the operator did not ask for.
type ByteSize int64

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ByteSize) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(str, u.suffix) {
			str, mult = strings.TrimSpace(strings.TrimSuffix(str, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(str, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(str, "-"),
		err == nil && n > math.MaxInt64/mult:
		return fmt.Errorf("size %q is too large (at most %d bytes)", b, int64(math.MaxInt64))
	case err != nil:
		return fmt.Errorf("bad size %q (want e.g. 1048576, 512KiB, 1MiB)", b)
	case n <= 0:
		return fmt.Errorf("size %q: must be at least 1 byte (leave the setting out for its default)", b)
	}
	*s = ByteSize(n * mult)
	return nil
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: UnmarshalText, its error
// a *ValueError saying where the value is.
func (s *ByteSize) UnmarshalYAML(node ast.Node) error {
	return unmarshalNode(node, s.UnmarshalText)
}

// Count is a whole number of things (attempts, lines) in YAML: at least 1,
// written as an integer. 0 would read as "left out" and take the default
// (retry.max_attempts: 0, meant as "no retries", ran the full budget), and
// the YAML decoder truncated 0.5 to 0 and 10.9 to 10.
type Count int

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Count) UnmarshalText(b []byte) error {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a whole number", b)
	case n <= 0:
		return fmt.Errorf("%d: must be at least 1 (leave the setting out for its default)", n)
	}
	*c = Count(n)
	return nil
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: UnmarshalText, its error
// a *ValueError saying where the value is.
func (c *Count) UnmarshalYAML(node ast.Node) error {
	return unmarshalNode(node, c.UnmarshalText)
}

// unmarshalNode reads the scalar node as text, as the YAML decoder does
// for an encoding.TextUnmarshaler, and parses it with parse. Either's
// error is a *ValueError naming the node's place: the decoder returns
// the error alone, and "time: invalid duration" named neither the
// source, the setting nor the line.
func unmarshalNode(node ast.Node, parse func([]byte) error) error {
	var text string
	err := errors.New("want a single value, not a list or mapping")
	if _, ok := node.(ast.ScalarNode); ok {
		if err = yaml.NodeToValue(node, &text); err == nil {
			err = parse([]byte(text))
		}
	}
	if err == nil {
		return nil
	}
	ve := &ValueError{Err: err, path: node.GetPath()}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		ve.Line, ve.column = tk.Position.Line, tk.Position.Column
	}
	return ve
}

// ValueError is a duration or size in the sources file that does not
// parse or is out of range (Err says why). Parse fills in Source and
// Field.
type ValueError struct {
	// Source is the name of the source the value belongs to.
	Source string
	// Field names the setting as the package's other errors do:
	// max_body, batch.max_body, retry.tiers[1], events["x"].sink.timeout.
	Field string
	// Line is the value's line in the file, from 1; 0 when unknown.
	Line int
	Err  error

	column int
	path   string // the YAML decoder's: $.sources.stripe.max_body
}

func (e *ValueError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		fmt.Fprintf(&b, "source %q: ", e.Source)
	}
	switch {
	case e.Field != "":
		b.WriteString(e.Field + ": ")
	case e.path != "":
		b.WriteString(strings.TrimPrefix(e.path, "$.") + ": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ValueError) Unwrap() error { return e.Err }

// locate fills in Source and Field from the file's tree (doc), finding
// the value by its line and column.
func (e *ValueError) locate(doc ast.Node) {
	if e.Line == 0 {
		return
	}
	var sources ast.Node
	for _, kv := range mappingValues(doc) {
		if keyText(kv.Key) == "sources" {
			sources = kv.Value
		}
	}
	for _, kv := range mappingValues(sources) {
		if field, ok := e.find(kv.Value, ""); ok {
			e.Source, e.Field = keyText(kv.Key), field
			return
		}
	}
}

// find looks for the value under n, whose field name is field, and
// returns that value's field name.
func (e *ValueError) find(n ast.Node, field string) (string, bool) {
	if n == nil {
		return "", false
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == e.Line && tk.Position.Column == e.column {
		return field, true
	}
	switch n := n.(type) {
	case *ast.AnchorNode:
		return e.find(n.Value, field)
	case *ast.TagNode:
		return e.find(n.Value, field)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			if f, ok := e.find(v, fmt.Sprintf("%s[%d]", field, i)); ok {
				return f, true
			}
		}
	case *ast.MappingNode, *ast.MappingValueNode:
		for _, kv := range mappingValues(n) {
			var sub string
			switch k := keyText(kv.Key); {
			case field == "events": // keyed by the sender's event types
				sub = fmt.Sprintf("%s[%q]", field, k)
			case field == "":
				sub = k
			default:
				sub = field + "." + k
			}
			if f, ok := e.find(kv.Value, sub); ok {
				return f, true
			}
		}
	}
	return "", false
}

// mappingValues are the entries of a mapping node (one entry may stand
// alone, without a mapping around it).
func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch n := n.(type) {
	case *ast.DocumentNode:
		return mappingValues(n.Body)
	case *ast.AnchorNode:
		return mappingValues(n.Value)
	case *ast.TagNode:
		return mappingValues(n.Value)
	case *ast.MappingNode:
		return n.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}
	}
	return nil
}

func keyText(k ast.MapKeyNode) string {
	if s, ok := k.(ast.ScalarNode); ok {
		return fmt.Sprint(s.GetValue())
	}
	return k.String()
}
