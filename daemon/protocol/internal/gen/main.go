// Command gen regenerates daemon/protocol/schema/protocol.schema.json from
// the Go protocol types. Run it through `make protocol`.
package main

import (
	"fmt"
	"os"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

func main() {
	out := protocol.SchemaFile
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	b, err := protocol.GenerateSchema()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", out)
}
