package contract

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"
)

var (
	// ErrManifest is wrapped by Load when a manifest.yaml is missing, is not
	// valid YAML, has unknown keys, or breaks a manifest rule (name, version
	// order, canonical version, source_versions, compatibility, sha256).
	ErrManifest = errors.New("invalid contract manifest")

	// ErrSchema is wrapped by Load when a version's .avsc does not parse, is
	// not a record, uses a type a JSON payload cannot carry (bytes, fixed,
	// logical types), has an ambiguous union or a non-null union default
	// hamba/avro cannot use (record, enum or map first branch), or is not
	// referenced by the manifest.
	ErrSchema = errors.New("invalid contract schema")

	// ErrIncompatible is wrapped by Load when a version is not compatible with
	// its predecessor as its manifest declares, or when a version cannot be
	// resolved (upcast) to the contract's canonical version.
	ErrIncompatible = errors.New("incompatible contract versions")
)

// MaxFieldErrors is how many field errors a ValidationError lists; the rest
// are counted in ValidationError.Omitted, so a hostile payload cannot build
// an arbitrarily large error.
const MaxFieldErrors = 16

// FieldError is one problem with one JSON value of a payload.
type FieldError struct {
	// Path is the JSON pointer (RFC 6901) of the value, such as
	// /data/object/amount or /commits/2/id; "" is the whole payload.
	Path string
	// Expected describes what the contract accepts there: an Avro type
	// ("long", "string"), "null or string", "enum [a b]", "object",
	// "array", "any JSON", "one member \"id\"", "JSON", or
	// "nesting depth <= 64".
	Expected string
	// Actual describes what the payload holds: "missing", "null",
	// "string \"12\"", "number 12.5 (not an integer)", "boolean true",
	// "object", "array", "a duplicate member", "deeper nesting", or the
	// syntax error that makes the payload not JSON. Values are truncated to
	// 40 bytes.
	Actual string
}

// Error implements error.
func (e FieldError) Error() string {
	p := e.Path
	if p == "" {
		p = "/"
	}
	return p + ": expected " + e.Expected + ", got " + e.Actual
}

// ValidationError is returned by Version.Read when a payload does not satisfy
// its contract version: it is not JSON, is nested too deeply, lacks a required
// field, or holds a value of the wrong type. Such an event belongs on the
// invalid topic: "a schema changed, update the integration". It is never
// retryable.
type ValidationError struct {
	Contract string // e.g. "stripe/payment_intent"
	Version  string // e.g. "v1"
	// Fields in the order found: an object's members in payload order, then
	// the fields it lacks.
	Fields []FieldError
	// Omitted counts field errors beyond the first MaxFieldErrors.
	Omitted int
}

// Error implements error.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("contract ")
	b.WriteString(e.Contract)
	b.WriteString(" ")
	b.WriteString(e.Version)
	b.WriteString(": invalid payload: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	if e.Omitted > 0 {
		b.WriteString("; and ")
		b.WriteString(strconv.Itoa(e.Omitted))
		b.WriteString(" more")
	}
	return b.String()
}

// LogValue implements slog.LogValuer.
func (e *ValidationError) LogValue() slog.Value {
	paths := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		paths[i] = f.Path
	}
	return slog.GroupValue(
		slog.String("contract", e.Contract),
		slog.String("version", e.Version),
		slog.Any("paths", paths),
		slog.Int("omitted", e.Omitted),
		slog.String("error", e.Error()),
	)
}

// IsValidation reports whether err is or wraps a *ValidationError.
func IsValidation(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}

// Validation marks the error as a validation error for packages that
// classify errors without importing this one (router.IsValidation).
func (e *ValidationError) Validation() bool { return true }
