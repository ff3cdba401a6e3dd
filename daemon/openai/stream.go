package openai

import (
	"context"
	"net/http"
	"sync"

	"github.com/gatewayd/gatewayd/daemon/agent"
	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// deltaQueue collects a run's assistant deltas from the run's goroutine
// (which must not block) for the HTTP handler's goroutine.
type deltaQueue struct {
	mu     sync.Mutex
	deltas []string
	notify chan struct{}
}

func newDeltaQueue() *deltaQueue { return &deltaQueue{notify: make(chan struct{}, 1)} }

func (q *deltaQueue) push(ev agent.Event) {
	d, ok := ev.Data.(agent.AssistantData)
	if !ok || d.Delta == "" {
		return
	}
	q.mu.Lock()
	q.deltas = append(q.deltas, d.Delta)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *deltaQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.deltas
	q.deltas = nil
	return d
}

// runOpts is what a request asks of a run.
type runOpts struct {
	req     agent.Request
	stream  bool
	onStart func(runID string) // called once the run is accepted (streaming)
}

// execute starts the run and, when streaming, hands each delta to onDelta
// as it arrives (on the handler's goroutine). It returns the result, or
// nil when the client went away: the run is then canceled (what it
// produced so far stays in its session transcript, if it has one).
func (a *API) execute(ctx context.Context, o runOpts, onDelta func(string)) (*agent.Result, *protocol.Error) {
	var q *deltaQueue
	var sub func(agent.Event)
	if o.stream {
		q = newDeltaQueue()
		sub = q.push
	}
	run, _, perr := a.m.Start(o.req, sub)
	if perr != nil {
		return nil, perr
	}
	if o.onStart != nil {
		o.onStart(run.ID())
	}
	if !o.stream {
		select {
		case <-run.Done():
			return run.Result(), nil
		case <-ctx.Done():
			run.Cancel()
			return nil, nil
		}
	}
	for {
		select {
		case <-q.notify:
			for _, d := range q.take() {
				onDelta(d)
			}
		case <-run.Done():
			for _, d := range q.take() {
				onDelta(d)
			}
			return run.Result(), nil
		case <-ctx.Done():
			run.Cancel()
			return nil, nil
		}
	}
}

// sseWriter writes server-sent events and flushes each.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// event writes "event: NAME\n" (when name is not "") and "data: DATA\n\n".
func (s *sseWriter) event(name string, data []byte) {
	buf := make([]byte, 0, len(data)+len(name)+16)
	if name != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, name...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, '\n', '\n')
	_, _ = s.w.Write(buf)
	_ = s.rc.Flush()
}
