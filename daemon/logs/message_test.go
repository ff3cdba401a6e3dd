package logs

import "testing"

// TestWithMessage: logs.tail adds OpenClaw's message key to slog records
// and leaves everything else as it is.
func TestWithMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"time":"t","level":"INFO","msg":"gateway ready","pid":7}`, `{"time":"t","level":"INFO","msg":"gateway ready","pid":7,"message":"gateway ready"}`},
		{`{"level":"WARN","msg":"say \"hi\"\n"}`, `{"level":"WARN","msg":"say \"hi\"\n","message":"say \"hi\"\n"}`},
		{`{"msg":"a","message":"b"}`, `{"msg":"a","message":"b"}`}, // has one already
		{`{"level":"INFO"}`, `{"level":"INFO"}`},                   // no msg
		{`not json "msg"`, `not json "msg"`},
		{`{"msg": broken}`, `{"msg": broken}`},
	} {
		if got := WithMessage(tc.in); got != tc.want {
			t.Errorf("WithMessage(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
