package registry

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// Compatibility is a schema evolution rule, named as Confluent names them.
type Compatibility string

// The rules Check knows.
const (
	Backward Compatibility = "BACKWARD" // the new schema reads data written with the old one
	Forward  Compatibility = "FORWARD"  // the old schema reads data written with the new one
	Full     Compatibility = "FULL"     // both
	None     Compatibility = "NONE"     // anything goes
)

// Check reports whether next may follow prev under rule. The error wraps
// ErrBreakingChange and says which direction failed and why.
func Check(rule Compatibility, prev, next avro.Schema) error {
	sc := avro.NewSchemaCompatibility()
	if rule == Backward || rule == Full {
		if err := sc.Compatible(next, prev); err != nil {
			return fmt.Errorf("%w: new schema cannot read data written with the previous one (%s): %w", ErrBreakingChange, rule, err)
		}
	}
	if rule == Forward || rule == Full {
		if err := sc.Compatible(prev, next); err != nil {
			return fmt.Errorf("%w: previous schema cannot read data written with the new one (%s): %w", ErrBreakingChange, rule, err)
		}
	}
	switch rule {
	case Backward, Forward, Full, None:
		return nil
	}
	return fmt.Errorf("registry: unknown compatibility rule %q", rule)
}
