// Command darwinprobe is a build probe: darwin_build_test.go cross-compiles
// it for macOS with CGO_ENABLED=0 to prove that platform/listen links
// launch_activate_socket from libSystem without cgo. It is never shipped.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/gatewayd/gatewayd/platform/listen"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	set, err := listen.Acquire([]listen.Spec{{Kind: listen.KindLaunchd, Name: "Listeners"}}, nil, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(set.Source(), set.Addrs(), listen.ActivationAvailable())
	_ = set.Close()
}
