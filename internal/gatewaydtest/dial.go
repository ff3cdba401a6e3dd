package gatewaydtest

import (
	"context"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/client"
)

// Dial connects a protocol client with o (a gateway started here, or an
// in-process server), bounded by 10 s; a failure fails tb. The connection
// is closed when tb ends.
func Dial(tb testing.TB, o client.Options) *client.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, o)
	if err != nil {
		tb.Fatalf("Dial %s: %v", o.URL, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
