// Package contracts holds Inlet's payload contracts: for each provider
// payload type, <provider>/<type>/manifest.yaml, one <version>.avsc per
// contract version (a published version is never edited) and
// fixtures/<version>/*.json sample payloads. Load them with
// github.com/inletdev/inlet/pkg/contract.Load(contracts.FS).
package contracts

import "embed"

// FS is the contract tree rooted at this directory.
//
//go:embed */*/manifest.yaml */*/*.avsc */*/fixtures
var FS embed.FS
