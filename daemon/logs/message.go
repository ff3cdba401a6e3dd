package logs

import (
	"encoding/json"
	"strings"
)

// WithMessage adds OpenClaw's "message" key to a JSON log record that has
// only slog's "msg" (OpenClaw's CLI and Control UI read "message"; the
// file keeps slog's format). The key is appended last, with msg's value,
// so the order of the other keys stays. Other lines are returned as they
// are. logs.tail answers with it, and gatewayctl logs --json prints the
// lines it reads from the file itself the same way, so its output does
// not depend on where it read a line.
func WithMessage(line string) string {
	if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") || !strings.Contains(line, `"msg"`) {
		return line
	}
	var rec struct {
		Msg     json.RawMessage `json:"msg"`
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg == nil || rec.Message != nil {
		return line
	}
	return line[:len(line)-1] + `,"message":` + string(rec.Msg) + "}"
}
