// Package schemas embeds Inlet's own Avro schemas. A published version file is
// never edited; a change is a new version file that stays compatible with the
// one before it (checked by tests).
package schemas

import "embed"

// Envelope holds envelope/v<N>.avsc, the raw topic's value schema versions.
//
//go:embed envelope/*.avsc
var Envelope embed.FS
