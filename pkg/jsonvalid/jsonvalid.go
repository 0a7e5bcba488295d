// Package jsonvalid checks that bytes are one JSON value, exactly as
// encoding/json's Valid does, as fast as that can be done safely: ingest
// checks every webhook body and the processor every payload.
package jsonvalid

import (
	"encoding/json"

	"github.com/tidwall/gjson"
)

// gjsonMaxBytes bounds the inputs Valid gives to gjson. gjson's validator
// is several times faster than encoding/json's, but it recurses once per
// nesting level (about 128 bytes of stack each: a 1 MiB body of "[[[…"
// took 64 MiB) and accepts any depth where encoding/json stops at 10000
// levels. A value nested deeper than that needs more than 20000 bytes, so
// below this bound the two agree and the stack stays near 1 MiB at worst.
const gjsonMaxBytes = 16 << 10

// Valid reports whether b is one JSON value, as json.Valid does (FuzzValid
// holds the two equal). Inputs over gjsonMaxBytes go to json.Valid, which
// does not recurse.
func Valid(b []byte) bool {
	if len(b) > gjsonMaxBytes {
		return json.Valid(b)
	}
	return gjson.ValidBytes(b)
}
