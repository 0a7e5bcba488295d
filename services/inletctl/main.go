// Command inletctl is the operator's CLI for Inlet.
//
//	inletctl tail <topic>     print records of any Inlet topic, Avro decoded
package main

import (
	"fmt"
	"os"
)

const usage = `inletctl: operate Inlet

Usage:
  inletctl [connection flags] tail [-n N] [-follow] <topic>

Commands:
  tail    print a topic's records as JSON lines: key, headers, partition,
          offset and the value decoded through the schema registry
          (example: inletctl tail inlet.raw)

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
