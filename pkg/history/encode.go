package history

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendEntry appends e's JSON encoding, the bytes json.Marshal writes, to
// b. Without reflection when every string is plain printable ASCII that
// encoding/json copies verbatim and the time has a four-digit year and a
// zone offset under a day: the
// processor writes three entries per event, and json.Marshal was 6% of its
// CPU. Anything else goes through json.Marshal (FuzzAppendEntry keeps the
// two the same).
func appendEntry(b []byte, e *Entry) []byte {
	if !plainEntry(e) {
		out, err := json.Marshal(e)
		if err != nil { // a time json cannot write: drop it, keep the stage
			c := *e
			c.At = time.Time{}
			out, _ = json.Marshal(&c)
		}
		return append(b, out...)
	}
	b = append(b, `{"at":"`...)
	b = e.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","stage":"`...)
	b = append(b, e.Stage...)
	b = append(b, '"')
	b = appendField(b, `,"outcome":"`, e.Outcome)
	b = appendField(b, `,"source":"`, e.Source)
	b = appendField(b, `,"event_type":"`, e.EventType)
	b = appendField(b, `,"event_id":"`, e.EventID)
	if e.Undecodable {
		b = append(b, `,"undecodable":true`...)
	}
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	b = appendField(b, `,"where":"`, e.Where)
	b = appendField(b, `,"error":"`, e.Error)
	b = appendField(b, `,"note":"`, e.Note)
	return append(b, '}')
}

// appendField appends a plain string field (name holds its opening
// quote), or nothing when it is empty (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return append(append(append(b, name...), value...), '"')
}

// plainEntry reports whether appendEntry may write e without encoding/json.
func plainEntry(e *Entry) bool {
	if y := e.At.Year(); y < 1000 || y > 9999 {
		return false
	}
	// json refuses a zone offset of a day or more; AppendFormat writes it.
	if _, off := e.At.Zone(); off <= -24*3600 || off >= 24*3600 {
		return false
	}
	for _, s := range [...]string{e.Stage, e.Outcome, e.Source, e.EventType, e.EventID, e.Where, e.Error, e.Note} {
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
				return false
			}
		}
	}
	return true
}
