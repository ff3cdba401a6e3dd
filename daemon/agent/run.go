package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Run statuses.
const (
	StatusAccepted = "accepted"
	StatusOK       = "ok"
	StatusError    = "error"
	StatusTimeout  = "timeout"
)

// Event streams.
const (
	StreamAssistant = "assistant"
	StreamTool      = "tool"
	StreamLifecycle = "lifecycle"
)

// flushInterval bounds how long streamed text stays only in memory before
// it is written to the session transcript.
const flushInterval = 500 * time.Millisecond

// Causes of a run's end other than its backend's own error.
var (
	errRunTimeout  = errors.New("run timed out")
	errRunCanceled = errors.New("run canceled")
	errShutdown    = errors.New("gateway shutting down")
)

// Event is the payload of an "agent" event.
type Event struct {
	RunID  string `json:"runId"`
	Seq    int64  `json:"seq"`
	Stream string `json:"stream"` // assistant, tool or lifecycle
	TS     int64  `json:"ts"`     // unix ms
	Data   any    `json:"data"`
}

// AssistantData is Event.Data on the assistant stream.
type AssistantData struct {
	Delta string `json:"delta"`
}

// LifecycleData is Event.Data on the lifecycle stream.
type LifecycleData struct {
	Phase     string          `json:"phase"` // start or end
	AgentID   string          `json:"agentId,omitempty"`
	StartedAt int64           `json:"startedAt,omitempty"`
	EndedAt   int64           `json:"endedAt,omitempty"`
	Status    string          `json:"status,omitempty"`
	Error     *protocol.Error `json:"error,omitempty"`
}

// Result is how a run ended.
type Result struct {
	RunID     string          `json:"runId"`
	Status    string          `json:"status"`  // ok, error or timeout
	Summary   string          `json:"summary"` // the assistant's text (partial when the run failed)
	StartedAt int64           `json:"startedAt,omitempty"`
	EndedAt   int64           `json:"endedAt,omitempty"`
	Error     *protocol.Error `json:"error,omitempty"`
	Usage     Usage           `json:"-"`
}

// Run is one agent run. Its methods are safe for concurrent use.
type Run struct {
	id, agentID, session string
	acceptedAt           time.Time
	keyed                bool // started with a caller's idempotency key: remembered after it ends

	m       *Manager
	be      backend
	in      input
	timeout time.Duration
	// chatConn is the connection that sent the run's message with
	// chat.send; it gets the run's chat events (set before Launch).
	chatConn string
	ctx      context.Context
	cancel   context.CancelCauseFunc

	launchOnce sync.Once

	mu        sync.Mutex
	seq       int64
	nextSub   int
	subs      map[int]func(Event)
	text      strings.Builder
	truncated bool
	dirty     bool
	startedAt time.Time
	result    *Result
	done      chan struct{}
}

// ID is the run's id (the idempotency key it was started with).
func (r *Run) ID() string { return r.id }

// AgentID is the agent the run uses.
func (r *Run) AgentID() string { return r.agentID }

// AcceptedAt is when the run was accepted.
func (r *Run) AcceptedAt() time.Time { return r.acceptedAt }

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Result returns the run's result once it has ended (nil before).
func (r *Run) Result() *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.result
}

