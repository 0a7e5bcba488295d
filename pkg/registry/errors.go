package registry

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"
)

var (
	// ErrNotFramed is returned when a value does not start with the Confluent
	// wire header (magic byte 0 and a schema ID).
	ErrNotFramed = errors.New("registry: value is not Confluent-framed")
	// ErrUnknownSchema is returned when the registry answered that the
	// schema ID in a value does not exist, or it is not an Avro schema.
	ErrUnknownSchema = errors.New("registry: unknown schema")
	// ErrUnavailable is returned when the registry could not be asked or
	// did not answer properly: a connection error, a timeout, a 5xx, 408 or
	// 429. The same call may work later, so it is a reason to wait, never a
	// verdict on the value.
	ErrUnavailable = errors.New("registry: unavailable")
	// ErrDenied is returned when the registry refused our credentials: 401
	// (authentication failed), 403 (the user lacks the permission the call
	// needs, such as Write on a subject) or 407 (a proxy's). It says
	// nothing about the schema, so IsUnavailable is true for it as well;
	// it is kept apart from ErrUnavailable so that it is reported as what
	// it is, an operator's credentials to fix, not an outage.
	ErrDenied = errors.New("registry: permission denied or authentication failed")
	// ErrNotRegistered is returned by Lookup when the subject does not hold
	// the schema (or does not exist).
	ErrNotRegistered = errors.New("registry: schema not registered")
	// ErrIncompatible is returned when data written with one schema cannot be
	// read with the reader schema asked for.
	ErrIncompatible = errors.New("registry: writer and reader schemas are incompatible")
	// ErrUndecodable is returned when the Avro body does not decode with its
	// own writer schema (a corrupt or truncated value).
	ErrUndecodable = errors.New("registry: value does not decode")
	// ErrBreakingChange is returned by Check when a new schema version is not
	// compatible with the one before it in the required direction.
	ErrBreakingChange = errors.New("registry: breaking schema change")
)

// IsUnavailable reports whether err is no answer about the schema and the
// same call may work later: the registry unreachable or failing
// (ErrUnavailable), or refusing our credentials (ErrDenied). A service
// waits on either; credentials are an operator's problem to fix, not a
// reason to call every event invalid.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDenied)
}

// IsDenied reports whether the registry refused our credentials
// (ErrDenied).
func IsDenied(err error) bool { return errors.Is(err, ErrDenied) }

// Classify is classify for a call made with the registry client (SR)
// outside this package, whose error is reported (logged, printed): a
// refusal's answer may quote the credential it refused, and the client's
// error text is that answer. Nil stays nil.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	return classify(err)
}

// classify wraps a failed registry call's error in ErrDenied when the
// registry refused our credentials, in ErrUnavailable when it could not
// answer, and leaves it as it is when the registry answered with a verdict
// about the schema (any other 4xx carrying the registry's error_code). A
// 4xx without one came from something else at the URL, a proxy or a web
// server with the path routed elsewhere: no verdict, so unavailable. Taken
// as one, every event of a schema not yet cached went to the invalid
// topic as "unknown schema" while it lasted.
func classify(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 {
		switch {
		case re.StatusCode == http.StatusUnauthorized, re.StatusCode == http.StatusForbidden, re.StatusCode == http.StatusProxyAuthRequired:
			return &deniedError{status: re.StatusCode, err: err}
		case re.StatusCode == http.StatusRequestTimeout, re.StatusCode == http.StatusTooManyRequests, re.ErrorCode == 0:
		default:
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// deniedError is ErrDenied for a refusal, without the registry's answer
// in its text: a registry or proxy that quotes the credential it refused
// (the token, a basic auth header) put it in the services' exit message
// and inletctl's output. The answer stays reachable (errors.As to
// *sr.ResponseError) for code that needs it.
type deniedError struct {
	status int
	err    error
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("%v (HTTP %d; the registry's answer is not shown: it may quote the credential it refused)", ErrDenied, e.status)
}

func (e *deniedError) Unwrap() []error { return []error{ErrDenied, e.err} }
