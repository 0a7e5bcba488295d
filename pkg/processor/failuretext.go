package processor

import (
	"errors"
	"slices"
	"strings"

	"github.com/inletdev/inlet/pkg/alert"
	"github.com/inletdev/inlet/pkg/contract"
	"github.com/inletdev/inlet/pkg/retry"
	"github.com/inletdev/inlet/pkg/router"
)

// failureText is err's text wherever a failure is written down (the error
// history headers, alerts, the processing history, logs): at most
// retry.MaxErrorText bytes (a handler's error can quote a whole response
// body, and an alert webhook refuses an oversized message), and without
// the payload values a validation error quotes for fields whose names look
// secret. The alert's excerpt redacts those members, and inletctl's and the
// admin API's listings show errors without payloads: a card number sent as
// a string where a number belongs must not reach them through the error.
func failureText(err error) string {
	s := err.Error()
	var ce *contract.ValidationError
	if errors.As(err, &ce) {
		red := *ce
		red.Fields = redactFields(ce.Fields, func(f *contract.FieldError) (string, *string) { return f.Path, &f.Actual })
		s = strings.Replace(s, ce.Error(), red.Error(), 1)
	}
	var rv *router.ValidationError
	if errors.As(err, &rv) {
		red := *rv
		red.Fields = redactFields(rv.Fields, func(f *router.FieldProblem) (string, *string) { return f.Path, &f.Actual })
		s = strings.Replace(s, rv.Error(), red.Error(), 1)
	}
	return retry.Truncate(s, retry.MaxErrorText)
}

// redactFields returns a copy of a validation error's fields with each
// actual value redacted where its path looks secret; field gives a field's
// path and its actual value to rewrite.
func redactFields[F any](fields []F, field func(*F) (path string, actual *string)) []F {
	out := slices.Clone(fields)
	for i := range out {
		path, actual := field(&out[i])
		*actual = redacted(path, *actual)
	}
	return out
}

// redacted is the actual value a field error quotes at path, kept to its
// kind ("string", "number") where the path looks secret. A value follows
// its kind after a space: "string \"4242…\"".
func redacted(path, actual string) string {
	if kind, value, ok := strings.Cut(actual, " "); ok && value != "" && alert.SecretPath(path) {
		return kind + " (redacted)"
	}
	return actual
}
