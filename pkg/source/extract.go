package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/inletdev/inlet/pkg/jsonvalid"
)

// ErrNoEventType is returned by Extract when the event type is nowhere to be
// found (and the source has no default for it).
var ErrNoEventType = errors.New("event type not found")

// ErrNoEventID is returned by Extract when the event id is nowhere to be
// found and the source turned off the body-hash fallback.
var ErrNoEventID = errors.New("event id not found")

// maxMetaLen bounds extracted values: they become keys and headers.
const maxMetaLen = 256

// Meta is what ingest reads off a delivery besides the body.
type Meta struct {
	EventType     string
	EventID       string
	SchemaVersion string
	OccurredAt    *time.Time
}

// ErrUnpairedSurrogate is returned (wrapped, naming the field) for a
// metadata value read from JSON whose string holds a \u escape of a UTF-16
// surrogate that is not half of a pair. JSON readers decode it as U+FFFD,
// so "ord-\ud800" and "ord-\udbff" would be one event id, and one of the
// two events would be lost to compaction and dedup.
var ErrUnpairedSurrogate = errors.New("metadata value holds an unpaired UTF-16 surrogate escape (\\ud800 to \\udfff), which reads as U+FFFD")

// ErrInvalidUTF8 is returned (wrapped) for a metadata or key template value
// whose bytes are not UTF-8: it would become an Avro string and a Kafka key.
var ErrInvalidUTF8 = errors.New("metadata value is not valid UTF-8")

