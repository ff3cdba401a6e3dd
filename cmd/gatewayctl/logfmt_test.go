package main

import (
	"testing"
	"time"
)

func TestRenderLogLine(t *testing.T) {
	time.Local = time.UTC
	tests := []struct {
		in, want string
	}{
		{`{"time":"2026-03-01T10:20:30.123456789Z","level":"INFO","msg":"listening","addr":"127.0.0.1:18789","source":"bind"}`,
			`2026-03-01T10:20:30.123Z INFO  listening addr=127.0.0.1:18789 source=bind`},
		{`{"time":"2026-03-01T10:20:30Z","level":"WARN","msg":"connect rejected","reason":"AUTH_TOKEN_MISMATCH","n":3,"ok":false,"x":null}`,
			`2026-03-01T10:20:30.000Z WARN  connect rejected reason=AUTH_TOKEN_MISMATCH n=3 ok=false x=null`},
		{`{"time":"2026-03-01T10:20:30Z","level":"ERROR","msg":"m","text":"two words","empty":"","q":"a\"b"}`,
			`2026-03-01T10:20:30.000Z ERROR m text="two words" empty="" q="a\"b"`},
		{`{"time":"2026-03-01T10:20:30Z","level":"INFO","msg":"grouped","req":{"id":7,"peer":{"ip":"::1"}},"tags":["a", "b"]}`,
			`2026-03-01T10:20:30.000Z INFO  grouped req.id=7 req.peer.ip=::1 tags=["a","b"]`},
		{`{"level":"DEBUG","msg":"no time"}`, `DEBUG no time`},
		{`not json at all`, `not json at all`},
		{`["an","array"]`, `["an","array"]`},
		{`{"msg":"trailing"} junk`, `{"msg":"trailing"} junk`},
		// gatewayd records that say message (OpenClaw's key) instead of msg.
		{`{"time":"2026-03-01T10:20:30Z","level":"INFO","message":"ready","port":1}`, `2026-03-01T10:20:30.000Z INFO  ready port=1`},
		// OpenClaw's records (tslog), as its logs.tail returns them.
		{`{"0":"{\"subsystem\":\"gateway/ws\"}","1":"⇄ res ✓ node.event 1120ms","_meta":{"runtime":"node","date":"2026-12-06T16:58:01.515Z","logLevelId":3,"logLevelName":"INFO","name":"{\"subsystem\":\"gateway/ws\"}","parentNames":["openclaw"]},"time":"2026-12-06T16:58:01.515+00:00","hostname":"vm","message":"⇄ res ✓ node.event 1120ms","traceId":"7f8d","spanId":"f71f","traceFlags":"01"}`,
			`2026-12-06T16:58:01.515Z INFO  ⇄ res ✓ node.event 1120ms subsystem=gateway/ws`},
		{`{"0":"{\"subsystem\":\"sqlite/transaction\"}","1":{"async":false,"elapsedMs":169.9,"operation":"state.write"},"2":"slow SQLite coordinator lock wait","_meta":{"date":"2026-12-06T16:58:04.538Z","logLevelName":"WARN","name":"{\"subsystem\":\"sqlite/transaction\"}"},"time":"2026-12-06T16:58:04.538+00:00","message":"slow SQLite coordinator lock wait"}`,
			`2026-12-06T16:58:04.538Z WARN  slow SQLite coordinator lock wait subsystem=sqlite/transaction async=false elapsedMs=169.9 operation=state.write`},
		// Without "message" or "time": the positional strings, _meta.date.
		{`{"0":"gateway starting","1":"on port","2":18789,"_meta":{"date":"2026-12-06T16:00:00.000Z","logLevelName":"debug"}}`,
			`2026-12-06T16:00:00.000Z DEBUG gateway starting on port 18789`},
	}
	for _, tt := range tests {
		if got := renderLogLine(tt.in); got != tt.want {
			t.Errorf("renderLogLine(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
