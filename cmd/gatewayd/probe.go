package main

import (
	"context"
	"encoding/json"

	"github.com/coder/websocket"
)

// probeChallenge dials ws://addr/ and reports whether the first frame is a
// connect.challenge event (i.e. another gateway of this protocol).
func probeChallenge(ctx context.Context, addr string) bool {
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		return false
	}
	defer c.CloseNow()
	_, data, err := c.Read(ctx)
	if err != nil {
		return false
	}
	var ev struct {
		Type  string `json:"type"`
		Event string `json:"event"`
	}
	return json.Unmarshal(data, &ev) == nil && ev.Type == "event" && ev.Event == "connect.challenge"
}