// Extract finds the event metadata in a verified delivery. body must be
// valid JSON when the source requires JSON (pointers see nothing otherwise).
func (s *Source) Extract(h http.Header, body []byte) (Meta, error) {
	var m Meta
	// Whether body is JSON matters only to a field that reads the body
	// before a header, and is found out once, when first needed.
	checked, isJSON := s.RequiresJSON(), s.RequiresJSON()
	bodyJSON := func() bool {
		if !checked {
			checked, isJSON = true, jsonvalid.Valid(body)
		}
		return isJSON
	}
	var err error
	if m.EventType, err = lookup(s.EventType, h, body, bodyJSON); err != nil {
		return m, fmt.Errorf("event_type: %w", err)
	}
	if m.EventType == "" {
		return m, ErrNoEventType
	}
	idField := s.EventID
	if !bodyJSON() {
		// The id is the raw topic's key: read from bytes that are not
		// JSON, a pointer finds what the JSON reader guesses (`x
		// {"id":"a"}` and an NDJSON blob whose first line has id a were
		// both id a), and two different events shared a key, one lost to
		// deduplication and compaction. A header, else the body's hash.
		idField.path, idField.fallbacks = CompiledPointer{}, nil
	}
	if m.EventID, err = lookup(idField, h, body, bodyJSON); err != nil {
		return m, fmt.Errorf("event_id: %w", err)
	}
	if m.EventID == "" {
		if s.EventID.HashBody != nil && !*s.EventID.HashBody {
			return m, ErrNoEventID
		}
		sum := sha256.Sum256(body)
		m.EventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	if m.SchemaVersion, err = lookup(s.SchemaVersion, h, body, bodyJSON); err != nil {
		return m, fmt.Errorf("schema_version: %w", err)
	}
	// Not key material: a value that reads as U+FFFD is no time either.
	if raw, _ := lookupRaw(s.OccurredAt, h, body, bodyJSON); raw.Exists() {
		m.OccurredAt = ParseTime(raw)
	}
	for _, f := range [...]struct{ name, v string }{{"event_type", m.EventType}, {"event_id", m.EventID}, {"schema_version", m.SchemaVersion}} {
		if err := CheckMeta(f.v); err != nil {
			return m, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	m.EventType, m.EventID, m.SchemaVersion = ownStrings(m.EventType, m.EventID, m.SchemaVersion)
	return m, nil
}

// SchemaVersionOf is the schema version Extract reads from a delivery's
// headers h and body: the source's schema_version field, its default
// (DefaultSchemaVersion unless the file sets one) where that finds
// nothing.
func (s *Source) SchemaVersionOf(h http.Header, body []byte) (string, error) {
	checked, isJSON := s.RequiresJSON(), s.RequiresJSON()
	v, err := lookup(s.SchemaVersion, h, body, func() bool {
		if !checked {
			checked, isJSON = true, jsonvalid.Valid(body)
		}
		return isJSON
	})
	if err == nil {
		err = CheckMeta(v)
	}
	if err != nil {
		return "", fmt.Errorf("schema_version: %w", err)
	}
	return v, nil
}

// OccurredAtValue is the value Extract reads the business time from,
// looked up again in a delivery's kept headers h and its body, and where
// the source looks for it (its pointer and header, in the order read),
// for an error naming it; where is "" for a source that reads none. The
// value aliases body: use it before body can change.
func (s *Source) OccurredAtValue(h http.Header, body []byte) (v gjson.Result, where string) {
	f := s.OccurredAt
	var parts []string
	if f.Header != "" {
		parts = append(parts, "header "+f.Header)
	}
	if f.Pointer != "" {
		if f.pointerFirst {
			parts = append([]string{f.Pointer}, parts...)
		} else {
			parts = append(parts, f.Pointer)
		}
	}
	if len(f.Fallback) > 0 {
		parts = append(parts, "fallback "+strings.Join(f.Fallback, ", "))
	}
	if len(parts) == 0 {
		return gjson.Result{}, ""
	}
	checked, isJSON := s.RequiresJSON(), s.RequiresJSON()
	bodyJSON := func() bool {
		if !checked {
			checked, isJSON = true, jsonvalid.Valid(body)
		}
		return isJSON
	}
	v, _ = lookupRaw(f, h, body, bodyJSON) // an unpaired surrogate is no time either
	return v, strings.Join(parts, ", ")
}

// ownStrings returns copies of a, b and c sharing one allocation. The
// values read from a body alias it (see CompiledPointer.peek): copied
// once here, not twice per lookup, and a value kept (an event type in the
// metric limiter) holds a few bytes, not the body.
func ownStrings(a, b, c string) (string, string, string) {
	// Not a + b + c: with two of them empty, that is the third as it is.
	var sb strings.Builder
	sb.Grow(len(a) + len(b) + len(c))
	sb.WriteString(a)
	sb.WriteString(b)
	sb.WriteString(c)
	all := sb.String()
	return all[:len(a)], all[len(a) : len(a)+len(b)], all[len(a)+len(b):]
}

// CheckMeta refuses an extracted value (event type, event id, schema
// version) that is too long, not valid UTF-8, or holds control characters.
// They become Kafka keys and headers, Avro strings and metric labels: one
// invalid byte in an event type made every /metrics scrape fail until a
// restart, and invalid bytes decoded as U+FFFD made two different event ids
// one key. No provider sends control characters there; from a sender they
// are escape sequences meant for an operator's terminal or a log viewer.
// The error does not name the value: callers prefix the field's name.
func CheckMeta(v string) error {
	if len(v) > maxMetaLen {
		return fmt.Errorf("metadata value longer than %d bytes", maxMetaLen)
	}
	if !utf8.ValidString(v) {
		return ErrInvalidUTF8
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Errorf("metadata value holds a control character (%U)", r)
		}
	}
	return nil
}

// CheckMetaJSON refuses a metadata value decoded from the JSON token raw
// when raw holds an unpaired surrogate escape (ErrUnpairedSurrogate). Only
// a value holding U+FFFD can come from one, so raw is read only then.
func CheckMetaJSON(value, raw string) error {
	if strings.ContainsRune(value, utf8.RuneError) && unpairedSurrogate(raw) {
		return ErrUnpairedSurrogate
	}
	return nil
}

// unpairedSurrogate reports whether the JSON text raw holds a \u escape of
// a low surrogate, or of a high one not followed by a \u escape of a low
// one: what encoding/json and gjson decode as U+FFFD.
func unpairedSurrogate(raw string) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i++; i >= len(raw) || raw[i] != 'u' {
			continue // a one-character escape, \\ included: skipped whole
		}
		r, ok := hex4(raw, i+1)
		if !ok {
			continue
		}
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo, ok := hex4(raw, i+3); ok && lo >= 0xdc00 && lo <= 0xdfff {
					i += 6
					continue
				}
			}
			return true
		}
	}
	return false
}

