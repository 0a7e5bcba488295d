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
// ErrBreakingChange and says which direction failed, where (the field's
// path) and why.
//
// Check is stricter than Confluent's registry in one way: a value must
// keep its logical type (and a decimal its precision and scale). Avro's
// checker, which Confluent's runs, ignores logical types, and passes
// timestamp-millis turned timestamp-micros, which reads every stored time
// 1000 times off; see CheckLogicalTypes.
func Check(rule Compatibility, prev, next avro.Schema) error {
	sc := avro.NewSchemaCompatibility()
	if rule == Backward || rule == Full {
		if err := sc.Compatible(next, prev); err != nil {
			return fmt.Errorf("%w: new schema cannot read data written with the previous one (%s): %s%w", ErrBreakingChange, rule, atField(next, prev), err)
		}
	}
	if rule == Forward || rule == Full {
		if err := sc.Compatible(prev, next); err != nil {
			return fmt.Errorf("%w: previous schema cannot read data written with the new one (%s): %s%w", ErrBreakingChange, rule, atField(prev, next), err)
		}
	}
	switch rule {
	case Backward, Forward, Full, None:
		return CheckLogicalTypes(rule, prev, next)
	}
	return fmt.Errorf("registry: unknown compatibility rule %q", rule)
}

// CheckLogicalTypes reports whether next, under rule, reads a value of
// prev's data (Backward), or has its own read by prev (Forward), with a
// different logical type than it was written with: a time in other
// units, a decimal with another scale or precision, a logical type added
// or dropped. None allows anything. The error wraps ErrBreakingChange and
// names the field and both logical types.
//
// It is the part of Check that Confluent's registry leaves out, for a
// check whose structural half a registry already answered.
func CheckLogicalTypes(rule Compatibility, prev, next avro.Schema) error {
	if rule == Backward || rule == Full {
		if c := findLogicalChange(next, prev); c != nil {
			return logicalError(rule, c.path, c.writer, c.reader)
		}
	}
	if rule == Forward || rule == Full {
		if c := findLogicalChange(prev, next); c != nil {
			return logicalError(rule, c.path, c.reader, c.writer)
		}
	}
	return nil
}

func logicalError(rule Compatibility, path, prev, next string) error {
	return fmt.Errorf("%w: field %s: logical type %s in the previous schema, %s in the new one: the same stored value would be read as a different one (%s)", ErrBreakingChange, path, prev, next, rule)
}
