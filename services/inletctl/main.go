// Command inletctl is the operator's CLI for Inlet.
//
//	inletctl tail <topic>          print records of any Inlet topic, Avro decoded
//	inletctl dlq|invalid <cmd>     ls, show, requeue, discard, depth
package main

import (
	"fmt"
	"os"
)

const usage = `inletctl: operate Inlet

Usage:
  inletctl [connection flags] tail [-n N] [-follow] <topic>
  inletctl trace [-admin-url URL] <correlation-id>
  inletctl [connection flags] dlq|invalid ls|show|requeue|discard|depth [flags] [id ...]

Commands:
  tail    print a topic's records as JSON lines: key, headers, partition,
          offset and the value decoded through the schema registry
          (example: inletctl tail inlet.raw)
  trace   one event's processing history by correlation id, as a timeline
          (example: inletctl trace 4bf92f3577b34da6a3ce929d0e0e4736)
  dlq     the dead-letter queue: a downstream kept failing
  invalid the validation-error queue: a payload no longer fits its contract
          (example: inletctl dlq ls --group; run "inletctl dlq" for more)

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