// hex4 reads the four hex digits at raw[i:].
func hex4(raw string, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(raw[i:i+4], 16, 16)
	return rune(n), err == nil
}

func lookup(f Field, h http.Header, body []byte, bodyJSON func() bool) (string, error) {
	r, err := lookupRaw(f, h, body, bodyJSON)
	if err != nil {
		return "", err
	}
	if !r.Exists() {
		return f.Default, nil
	}
	v, err := metaText(r)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(v), nil
}

// ErrNonFiniteNumber is returned (wrapped, naming the field) by Extract for
// metadata read from a number that is not finite as a 64-bit float: one
// that overflows it, such as 1e400, and (in a body not required to be
// JSON) NaN or Infinity. Whatever reads the event as JSON sees infinity,
// and 1e400 and 2e400 were one event id, "+Inf".
var ErrNonFiniteNumber = errors.New("metadata value is a number beyond the range of a 64-bit float (or NaN or Infinity)")

// metaText is the text of a scalar read as metadata. A number is taken as
// it is written: the JSON reader renders one with a fraction or an
// exponent as the nearest 64-bit float, so 1.0 and 1 were one event id.
// One that is not finite is refused (ErrNonFiniteNumber). Other values
// are rendered as before.
func metaText(r gjson.Result) (string, error) {
	if r.Type != gjson.Number {
		return r.String(), nil
	}
	// Raw is the number's token as the body has it. In a body not
	// required to be JSON it may be no number ("0x10", "1x"): the reader
	// rendered those "0", and the text is kept too.
	if f, _ := strconv.ParseFloat(r.Raw, 64); math.IsInf(f, 0) || math.IsNaN(f) {
		return "", ErrNonFiniteNumber
	}
	return r.Raw, nil
}

// lookupRaw returns the first of header, pointer and fallbacks that is
// present (pointer before header for a pointerFirst field, when the body is
// JSON); fallbacks are joined with ":", and count only when each is there
// and not empty. A string read from the body with an
// unpaired surrogate escape is ErrUnpairedSurrogate.
func lookupRaw(f Field, h http.Header, body []byte, bodyJSON func() bool) (gjson.Result, error) {
	pointer := func() (gjson.Result, bool, error) {
		r := f.path.peek(body) // aliases body: Extract copies what it keeps
		if !scalar(r) {
			return r, false, nil
		}
		return r, true, CheckMetaJSON(r.Str, r.Raw)
	}
	pointerFirst := f.pointerFirst && f.path.path != "" && bodyJSON()
	if pointerFirst {
		if r, ok, err := pointer(); ok || err != nil {
			return r, err
		}
	}
	for _, name := range [...]string{f.Header, f.headerAlt} {
		if name == "" {
			continue
		}
		if v := h.Get(name); v != "" {
			return gjson.Result{Type: gjson.String, Str: v}, nil
		}
	}
	if !pointerFirst {
		if r, ok, err := pointer(); ok || err != nil {
			return r, err
		}
	}
	if len(f.fallbacks) > 0 {
		// Escaped as a template's values are: ("a:b", "c") and ("a",
		// "b:c") are different events.
		var b strings.Builder
		for i, p := range f.fallbacks {
			r := p.peek(body) // copied into b below
			if !scalar(r) {
				return gjson.Result{}, nil
			}
			if err := CheckMetaJSON(r.Str, r.Raw); err != nil {
				return gjson.Result{}, err
			}
			v, err := metaText(r)
			if err != nil {
				return gjson.Result{}, err
			}
			// An empty part is no part, as an empty id is no id: with
			// it, every event lacking that value (say "seq":"") would
			// share the others' id, and all but one would be lost.
			if strings.TrimSpace(v) == "" {
				return gjson.Result{}, nil
			}
			if i == len(f.fallbacks)-1 {
				b.WriteString(v)
				break
			}
			writeKeyPart(&b, v, ":")
			b.WriteByte(':')
		}
		return gjson.Result{Type: gjson.String, Str: b.String()}, nil
	}
	return gjson.Result{}, nil
}

