// Package contract validates providers' webhook payloads against versioned
// Avro payload contracts, as a tolerant reader, and upcasts every version to
// one canonical schema that data teams read.
//
// # Layout
//
// A contract tree (schemas/contracts, embedded as contracts.FS) holds, for
// each provider payload type:
//
//	<provider>/<type>/manifest.yaml
//	<provider>/<type>/<version>.avsc          one per version; never edited once published
//	<provider>/<type>/fixtures/<version>/*.json  sample payloads (used by tests only)
//
// # Manifest
//
//	name: shopify/order          # must equal the directory
//	description: ...             # optional, free text
//	canonical: v2                # the version Read upcasts to
//	versions:                    # oldest first, v1, v2, ... (increasing)
//	  - name: v1
//	    sha256: 7feb...          # optional: hex SHA-256 of v1.avsc (CRLF read as LF); Load
//	                             # fails if the file changes. Pin every published version.
//	    source_versions: ["2024-07", "2024-10"]
//	  - name: v2
//	    sha256: 6c49...
//	    source_versions: ["2025-01", "2025-*"]
//	    compatibility: backward  # against the previous version: backward | forward | full | none
//	    reason: ...              # required with none
//	    notes: ...               # optional, free text
//	    retired: true            # optional: no source_versions route to it any more
//	                             # (a later version took them); it stays for its
//	                             # compatibility checks and fixtures
//
// source_versions are the envelope schema_version values routed to a
// version: exact strings, or path.Match globs ("2025-*", "*"). An exact
// string may appear in one version only; it beats any glob; among globs
// the newest matching version wins. Compatibility is declared by every
// version after the first, in schema-registry terms: backward means the new
// version can read data written with the previous one, forward the reverse,
// full both; none promises nothing and needs a reason. Load checks the
// declaration with hamba's avro.SchemaCompatibility, and also that every
// version resolves to the canonical one, whatever it declares.
//
// Unknown manifest keys are errors.
//
// # Schemas
//
// Each .avsc is a record listing only the fields a handler needs: the
// reader ignores the rest of the payload. Field names are the JSON member
// names. Use the provider's own representation: Stripe's Unix-seconds
// timestamps are long, GitHub's and Shopify's RFC 3339 strings are string,
// Shopify's decimal prices are string. A JSON payload cannot carry bytes,
// fixed or logical types, so those are rejected, and a union may have at
// most one branch per JSON kind (null, boolean, number, string, array,
// object) so that a value picks its branch without guessing. Make an
// optional field nullable with a null default (["null", T], "default": null)
// so later versions can drop it compatibly. A union whose first branch is a
// record, enum or map may only default to null (hamba/avro can neither
// write nor read such a default), so Load refuses any other. A string field
// with "inlet.json": "raw" takes any JSON value as its JSON text.
//
// Enums: an enum without a default is closed, and a symbol the contract
// does not list makes the payload invalid (the invalid topic, with the
// field's path), which is how a provider's new status is noticed; the fix is
// a new version listing the symbol (backward compatible). An enum with a
// default maps unknown symbols to it instead. The shipped status enums are
// closed: a silent "unknown" status would be written to state as if it were
// data.
//
// # Upcasting
//
// Read validates the payload against its version's schema, encodes the
// result with that schema, and decodes it with avro.Resolve(canonical,
// version) — Avro schema resolution, exactly what a data team's reader does
// with a registry's writer schema. Fields added since get their defaults,
// fields dropped are skipped, enum symbols map by name, and a renamed field
// is matched through the canonical field's "aliases" (hamba honours field
// aliases in both SchemaCompatibility.Compatible and Resolve). There is no
// per-version field mapping: a change resolution cannot express (a field
// moving to another record) needs its own contract or a canonical version
// that keeps both shapes.
package contract