// Wait waits for the run's end or ctx's.
func (r *Run) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-r.done:
		return r.Result(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Subscribe calls fn with every event of the run from now on, in order,
// until the run ends or the returned function is called. fn is called
// with the run's lock held: it must not block or call back into the run.
func (r *Run) Subscribe(fn func(Event)) (unsubscribe func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.result != nil {
		return func() {}
	}
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// Cancel ends the run with status error (it reports whether the run was
// still in progress).
func (r *Run) Cancel() bool {
	select {
	case <-r.done:
		return false
	default:
	}
	r.cancel(errRunCanceled)
	return true
}

// emitLocked sends an event to the subscribers; r.mu is held.
func (r *Run) emitLocked(stream string, data any) {
	r.seq++
	ev := Event{RunID: r.id, Seq: r.seq, Stream: stream, TS: time.Now().UnixMilli(), Data: data}
	for _, fn := range r.subs {
		fn(ev)
	}
}

// Delta implements sink.
func (r *Run) Delta(s string) error {
	if s == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	limit := r.m.limitsNow().maxMessage
	if r.text.Len()+len(s) > limit {
		s = cutUTF8(s, limit-r.text.Len())
		r.truncated = true
		if s != "" {
			r.text.WriteString(s)
			r.dirty = true
			r.emitLocked(StreamAssistant, AssistantData{Delta: s})
		}
		return errAnswerTooLong
	}
	r.text.WriteString(s)
	r.dirty = true
	r.emitLocked(StreamAssistant, AssistantData{Delta: s})
	return nil
}

var errAnswerTooLong = errors.New("the answer is longer than agents.maxMessageBytes (it was cut there; raise the limit for longer answers)")

// Tool implements sink.
func (r *Run) Tool(data map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emitLocked(StreamTool, data)
}

// launch starts the run's goroutine (once).
func (r *Run) launch() {
	r.launchOnce.Do(func() {
		r.relayChat()
		r.m.wg.Add(1)
		go r.execute()
	})
}

func (r *Run) execute() {
	defer r.m.wg.Done()
	ctx, cancelTimeout := context.WithTimeoutCause(r.ctx, r.timeout, errRunTimeout)
	defer cancelTimeout()
	defer r.cancel(nil)

	r.mu.Lock()
	r.startedAt = time.Now()
	r.emitLocked(StreamLifecycle, LifecycleData{Phase: "start", AgentID: r.agentID, StartedAt: r.startedAt.UnixMilli()})
	r.mu.Unlock()

	var ans *answer
	flushDone := make(chan struct{})
	stopFlush := make(chan struct{})
	if r.session != "" {
		ans = &answer{s: r.m.sessions, session: r.session, index: -1}
		go r.flusher(ans, stopFlush, flushDone)
	} else {
		close(flushDone)
	}

	usage, err := r.be.run(ctx, r.in, r)
	close(stopFlush)
	<-flushDone

	res := &Result{RunID: r.id, Status: StatusOK, Usage: usage}
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		cause := context.Cause(ctx)
		switch {
		case errors.Is(cause, errRunTimeout) || errors.Is(err, errRunTimeout):
			res.Status = StatusTimeout
			res.Error = &protocol.Error{Code: protocol.ErrAgentTimeout, Message: "agent run timed out after " + r.timeout.String() + " (pass a longer timeout, or raise the agent's timeoutMs)"}
		case errors.Is(cause, errRunCanceled):
			res.Status = StatusError
			res.Error = &protocol.Error{Code: protocol.ErrUnavailable, Message: "agent run canceled (agent.cancel)", Details: protocol.Details{"code": "RUN_CANCELED"}}
		case errors.Is(cause, errShutdown):
			res.Status = StatusError
			res.Error = &protocol.Error{Code: protocol.ErrUnavailable, Message: "agent run stopped: the gateway is shutting down (run it again after the restart)", Retryable: true}
		default:
			res.Status = StatusError
			res.Error = &protocol.Error{Code: protocol.ErrUnavailable, Message: err.Error()}
		}
	}
	r.mu.Lock()
	res.Summary = r.text.String()
	res.StartedAt = r.startedAt.UnixMilli()
	truncated := r.truncated
	r.mu.Unlock()
	res.EndedAt = time.Now().UnixMilli()

	if ans != nil {
		msg := Message{Role: "assistant", Text: res.Summary, TS: r.startedAt.UnixMilli(), RunID: r.id, AgentID: r.agentID, Status: res.Status, Truncated: truncated}
		if res.Error != nil {
			msg.Error = res.Error.Message
		}
		if werr := ans.write(msg, true, r.m.sessionLimits()); werr != nil {
			r.m.log.Error("agent run: cannot write the answer to the session transcript", "runId", r.id, "session", r.session, "err", werr)
		}
	}

	r.mu.Lock()
	r.emitLocked(StreamLifecycle, LifecycleData{Phase: "end", AgentID: r.agentID, StartedAt: res.StartedAt, EndedAt: res.EndedAt, Status: res.Status, Error: res.Error})
	r.result = res
	r.subs = nil
	r.mu.Unlock()
	close(r.done)
	r.m.finished(r)
	if res.Error != nil {
		r.m.log.Info("agent run ended", "runId", r.id, "agent", r.agentID, "status", res.Status, "err", res.Error.Message)
	} else {
		r.m.log.Debug("agent run ended", "runId", r.id, "agent", r.agentID, "status", res.Status)
	}
}

// flusher writes the partial answer to the transcript every flushInterval
// while text arrives.
func (r *Run) flusher(ans *answer, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		if !r.dirty {
			r.mu.Unlock()
			continue
		}
		r.dirty = false
		msg := Message{Role: "assistant", Text: r.text.String(), TS: r.startedAt.UnixMilli(), RunID: r.id, AgentID: r.agentID, Status: StatusStreaming, Truncated: r.truncated}
		r.mu.Unlock()
		if err := ans.write(msg, false, r.m.sessionLimits()); err != nil {
			r.m.log.Warn("agent run: cannot flush the partial answer to the session transcript", "runId", r.id, "session", r.session, "err", err)
		}
	}
}