func scalar(r gjson.Result) bool {
	return r.Exists() && (r.Type == gjson.String || r.Type == gjson.Number || r.Type == gjson.True || r.Type == gjson.False)
}

// Pointer evaluates an RFC 6901 JSON pointer against body. For a pointer
// used on every event, compile it once with CompilePointer.
func Pointer(body []byte, ptr string) gjson.Result {
	return CompilePointer(ptr).Get(body)
}

// CompiledPointer is a JSON pointer translated once into the path the JSON
// reader takes: translating costs about as much as the lookup itself.
type CompiledPointer struct {
	path string // "" matches nothing
	// steps holds the pointer's unescaped reference tokens when the gjson
	// path cannot say what the pointer means: gjson reads "01" as array
	// index 1, where RFC 6901 allows no leading zero, and has no path for
	// a member named "". Such a pointer is evaluated one token at a time.
	steps []string
}

// CompilePointer translates ptr; an invalid pointer (not starting with "/")
// matches nothing, and so does "", the whole document, which is never a
// value Inlet reads.
func CompilePointer(ptr string) CompiledPointer {
	if ptr == "" || ptr[0] != '/' {
		return CompiledPointer{}
	}
	tokens := strings.Split(ptr[1:], "/")
	keys := make([]string, len(tokens))
	stepwise := false
	for i, t := range tokens {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		tokens[i] = t
		keys[i] = gjson.Escape(t)
		if t == "" || (allDigits(t) && !arrayIndex(t)) {
			stepwise = true
		}
	}
	if stepwise {
		return CompiledPointer{path: ptr, steps: tokens}
	}
	return CompiledPointer{path: strings.Join(keys, ".")}
}

// checkPointer refuses a JSON pointer from the sources file that
// CompilePointer would not read as written: one not starting with "/",
// and one with a "~" not followed by 0 or 1. RFC 6901 has only those two
// escapes; "/a~2" was read as the member "a~2", and a trailing "~" as
// itself.
func checkPointer(ptr string) error {
	if !strings.HasPrefix(ptr, "/") {
		return fmt.Errorf("JSON pointer %q must start with /", ptr)
	}
	for i := 0; i < len(ptr); i++ {
		if ptr[i] == '~' && (i+1 == len(ptr) || (ptr[i+1] != '0' && ptr[i+1] != '1')) {
			return fmt.Errorf("JSON pointer %q: ~ must be followed by 0 or 1 (~0 for ~, ~1 for /)", ptr)
		}
	}
	return nil
}

// arrayIndex reports whether t may index an array in RFC 6901: "0" or
// digits without a leading zero.
func arrayIndex(t string) bool { return allDigits(t) && (len(t) == 1 || t[0] != '0') }

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Get evaluates the pointer against body. The result owns its strings.
func (p CompiledPointer) Get(body []byte) gjson.Result {
	switch {
	case p.path == "":
		return gjson.Result{}
	case p.steps != nil:
		return p.walk(gjson.ParseBytes(body))
	}
	return gjson.GetBytes(body, p.path)
}

