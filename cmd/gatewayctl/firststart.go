package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// The first connection after an install starts gatewayd through its socket
// unit, and gatewayd writes its token file during that start, before it
// serves. So a client that found no token file sends no secret and is
// refused AUTH_TOKEN_MISSING by the very gateway it just started; by then
// the token is on disk. afterFirstStart re-reads it and connects once more.

// Bounds of the wait for the token file after a first start.
const (
	firstStartWait = 3 * time.Second
	firstStartPoll = 25 * time.Millisecond
)

// firstStart reports whether err may be the refusal of a gateway that was
// just started by this connection: no secret was configured anywhere (so
// none was sent) and the gateway answered AUTH_TOKEN_MISSING. Whether its
// token file has appeared since is afterFirstStart's to find out.
func firstStart(t *target, err error) bool {
	return tokenNotWrittenYet(t, err) && t.TokenFile != ""
}

// afterFirstStart waits (at most firstStartWait) for the token file the
// starting gateway writes, records it in t, and dials once more. When the
// file does not appear, the error says where it was looked for.
func (a *app) afterFirstStart(ctx context.Context, t *target, dial func() (*client.Conn, error), first error) (*client.Conn, error) {
	deadline := time.Now().Add(firstStartWait)
	for {
		probe := *t
		probe.SecretNote = ""
		a.resolveSecret(&probe)
		if probe.Token != "" || probe.Password != "" {
			t.Token, t.Password, t.SecretSource, t.SecretNote, t.TokenFile = probe.Token, probe.Password, probe.SecretSource, probe.SecretNote, probe.TokenFile
			if a.g.verbose {
				fmt.Fprintf(a.stderr, "gatewayctl: the gateway started by this connection wrote %s; connecting again with it\n", t.TokenFile)
			}
			return dial()
		}
		if _, err := os.Stat(probe.TokenFile); err == nil || !errors.Is(err, fs.ErrNotExist) {
			// It exists but cannot be read: waiting does not help.
			t.SecretNote = probe.SecretNote
			return nil, first
		}
		if time.Now().Add(firstStartPoll).After(deadline) {
			return nil, fmt.Errorf("the gateway at %s answered but its token file %s did not appear within %s (a gateway with another state directory? check `gatewayctl status`, or pass --token): %w",
				t.URL, t.TokenFile, firstStartWait, first)
		}
		timer := time.NewTimer(firstStartPoll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, first
		case <-timer.C:
		}
	}
}
