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
	}
	for _, tt := range tests {
		if got := renderLogLine(tt.in); got != tt.want {
			t.Errorf("renderLogLine(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