// peek is Get without copying: the result's strings alias body, so it is
// only for values used before body can change (copied into a key being
// built, parsed into a time). GetBytes copies every result, two
// allocations a lookup, and a processed event makes four or five lookups.
func (p CompiledPointer) peek(body []byte) gjson.Result {
	if p.path == "" || len(body) == 0 {
		return gjson.Result{}
	}
	doc := unsafe.String(unsafe.SliceData(body), len(body))
	if p.steps != nil {
		return p.walk(gjson.Parse(doc))
	}
	return gjson.Get(doc, p.path)
}

// walk evaluates the pointer's tokens one at a time, as RFC 6901 reads
// them: an array takes only "0" or a number without leading zeros, an
// object the member named exactly the token (the first, if repeated, as
// gjson's paths do).
func (p CompiledPointer) walk(r gjson.Result) gjson.Result {
	for _, t := range p.steps {
		switch {
		case r.IsArray():
			if !arrayIndex(t) {
				return gjson.Result{}
			}
			r = r.Get(t)
		case r.IsObject():
			var v gjson.Result
			r.ForEach(func(k, val gjson.Result) bool {
				if k.String() == t {
					v = val
					return false
				}
				return true
			})
			r = v
		default:
			return gjson.Result{}
		}
		if !r.Exists() {
			return r
		}
	}
	return r
}

// PeekTime is ParseTime of the pointer's value in body, without copying
// the value first.
func (p CompiledPointer) PeekTime(body []byte) *time.Time { return ParseTime(p.peek(body)) }

// ParseTime reads a business timestamp: a number is a Unix time in seconds,
// or in milliseconds, microseconds or nanoseconds when too large to be the
// unit before (see UnixTime); a string is RFC 3339 or such a number.
// Unparseable values give nil: ingest never rejects an event for its
// timestamp; the processor validates it against the contract.
func ParseTime(r gjson.Result) *time.Time {
	var t time.Time
	ok := false
	switch r.Type {
	case gjson.Number:
		t, ok = unixNumber(r.Raw, r.Float())
	case gjson.String:
		t, ok = ParseTimeText(r.Str)
	}
	if !ok {
		return nil
	}
	return &t
}

// ParseTimeText reads a timestamp written as text, as ParseTime reads a
// JSON string: RFC 3339 (a lower-case t or z too) or a Unix number (see
// UnixTime). The time is in UTC; ok is false for anything else, and for
// times before 1971 or after 9999.
func ParseTimeText(s string) (t time.Time, ok bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return unixNumber(s, f)
	}
	p, err := parseRFC3339(s)
	if err != nil {
		return time.Time{}, false
	}
	return inRange(p)
}

