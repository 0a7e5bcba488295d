// Command inletctl is the operator's CLI for Inlet.
//
//	inletctl tail <topic>          print records of any Inlet topic, Avro decoded
//	inletctl dlq|invalid <cmd>     ls, show, requeue, discard, depth
//	inletctl replay                re-process a time range of the raw topic
//	inletctl reconcile             compare a sender's event log with Inlet
//	inletctl schemas check         will this build's schemas fit the registry?
package main

import (
	"fmt"
	"os"
)

const usage = `inletctl: operate Inlet

Usage:
  inletctl [connection flags] tail [-n N|all] [-follow] <topic>
  inletctl trace [-admin-url URL] <correlation-id>
  inletctl [connection flags] trace --event <event-id> --source S [--since 30d|T|all] [--timeout 2m] [-admin-url URL]
  inletctl [connection flags] dlq|invalid ls|show|requeue|discard|depth [flags] [id ...]
  inletctl [connection flags] replay --source S [--from T1] [--to T2] [--mode fill|rebuild] [--id NAME]
  inletctl [connection flags] replay ls [id ...] | replay rm [--dry-run] [--force --reason R] <id>
  inletctl [connection flags] reconcile --source S (--sender-log FILE | --stripe) [--since T] [--until T]
  inletctl [connection flags] schemas check [--sources FILE] [--output table|json]

Commands:
  tail    print a topic's records as JSON lines: key, headers, partition,
          offset and the value decoded through the schema registry
          (example: inletctl tail inlet.raw)
  trace   one event's processing history by correlation id, as a timeline
          (example: inletctl trace 4bf92f3577b34da6a3ce929d0e0e4736), or by
          the sender's event id (example: inletctl trace --event evt_1 --source stripe),
          searching the raw topic from --since (default 30d back; all: the
          whole topic) for at most --timeout (default 2m)
  dlq     the dead-letter queue: a downstream kept failing
  invalid the validation-error queue: a payload no longer fits its contract
          (example: inletctl dlq ls --group; run "inletctl dlq" for more)
  replay  re-read a source's raw records of a time range and process them
          again: fill gaps (dedup respected) or rebuild entity state
          (example: inletctl replay --source shop --from 2025-01-31T00:00:00Z
          --to 2025-02-01T00:00:00Z --mode fill; run "inletctl replay -h")
  reconcile compare the sender's event log with what was processed; exit 4
          on gaps (example: inletctl reconcile --source stripe
          --sender-log events.ndjson --since 2025-01-31T00:00:00Z)
  schemas check  before a deploy: the sources file against this build's
          contracts and fixtures, and each schema this build registers
          against the registry's subject (registered, new, or would a new
          version pass its compatibility level); registers nothing; exit 4
          on a problem (example: inletctl schemas check --sources sources.yaml)

Connection flags (or their INLET_* environment variables):
  -kafka-brokers, -schema-registry-url, ...; run "inletctl -h" for all.
`

func main() {
	code, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inletctl:", err)
	}
	os.Exit(code)
}
