package registry

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// Bounds a value's arrays and maps are held to before it is decoded (into
// a dynamic value, any, or with fields the reader skips): hamba reads such
// blocks item by item for as many items as the block's count says,
// whatever the bytes left, appending each or skipping it. A 9-byte value
// whose array count said 2^24 made a decode allocate 256 MiB; one saying
// 2^46 crashed the process (inletctl tail on a foreign record), and a
// skipped map of 2^40 entries (a field the Go type has not) spun for
// good. A decode into a type is bounded by decodeAPI as well.
const (
	// maxEmptyItems bounds a block of items that take no bytes (null, a
	// record of nulls), which the bytes left cannot bound.
	maxEmptyItems = 1 << 16
	// maxNesting bounds how deep a value nests (a recursive schema).
	maxNesting = 1000
)

var errBlockTooLong = errors.New("an array or map holds more items than the value has bytes for")

// checkBlocks walks body as the writer schema w lays it out and refuses a
// block count no honest value of this length could hold, before a
// decoder trusts it. It reads nothing into memory.
func checkBlocks(w avro.Schema, body []byte) error {
	c := blockChecker{b: body}
	return c.walk(w, 0)
}

type blockChecker struct {
	b   []byte
	min map[avro.Schema]int // the fewest bytes an item of the schema takes
}

func (c *blockChecker) long() (int64, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(c.b) == 0 {
			return 0, errors.New("value ends inside a number")
		}
		x := c.b[0]
		c.b = c.b[1:]
		u |= uint64(x&0x7f) << shift
		if x < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errors.New("number longer than 10 bytes")
}

func (c *blockChecker) skip(n int64) error {
	if n < 0 || n > int64(len(c.b)) {
		return fmt.Errorf("length %d past the value's end", n)
	}
	c.b = c.b[n:]
	return nil
}

func (c *blockChecker) walk(s avro.Schema, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("value nested deeper than %d levels", maxNesting)
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		return c.walk(s.Schema(), depth+1)
	case *avro.NullSchema:
		return nil
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			return nil
		case avro.Boolean:
			return c.skip(1)
		case avro.Int, avro.Long:
			_, err := c.long()
			return err
		case avro.Float:
			return c.skip(4)
		case avro.Double:
			return c.skip(8)
		case avro.Bytes, avro.String:
			n, err := c.long()
			if err != nil {
				return err
			}
			return c.skip(n)
		}
		return fmt.Errorf("unknown primitive type %s", s.Type())
	case *avro.FixedSchema:
		return c.skip(int64(s.Size()))
	case *avro.EnumSchema:
		_, err := c.long()
		return err
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if err := c.walk(f.Type(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case *avro.UnionSchema:
		i, err := c.long()
		if err != nil {
			return err
		}
		types := s.Types()
		if i < 0 || i >= int64(len(types)) {
			return fmt.Errorf("union branch %d of %d", i, len(types))
		}
		return c.walk(types[i], depth+1)
	case *avro.ArraySchema:
		return c.blocks(s.Items(), false, depth)
	case *avro.MapSchema:
		return c.blocks(s.Values(), true, depth)
	}
	return fmt.Errorf("unknown schema type %T", s)
}

// blocks walks an array's or map's blocks of items (map values after
// their string keys), refusing a count the bytes left cannot hold.
func (c *blockChecker) blocks(item avro.Schema, keyed bool, depth int) error {
	minItem := c.minSize(item)
	if keyed {
		minItem++ // a key's length
	}
	for {
		n, err := c.long()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			// A negative count is followed by the block's size in bytes.
			n = -n
			if _, err := c.long(); err != nil {
				return err
			}
		}
		switch {
		case n < 0: // -minInt64
			return errBlockTooLong
		case minItem > 0 && n > int64(len(c.b)/minItem):
			return fmt.Errorf("%w: %d items of at least %d bytes in %d bytes", errBlockTooLong, n, minItem, len(c.b))
		case minItem == 0 && n > maxEmptyItems:
			return fmt.Errorf("%w: %d items that take no bytes (at most %d)", errBlockTooLong, n, maxEmptyItems)
		}
		for range n {
			if keyed {
				k, err := c.long()
				if err != nil {
					return err
				}
				if err := c.skip(k); err != nil {
					return err
				}
			}
			if err := c.walk(item, depth+1); err != nil {
				return err
			}
		}
	}
}

// minSize is the fewest bytes a value of s takes. A schema met again
// while its size is being worked out (a recursive one) counts 0.
func (c *blockChecker) minSize(s avro.Schema) int {
	switch s := s.(type) {
	case *avro.PrimitiveSchema, *avro.EnumSchema, *avro.UnionSchema, *avro.ArraySchema, *avro.MapSchema:
		return primitiveMin(s) // no memo needed
	}
	if n, ok := c.min[s]; ok {
		return n
	}
	if c.min == nil {
		c.min = map[avro.Schema]int{}
	}
	c.min[s] = 0
	n := 0
	switch s := s.(type) {
	case *avro.RefSchema:
		n = c.minSize(s.Schema())
	case *avro.NullSchema:
	case *avro.FixedSchema:
		n = s.Size()
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			n += c.minSize(f.Type())
		}
	}
	c.min[s] = n
	return n
}

// primitiveMin is minSize of a schema that holds no named type of its own
// to recurse into: a primitive, or one that starts with a number (an enum
// or union index, an array or map count).
func primitiveMin(s avro.Schema) int {
	if p, ok := s.(*avro.PrimitiveSchema); ok {
		switch p.Type() {
		case avro.Null:
			return 0
		case avro.Float:
			return 4
		case avro.Double:
			return 8
		}
	}
	return 1 // boolean, int, long, a length for bytes and string, an index or a count
}

var blockyCache sync.Map // avro.Schema → bool

// hasBlocks reports whether a value of s may hold an array or a map.
func hasBlocks(s avro.Schema) bool {
	if v, ok := blockyCache.Load(s); ok {
		return v.(bool)
	}
	b := blocky(s, map[avro.Schema]bool{})
	blockyCache.Store(s, b)
	return b
}

func blocky(s avro.Schema, seen map[avro.Schema]bool) bool {
	if seen[s] {
		return false
	}
	seen[s] = true
	switch s := s.(type) {
	case *avro.ArraySchema, *avro.MapSchema:
		return true
	case *avro.RefSchema:
		return blocky(s.Schema(), seen)
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if blocky(f.Type(), seen) {
				return true
			}
		}
	case *avro.UnionSchema:
		for _, t := range s.Types() {
			if blocky(t, seen) {
				return true
			}
		}
	}
	return false
}
