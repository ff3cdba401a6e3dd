package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// TwoStage is a request the gateway answers twice on one id (the "agent"
// method): CallTwoStage returns the first response, Final waits for the
// second.
type TwoStage struct {
	c      *Conn
	id     string
	method string
	final  chan *inFrame
}

// CallTwoStage sends a request and waits for its first response. When
// that is an error (*CallError) there is no second one. Otherwise the
// returned TwoStage's Final waits for the second response.
func (c *Conn) CallTwoStage(ctx context.Context, method string, params any) (json.RawMessage, *TwoStage, error) {
	raw, err := marshalParams(method, params)
	if err != nil {
		return nil, nil, err
	}
	id := c.newID()
	first := make(chan *inFrame, 1)
	ts := &TwoStage{c: c, id: id, method: method, final: make(chan *inFrame, 1)}
	got := 0
	p := &pending{method: method, deliver: func(f *inFrame) bool {
		got++ // the read loop is the only caller
		if got == 1 {
			first <- f
			return !f.OK // a failed first stage is the only answer
		}
		ts.final <- f
		return true
	}}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, c.closedError(method)
	}
	c.pending[id] = p
	c.mu.Unlock()

	frame, err := json.Marshal(protocol.RequestFrame{Type: protocol.TypeReq, ID: id, Method: method, Params: raw})
	if err != nil {
		c.forget(id)
		return nil, nil, fmt.Errorf("encode %s request: %w", method, err)
	}
	if err := ctx.Err(); err != nil {
		c.forget(id)
		return nil, nil, fmt.Errorf("%s: not sent: %w", method, err)
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	err = c.ws.Write(wctx, websocket.MessageText, frame)
	wcancel()
	if err != nil {
		c.forget(id)
		select {
		case <-c.done:
			return nil, nil, c.closedError(method)
		default:
		}
		return nil, nil, fmt.Errorf("%s: send request: %w", method, err)
	}
	var f *inFrame
	select {
	case f = <-first:
	case <-c.done:
		select {
		case f = <-first:
		default:
			return nil, nil, c.closedError(method)
		}
	case <-ctx.Done():
		c.forget(id)
		return nil, nil, fmt.Errorf("%s: no response: %w", method, ctx.Err())
	}
	payload, err := frameResult(method, f)
	if err != nil {
		return nil, nil, err
	}
	return payload, ts, nil
}

// Final waits for the second response. When ctx ends first the request is
// forgotten (a later answer is dropped).
func (t *TwoStage) Final(ctx context.Context) (json.RawMessage, error) {
	select {
	case f := <-t.final:
		return frameResult(t.method, f)
	case <-t.c.done:
		select {
		case f := <-t.final:
			return frameResult(t.method, f)
		default:
		}
		return nil, t.c.closedError(t.method)
	case <-ctx.Done():
		t.c.forget(t.id)
		return nil, fmt.Errorf("%s: no final response: %w", t.method, ctx.Err())
	}
}

func frameResult(method string, f *inFrame) (json.RawMessage, error) {
	if !f.OK {
		e := f.Error
		if e == nil {
			e = &protocol.Error{Code: protocol.ErrInvalidRequest, Message: "request failed without an error object"}
		}
		return nil, &CallError{Method: method, Err: e}
	}
	return f.Payload, nil
}

// AgentParams are the params of the "agent" method.
type AgentParams struct {
	Message        string `json:"message"`
	IdempotencyKey string `json:"idempotencyKey"`
	AgentID        string `json:"agentId,omitempty"`
	SessionKey     string `json:"sessionKey,omitempty"`
	Timeout        int    `json:"timeout,omitempty"` // seconds; 0 = the agent's default
}

// AgentAccepted is the first response of "agent".
type AgentAccepted struct {
	RunID      string `json:"runId"`
	Status     string `json:"status"`
	AcceptedAt int64  `json:"acceptedAt"`
}

// AgentResult is the final response of "agent" (and agent.wait's answer).
type AgentResult struct {
	RunID     string          `json:"runId"`
	Status    string          `json:"status"` // ok, error or timeout
	Summary   string          `json:"summary"`
	StartedAt int64           `json:"startedAt,omitempty"`
	EndedAt   int64           `json:"endedAt,omitempty"`
	Error     *protocol.Error `json:"error,omitempty"`
}

// AgentEvent is the payload of an "agent" event.
type AgentEvent struct {
	RunID  string          `json:"runId"`
	Seq    int64           `json:"seq"`
	Stream string          `json:"stream"` // assistant, tool or lifecycle
	TS     int64           `json:"ts"`
	Data   json.RawMessage `json:"data"`
}

// Delta returns data.delta of an assistant event ("" otherwise).
func (e *AgentEvent) Delta() string {
	if e.Stream != "assistant" {
		return ""
	}
	var d struct {
		Delta string `json:"delta"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Delta
}

// Agent runs an agent: it sends "agent", calls onAccepted (when not nil)
// with the first response, onEvent with each "agent" event of the run as
// it arrives, and returns the final response.
//
// Agent reads the connection's Events channel while it runs and drops the
// events that are not this run's: use it on a connection of its own (or
// demultiplex Events yourself with CallTwoStage).
func (c *Conn) Agent(ctx context.Context, p AgentParams, onAccepted func(AgentAccepted), onEvent func(AgentEvent)) (*AgentResult, error) {
	raw, ts, err := c.CallTwoStage(ctx, "agent", p)
	if err != nil {
		return nil, err
	}
	var acc AgentAccepted
	if err := json.Unmarshal(raw, &acc); err != nil {
		return nil, fmt.Errorf("decode agent accepted payload: %w", err)
	}
	if onAccepted != nil {
		onAccepted(acc)
	}
	handle := func(ev Event) {
		if ev.Name != "agent" || onEvent == nil {
			return
		}
		var ae AgentEvent
		if json.Unmarshal(ev.Payload, &ae) == nil && ae.RunID == acc.RunID {
			onEvent(ae)
		}
	}
	finalCh := make(chan struct{})
	var final json.RawMessage
	var ferr error
	go func() {
		final, ferr = ts.Final(ctx)
		close(finalCh)
	}()
	events := c.Events()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			handle(ev)
		case <-finalCh:
			// Events the read loop queued before the final response.
			for drained := false; !drained; {
				select {
				case ev, ok := <-events:
					if !ok {
						drained = true
						break
					}
					handle(ev)
				default:
					drained = true
				}
			}
			if ferr != nil {
				return nil, ferr
			}
			var res AgentResult
			if err := json.Unmarshal(final, &res); err != nil {
				return nil, fmt.Errorf("decode agent final payload: %w", err)
			}
			return &res, nil
		}
	}
}
