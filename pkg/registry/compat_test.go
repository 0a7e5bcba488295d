package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func parseTest(t *testing.T, s string) avro.Schema {
	t.Helper()
	sc, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// TestCheckLogicalTypes: hamba's checker, like Apache Avro's, looks only at
// the encoded types, so a change of logical type passed every rule though
// the same stored value then reads as a different one.
func TestCheckLogicalTypes(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
	}
	field := func(typ string) string { return rec(`{"name":"f","type":` + typ + `}`) }
	const (
		millis  = `{"type":"long","logicalType":"timestamp-millis"}`
		micros  = `{"type":"long","logicalType":"timestamp-micros"}`
		dec102  = `{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`
		dec103  = `{"type":"bytes","logicalType":"decimal","precision":10,"scale":3}`
		dec122  = `{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}`
		uuid    = `{"type":"string","logicalType":"uuid"}`
		timeMs  = `{"type":"int","logicalType":"time-millis"}`
		timeUs  = `{"type":"long","logicalType":"time-micros"}`
		nanos   = `{"type":"long","logicalType":"timestamp-nanos"}`
		lnanos  = `{"type":"long","logicalType":"local-timestamp-nanos"}`
		fixDec  = `{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":10,"scale":2}`
		fixDec3 = `{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":10,"scale":3}`
	)
	for name, tc := range map[string]struct {
		prev, next string
		want       string // "" = compatible; else a part of the error
		// only is the one rule the case is about, when the other
		// direction is refused for another reason already.
		only Compatibility
	}{
		"timestamp millis to micros":          {field(millis), field(micros), "/f: logical type timestamp-millis in the previous schema, timestamp-micros in the new one", ""},
		"decimal logical type dropped":        {field(dec102), field(`"bytes"`), "/f: logical type decimal(10,2) in the previous schema, none in the new one", ""},
		"decimal scale changed":               {field(dec102), field(dec103), "decimal(10,2) in the previous schema, decimal(10,3)", ""},
		"decimal precision changed":           {field(dec102), field(dec122), "decimal(10,2) in the previous schema, decimal(12,2)", ""},
		"fixed decimal scale changed":         {field(fixDec), field(fixDec3), "decimal(10,2) in the previous schema, decimal(10,3)", ""},
		"uuid dropped":                        {field(uuid), field(`"string"`), "uuid in the previous schema, none", ""},
		"logical type added":                  {field(`"long"`), field(millis), "none in the previous schema, timestamp-millis", ""},
		"time-millis int to time-micros long": {field(timeMs), field(timeUs), "time-millis in the previous schema, time-micros", Backward},
		"logical type hamba does not know":    {field(nanos), field(lnanos), "timestamp-nanos in the previous schema, local-timestamp-nanos", ""},
		"in a union":                          {rec(`{"name":"f","type":["null",` + millis + `],"default":null}`), rec(`{"name":"f","type":["null",` + micros + `],"default":null}`), "/f: logical type timestamp-millis", ""},
		"union made of a plain one":           {field(millis), rec(`{"name":"f","type":["null",` + micros + `],"default":null}`), "/f: logical type timestamp-millis", Backward},
		"in a nested record":                  {rec(`{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"at","type":` + millis + `}]}}`), rec(`{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"at","type":` + micros + `}]}}`), "/n/at: logical type", ""},
		"in an array":                         {field(`{"type":"array","items":` + millis + `}`), field(`{"type":"array","items":` + micros + `}`), "/f/[]: logical type", ""},
		"in a map":                            {field(`{"type":"map","values":` + dec102 + `}`), field(`{"type":"map","values":` + dec103 + `}`), "/f/*: logical type", ""},
		"field renamed with an alias":         {field(millis), rec(`{"name":"g","aliases":["f"],"type":` + micros + `}`), "/g: logical type", Backward},
		"unchanged":                           {field(millis), field(millis), "", ""},
		"unchanged decimal":                   {field(dec102), field(dec102), "", ""},
		"doc changed":                         {field(millis), rec(`{"name":"f","doc":"when","type":` + millis + `}`), "", ""},
		"field added with its own":            {field(millis), rec(`{"name":"f","type":` + millis + `},{"name":"g","type":` + micros + `,"default":0}`), "", ""},
		"recursive":                           {rec(`{"name":"next","type":["null","R"],"default":null},{"name":"at","type":` + millis + `}`), rec(`{"name":"next","type":["null","R"],"default":null},{"name":"at","type":` + millis + `}`), "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			prev, next := parseTest(t, tc.prev), parseTest(t, tc.next)
			for _, rule := range []Compatibility{Backward, Forward, Full} {
				if tc.only != "" && rule != tc.only {
					continue
				}
				err := Check(rule, prev, next)
				switch {
				case tc.want == "" && err != nil:
					t.Errorf("%s: %v, want compatible", rule, err)
				case tc.want != "" && (!errors.Is(err, ErrBreakingChange) || !strings.Contains(err.Error(), tc.want)):
					t.Errorf("%s: %v, want ErrBreakingChange saying %q", rule, err, tc.want)
				}
			}
			if err := Check(None, prev, next); err != nil {
				t.Errorf("NONE: %v, want anything to go", err)
			}
		})
	}
}

// TestCheckNamesTheField: a structural break is named by its field's path,
// as the logical-type one is; hamba's error names only the two types
// ("reader schema long not compatible with writer schema double").
func TestCheckNamesTheField(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
	}
	items := func(qty string) string {
		return rec(`{"name":"id","type":"long"},{"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"qty","type":` + qty + `}]}}}`)
	}
	for name, tc := range map[string]struct {
		rule       Compatibility
		prev, next string
		want       string
	}{
		"array item widened, FULL": {Full, items(`"long"`), items(`"double"`), "field /items/[]/qty: reader schema long not compatible with writer schema double"},
		"array item narrowed":      {Backward, items(`"long"`), items(`"int"`), "field /items/[]/qty: reader schema int"},
		"top-level retyped":        {Backward, rec(`{"name":"a","type":"string"}`), rec(`{"name":"a","type":"long"}`), "field /a: "},
		"in a nullable record":     {Backward, rec(`{"name":"n","type":["null",{"type":"record","name":"N","fields":[{"name":"x","type":"string"}]}],"default":null}`), rec(`{"name":"n","type":["null",{"type":"record","name":"N","fields":[{"name":"x","type":"boolean"}]}],"default":null}`), "field /n/x: "},
		"map value retyped":        {Backward, rec(`{"name":"m","type":{"type":"map","values":"string"}}`), rec(`{"name":"m","type":{"type":"map","values":"int"}}`), "field /m/*: "},
		"required field added":     {Backward, rec(`{"name":"a","type":"string"}`), rec(`{"name":"a","type":"string"},{"name":"b","type":"string"}`), "field /b: reader field b is missing in writer schema and has no default"},
		"renamed through an alias": {Backward, rec(`{"name":"a","type":"string"}`), rec(`{"name":"b","aliases":["a"],"type":"int"}`), "field /b: "},
	} {
		t.Run(name, func(t *testing.T) {
			err := Check(tc.rule, parseTest(t, tc.prev), parseTest(t, tc.next))
			if !errors.Is(err, ErrBreakingChange) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an ErrBreakingChange containing %q", err, tc.want)
			}
		})
	}
}