// parseRFC3339 is time.Parse with RFC 3339's own leniencies: a lower-case
// t and z, and a leap second (23:59:60, which Go refuses: the event went
// to the invalid topic). A leap second reads as the last nanosecond of the
// second before, so it stays after that second and before the next
// minute, as newest-wins must see it; the leap second's fraction is lost.
func parseRFC3339(s string) (time.Time, error) {
	s = strings.ToUpper(s)
	if len(s) > 10 && s[10] == ' ' {
		// RFC 3339 5.6 lets a space stand for the T; Python's
		// str(datetime) and SQL dumps write one.
		s = s[:10] + "T" + s[11:]
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err == nil || len(s) < 19 || s[16] != ':' || s[17:19] != "60" {
		return p, err
	}
	if p, err = time.Parse(time.RFC3339Nano, s[:17]+"59"+s[19:]); err != nil {
		return p, err
	}
	return p.Truncate(time.Second).Add(time.Second - time.Nanosecond), nil
}

// UnixTime reads a Unix time by its size: seconds up to 1e11 (year 5138),
// then milliseconds up to 1e14, microseconds up to 1e17, nanoseconds past
// that, since senders use all four and a second count that large is no
// real date. The time is in UTC; ok is false for NaN, infinities and times
// before 1971 or after 9999 (so 0, a common "no time", is none).
func UnixTime(f float64) (t time.Time, ok bool) {
	a := math.Abs(f)
	if math.IsNaN(f) || a >= 9e18 { // past int64 nanoseconds
		return time.Time{}, false
	}
	switch unixScale(a) {
	case 9:
		t = time.Unix(0, int64(f))
	case 6:
		t = time.UnixMicro(int64(f))
	case 3:
		t = time.UnixMilli(int64(f))
	default:
		sec := int64(f)
		t = time.Unix(sec, int64((f-float64(sec))*1e9))
	}
	return inRange(t)
}

// unixScale is the unit UnixTime takes a Unix time of magnitude a in, as
// decimal places of a second: 0 (seconds), 3, 6 or 9 (nanoseconds).
func unixScale(a float64) int {
	switch {
	case a > 1e17:
		return 9
	case a > 1e14:
		return 6
	case a > 1e11:
		return 3
	}
	return 0
}

// unixNumber is UnixTime of the number f, read exactly from text, how f
// is written, when that is decimal digits with an optional exponent: a
// float64 holds about 16 digits, and 1700000000123.8 and 1700000000123.2
// (milliseconds, as Python's time.time()*1000 writes them) both read as
// ...123 ms, so newest-wins took the older event as no older than the
// newer one and applied it over it; nanoseconds were off by up to 128.
// The same held for 1.7000000001238E12, as Java's Double.toString (and
// so Jackson) writes any double from 10^7 up.
func unixNumber(text string, f float64) (time.Time, bool) {
	if a := math.Abs(f); !math.IsNaN(f) && a < 9e18 {
		if plain, ok := plainDecimal(text); ok {
			if exact, ok := decimalUnix(plain, unixScale(a)); ok {
				return inRange(exact)
			}
		}
	}
	return UnixTime(f) // a hexadecimal float, underscores: as the float reads
}

// plainDecimal writes s, a decimal number with an optional exponent
// ("1.7000000001238E12"), as digits and a fraction without one
// ("1700000000123.8"); text without an exponent is returned as it is. ok
// is false for an exponent so large either way that the plain text would
// be long (the time is out of range anyway, or the digits past the
// nanosecond are cut).
func plainDecimal(s string) (string, bool) {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return s, true
	}
	exp, err := strconv.Atoi(s[i+1:])
	if err != nil || exp > 64 || exp < -64 {
		return "", false
	}
	sign, mant := "", s[:i]
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		sign, mant = mant[:1], mant[1:]
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if !allDigits(whole) || (frac != "" && !allDigits(frac)) {
		return "", false
	}
	digits, point := whole+frac, len(whole)+exp
	switch {
	case point <= 0:
		digits, point = strings.Repeat("0", 1-point)+digits, 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	return sign + digits[:point] + "." + digits[point:], true
}

// decimalUnix reads s, a Unix time in units of 10^-scale seconds written
// as an optional sign, digits and an optional fraction, exactly (below the
// nanosecond, cut off); ok is false for text of any other form. The
// caller has bounded its size.
func decimalUnix(s string, scale int) (time.Time, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if !allDigits(whole) || (frac != "" && !allDigits(frac)) {
		return time.Time{}, false
	}
	// The seconds are whole's digits but the last scale ones, which
	// lead the fraction of a second.
	whole = strings.Repeat("0", max(0, scale+1-len(whole))) + whole
	cut := len(whole) - scale
	sec, err := strconv.ParseInt(whole[:cut], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	frac = whole[cut:] + frac
	nsec, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec), true
}

// inRange is t in UTC when its year there is 1971 to 9999. The year is the
// instant's, not the offset's wall clock: "9999-12-31T23:30:00-01:00" is
// in year 10000, which RFC 3339 cannot write back.
func inRange(t time.Time) (time.Time, bool) {
	t = t.UTC()
	if t.Year() < 1971 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}
