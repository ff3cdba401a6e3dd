package main

import (
	"context"
	"errors"
	"flag"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// Exit codes of gatewayctl. They are documented in the root command's help
// (exitCodesHelp) and are stable: scripts rely on them.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitProblem: the gateway answered but reported a problem (an RPC
	// error, unhealthy, a rejected handshake that is not about auth), or a
	// local failure that is not a usage error.
	ExitProblem = 1
	// ExitUsage: the command line is wrong (unknown command or flag, bad
	// argument, invalid --params JSON).
	ExitUsage = 2
	// ExitUnreachable: no gateway answered at the target (nothing listening,
	// timeout, starting or restarting, connection lost).
	ExitUnreachable = 3
	// ExitAuth: the gateway refused the credentials.
	ExitAuth = 4
)

// exitCodesHelp is the section of the root LongHelp that lists the codes.
const exitCodesHelp = `EXIT STATUS
  0  ok
  1  the gateway answered but reported a problem (RPC error, unhealthy)
  2  usage error (unknown command or flag, bad argument)
  3  gateway unreachable (not running, wrong port, starting, restarting)
  4  authentication failed (wrong or missing token or password)
  78 config validate: the config file is invalid (EX_CONFIG)`

// exitError carries an explicit exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage error (exit 2).
func usageErr(err error) error { return &exitError{code: ExitUsage, err: err} }

// withCode marks err with an exit code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// exitCode maps an error from a command to gatewayctl's exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var de *client.DialError
	if errors.As(err, &de) {
		switch {
		case de.IsAuth():
			return ExitAuth
		case de.IsUnreachable():
			return ExitUnreachable
		case de.Server != nil:
			return ExitProblem
		}
		return ExitUnreachable // no proper answer from the target
	}
	var ce *client.CallError
	if errors.As(err, &ce) {
		return ExitProblem
	}
	if errors.Is(err, client.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
		return ExitUnreachable
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitProblem
}

// silentError carries an exit code for a failure the command has already
// reported in its output (status prints the failed probe itself).
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// silent wraps err so run sets the exit code without printing it again.
func silent(err error) error { return &silentError{err: err} }

func isSilent(err error) bool {
	var se *silentError
	return errors.As(err, &se)
}
