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

// failureText is err's text for alerts, the processing history and logs: at
// most retry.MaxErrorText bytes (a handler's error can quote a whole
// response body, and an alert webhook refuses an oversized message), and
// without the payload values a validation error quotes for fields whose
// names look secret. The alert's excerpt redacts those members; a card
// number sent as a string where a number belongs must not reach the
// webhook through the error instead.
func failureText(err error) string {
	s := err.Error()
	var ce *contract.ValidationError
	if errors.As(err, &ce) {
		red := *ce
		red.Fields = slices.Clone(ce.Fields)
		if redactFields(len(red.Fields), func(i int) (string, *string) { return red.Fields[i].Path, &red.Fields[i].Actual }) {
			s = strings.Replace(s, ce.Error(), red.Error(), 1)
		}
	}
	var rv *router.ValidationError
	if errors.As(err, &rv) {
		red := *rv
		red.Fields = slices.Clone(rv.Fields)
		if redactFields(len(red.Fields), func(i int) (string, *string) { return red.Fields[i].Path, &red.Fields[i].Actual }) {
			s = strings.Replace(s, rv.Error(), red.Error(), 1)
		}
	}
	return retry.Truncate(s, retry.MaxErrorText)
}

// redactFields keeps only the kind ("string", "number") of each of n
// fields' actual value whose path looks secret, and reports whether any
// changed. A value follows its kind after a space: "string \"4242…\"".
func redactFields(n int, field func(int) (path string, actual *string)) bool {
	changed := false
	for i := range n {
		path, actual := field(i)
		if kind, value, ok := strings.Cut(*actual, " "); ok && value != "" && alert.SecretPath(path) {
			*actual = kind + " (redacted)"
			changed = true
		}
	}
	return changed
}
