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
	// did not answer properly: a connection error, a timeout, a 5xx, 408,
	// 429, or 401/403/407 (credentials). The same call may work later, so
	// it is a reason to wait, never a verdict on the value.
	ErrUnavailable = errors.New("registry: unavailable")
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

// IsUnavailable reports whether err is the registry being unreachable or
// failing (ErrUnavailable), as opposed to an answer about the schema.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }

// unavailable wraps a failed registry call's error in ErrUnavailable unless
// the registry answered it with a verdict about the schema: a 4xx other
// than 408 and 429, and other than 401, 403 and 407, which say our
// credentials are wrong or expired — an operator's problem to fix, not a
// reason to call every event invalid.
func unavailable(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 {
		switch re.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
		default:
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
