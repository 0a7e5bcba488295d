package registry

import "errors"

var (
	// ErrNotFramed is returned when a value does not start with the Confluent
	// wire header (magic byte 0 and a schema ID).
	ErrNotFramed = errors.New("registry: value is not Confluent-framed")
	// ErrUnknownSchema is returned when the schema ID in a value cannot be
	// fetched from the registry or is not an Avro schema.
	ErrUnknownSchema = errors.New("registry: unknown schema")
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
