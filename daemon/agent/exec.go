package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/platform/procs"
)

// execWaitDelay bounds how long output pipes may stay open after the
// command's process group was killed or the command exited.
const execWaitDelay = 2 * time.Second

// stderrTail is how much of a failed command's standard error the run's
// error message keeps.
const stderrTail = 2048

// execBackend runs a configured command per message: the message on its
// standard input, standard output streamed as deltas. Every process the
// command starts ends with the run (procs.CommandContext), when it exits,
// times out or is canceled.
type execBackend struct {
	id  string
	cfg config.ExecBackendConfig
}

func (e *execBackend) run(ctx context.Context, in input, out sink) (Usage, error) {
	// Every process the command starts ends with the run (setsid and
	// background children too), within its configured limits.
	cmd := procs.CommandContext(ctx, e.cfg.Limits.Procs(), e.cfg.Command, e.cfg.Args...)
	cmd.Dir = e.cfg.Dir
	cmd.Env = append(baseEnv(), e.cfg.Env...)
	cmd.Env = append(cmd.Env, "GATEWAY_AGENT_ID="+in.AgentID, "GATEWAY_RUN_ID="+in.RunID, "GATEWAY_SESSION_KEY="+in.SessionKey)
	cmd.Stdin = strings.NewReader(in.Message)
	w := &deltaWriter{out: out}
	tail := &tailBuffer{max: stderrTail}
	cmd.Stdout, cmd.Stderr = w, tail
	cmd.WaitDelay = execWaitDelay
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return Usage{}, context.Cause(ctx)
		}
		return Usage{}, fmt.Errorf("exec agent %s: start %s: %w (check agents.list.%s.exec.command)", e.id, e.cfg.Command, err, e.id)
	}
	err := cmd.Wait()
	// Nothing of the run outlives it (a no-op where the supervisor has
	// ended it already).
	_ = procs.Stop(cmd)
	if ctx.Err() != nil {
		return Usage{}, context.Cause(ctx)
	}
	if w.err != nil {
		return Usage{}, w.err
	}
	w.flush()
	if w.err != nil {
		return Usage{}, w.err
	}
	if err != nil {
		var ee *exec.ExitError
		msg := err.Error()
		if errors.As(err, &ee) {
			msg = ee.ProcessState.String()
		}
		if t := strings.TrimSpace(tail.String()); t != "" {
			return Usage{}, fmt.Errorf("exec agent %s: %s %s: %s", e.id, e.cfg.Command, msg, t)
		}
		return Usage{}, fmt.Errorf("exec agent %s: %s %s (no output on stderr)", e.id, e.cfg.Command, msg)
	}
	return Usage{PromptTokens: estimateTokens(in.Message), CompletionTokens: estimateTokens(w.all.String())}, nil
}

// deltaWriter turns the command's output into deltas, holding back an
// incomplete UTF-8 sequence at the end of a write.
type deltaWriter struct {
	out     sink
	pending []byte
	all     strings.Builder
	err     error
}

func (w *deltaWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	buf := append(w.pending, p...)
	cut := len(buf)
	// Back up over an incomplete trailing character (at most 3 bytes).
	for i := 1; i <= 3 && i <= len(buf); i++ {
		c := buf[len(buf)-i]
		if c&0xC0 == 0x80 {
			continue
		}
		if c >= 0xC0 && !utf8.FullRune(buf[len(buf)-i:]) {
			cut = len(buf) - i
		}
		break
	}
	w.pending = append([]byte(nil), buf[cut:]...)
	if cut > 0 {
		s := strings.ToValidUTF8(string(buf[:cut]), "\uFFFD")
		w.all.WriteString(s)
		if err := w.out.Delta(s); err != nil {
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

func (w *deltaWriter) flush() {
	if len(w.pending) > 0 && w.err == nil {
		s := strings.ToValidUTF8(string(w.pending), "\uFFFD")
		w.pending = nil
		w.all.WriteString(s)
		w.err = w.out.Delta(s)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(string(t.b), "\uFFFD")
}

// baseEnv is the minimal environment an exec backend starts from: never
// the gateway's own (it may hold GATEWAY_TOKEN, API keys or other
// secrets); what a command needs beyond this comes from its configured env.
func baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path}
	for _, k := range []string{"HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
