// Command gatewayctl is the operator CLI of gatewayd: health, status, RPC
// calls, log following, benchmarks, version and shell completion, over the
// Gateway WebSocket protocol v4 (as client "cli", so it works with any
// gateway of that protocol).
//
// The command tree is built by newRootCommand; exit codes are in
// exitcodes.go. Service-manager features (install, start, status's service
// section) are added by platform-specific code; where the host has no
// supported service manager, those parts report that and the protocol
// commands work as usual.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs gatewayctl until the command finishes or SIGINT / SIGTERM
// arrives, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// runContext parses args, runs the selected command until it finishes or
// ctx ends, prints any error on stderr and returns the exit code.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	if err := root.Parse(args); err != nil {
		var ne ffcli.NoExecError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return ExitOK // the usage was printed
		case errors.As(err, &ne):
			fmt.Fprintln(stderr, ffcli.DefaultUsageFunc(ne.Command))
			fmt.Fprintf(stderr, "gatewayctl: %s needs a subcommand\n", ne.Command.Name)
			return ExitUsage
		}
		// The flag package already printed the problem and the usage.
		return ExitUsage
	}
	err := root.Run(ctx)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil && !isSilent(err) {
		fmt.Fprintf(stderr, "gatewayctl: %v\n", err)
	}
	return exitCode(err)
}
