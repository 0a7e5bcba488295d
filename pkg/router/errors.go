package router

import (
	"errors"
	"fmt"
	"strings"
)

// ValidationError says an event does not fit what its handler expects: a
// missing field, a wrong type, an unknown enum value. It goes to the invalid
// topic ("a schema changed, update the integration"), never the DLQ.
type ValidationError struct {
	Reason string
	Fields []FieldProblem
}

// FieldProblem is one field that failed validation.
type FieldProblem struct {
	Path     string `json:"path"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("validation failed")
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: expected %s, got %s", f.Path, f.Expected, f.Actual)
	}
	return b.String()
}

// validation lets other packages' error types (such as the contract
// reader's) count as validation errors without importing this package.
type validation interface{ Validation() bool }

// IsValidation reports whether err means the event itself is invalid (so
// retrying cannot help): a *ValidationError, ErrNoHandler, or any error in
// the chain with a Validation() bool method returning true.
func IsValidation(err error) bool {
	if err == nil {
		return false
	}
	var ve *ValidationError
	if errors.As(err, &ve) || errors.Is(err, ErrNoHandler) {
		return true
	}
	var v validation
	return errors.As(err, &v) && v.Validation()
}
