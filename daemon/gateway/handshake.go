package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gobwas/ws"
	"github.com/google/uuid"
)

// runConn drives one WebSocket's handshake on the HTTP handler's
// goroutine. It reports whether the connection is established; the caller
// then runs serveConn on a fresh goroutine, so the handshake's deep stack
// (JSON Schema validation, device signatures) and the HTTP request are not
// held for the connection's whole life: an idle connection costs a small
// stack.
func (s *Server) runConn(c *wsConn) bool {
	c.t.setReadLimit(protocol.PreHelloMaxFrame)
	nonce := uuid.NewString()
	chal, _ := json.Marshal(protocol.ChallengePayload{Nonce: nonce, TS: time.Now().UnixMilli()})
	c.sendInline(eventFrame("connect.challenge", chal, 0, nil))

	var helloDone atomic.Bool
	timer := time.AfterFunc(protocol.HandshakeTimeoutS*time.Second, func() {
		if !helloDone.Load() {
			c.close(protocol.CloseNormal, "handshake timeout")
		}
	})
	defer timer.Stop()

	buf := readBufs.Get().(*bytes.Buffer)
	defer putReadBuf(buf)
	typ, data, err := c.t.readMessage(buf, c.pong, nil)
	if err != nil {
		s.log.Debug("connection closed before connect", "remote", c.remote, "err", err)
		c.close(protocol.CloseNormal, "")
		return false
	}
	if typ != ws.OpText {
		c.close(protocol.ClosePolicyViolation, "invalid request frame: binary frames are not part of the protocol")
		return false
	}
	f, err := protocol.DecodeRequest(data)
	if err != nil {
		// Before the handshake completes an invalid frame closes the socket.
		c.close(protocol.ClosePolicyViolation, "invalid request frame: "+err.Error())
		return false
	}
	if !s.handshake(c, f, nonce) {
		return false
	}
	helloDone.Store(true)
	timer.Stop()
	c.t.setReadLimit(protocol.MaxPayload)
	return true
}

// pong answers a ping (from the reader goroutine).
func (c *wsConn) pong(payload []byte) { c.sendControl(controlFrame(ws.OpPong, payload)) }

// serveConn is an established connection's life after hello-ok: observers,
// the read loop, then deregistration.
func (s *Server) serveConn(c *wsConn) {
	ctx := context.Background()
	defer s.hub.remove(c)
	for _, o := range s.ext.observers {
		defer o.Disconnected(c.peer())
	}
	for _, o := range s.ext.observers {
		o.Connected(c.peer())
	}
	s.readLoop(ctx, c)
}

// handshake validates connect, authenticates, sends hello-ok and registers
// the connection. On failure it sends the error and closes; it returns
// false.
func (s *Server) handshake(c *wsConn, f *protocol.RequestFrame, nonce string) bool {
	reject := func(perr *protocol.Error, code int, reason string) bool {
		c.respond(f.ID, nil, perr)
		c.closeAfterFlush(code, reason, time.Second)
		return false
	}
	if f.Method != "connect" {
		return reject(protocol.Errorf(protocol.ErrInvalidRequest, "invalid handshake: first request must be connect"),
			protocol.ClosePolicyViolation, "invalid handshake")
	}
	if err := protocol.ValidateParams("ConnectParams", f.Params); err != nil {
		return reject(protocol.InvalidParams("connect", err), protocol.ClosePolicyViolation, "invalid connect params")
	}
	var p protocol.ConnectParams
	if err := protocol.DecodeParams(f.Params, &p); err != nil {
		return reject(protocol.InvalidParams("connect", err), protocol.ClosePolicyViolation, "invalid connect params")
	}
	role := p.Role
	if role == "" {
		role = protocol.RoleOperator
	}
	compat := role == protocol.RoleNode || p.Client.Mode == "probe"
	inRange := func(v int) bool { return p.MinProtocol <= v && v <= p.MaxProtocol }
	if !inRange(protocol.Version) && !(compat && inRange(protocol.MinCompatVersion)) {
		perr := &protocol.Error{Code: protocol.ErrInvalidRequest, Message: "protocol mismatch",
			Details: protocol.Details{"code": protocol.DetailProtocolMismatch, "clientMinProtocol": p.MinProtocol,
				"clientMaxProtocol": p.MaxProtocol, "expectedProtocol": protocol.Version}}
		return reject(perr, protocol.CloseProtocolError, "protocol mismatch")
	}
	st := s.settings.Load()
	ip := hostOf(c.remote)
	now := time.Now()
	var token, password string
	if p.Auth != nil {
		token, password = p.Auth.Token, p.Auth.Password
	}
	var perr *protocol.Error
	ok, retry, limited := s.authenticate(kindGateway, c.remote, &st.Auth, func() bool {
		perr = checkSecret(&st.Auth, token, password, false)
		return perr == nil || s.deviceAuthenticated(&p, role, nonce, now)
	})
	if !ok {
		if limited {
			perr = rateLimited(retry)
		}
		s.log.Warn("connect rejected", "remote", c.remote, "client", p.Client.ID, "reason", perr.DetailCode())
		return reject(perr, protocol.ClosePolicyViolation, perr.Message)
	}
	if p.Device != nil {
		if perr := protocol.VerifyDevice(&p, role, nonce, now); perr != nil {
			s.limiter.fail(kindDevice, c.remote, now, &st.Auth)
			s.log.Warn("connect rejected", "remote", c.remote, "client", p.Client.ID, "reason", perr.DetailCode())
			return reject(perr, protocol.ClosePolicyViolation, perr.Message)
		}
	}
	c.params, c.role, c.scopes = &p, role, grantScopes(role, p.Scopes)
	for _, a := range s.ext.admitters {
		if perr := a.Admit(c.peer()); perr != nil {
			s.log.Warn("connect refused", "remote", c.remote, "client", p.Client.ID, "role", role, "reason", perr.Message)
			return reject(perr, protocol.ClosePolicyViolation, perr.Message)
		}
	}
	c.presence = "conn:" + c.id
	if p.Client.InstanceID != "" {
		c.presence = "instance:" + p.Client.InstanceID
	}
	// As in the OpenClaw family: one-off CLI connections (client.mode
	// "cli") are not presence entries, so they do not spam the instances
	// list (and a crowd of them does not cost O(n²) presence traffic).
	c.listed = p.Client.Mode != "cli"
	entry := protocol.PresenceEntry{TS: now.UnixMilli(), Host: p.Client.DisplayName, IP: ip, Version: p.Client.Version,
		Platform: p.Client.Platform, DeviceFamily: p.Client.DeviceFamily, ModelIdentifier: p.Client.ModelIdentifier,
		Mode: p.Client.Mode, Reason: "connect", InstanceID: p.Client.InstanceID}
	// Presence first, so the snapshot includes this client; events reach
	// it only after hello-ok (attach), with seq from 1.
	s.hub.add(c, entry)
	sv := s.hub.stateVersion()
	hello := protocol.HelloOK{
		Type: "hello-ok", Protocol: protocol.Version,
		Server:   protocol.ServerInfo{Version: s.o.Version, ConnID: c.id, BootID: s.o.BootID},
		Features: protocol.Features{Methods: s.names, Events: s.ext.events, Capabilities: s.ext.caps},
		Snapshot: protocol.Snapshot{Presence: s.hub.snapshotFor(c.scopes), Health: s.healthFor(c.scopes), StateVersion: *sv,
			UptimeMs: time.Since(s.o.StartedAt).Milliseconds(), ConfigPath: s.o.ConfigPath, StateDir: s.o.StateDir, AuthMode: st.Auth.Mode},
		Auth:   protocol.HelloAuth{Role: role, Scopes: c.scopes, DeviceToken: c.deviceToken},
		Policy: protocol.HelloPolicy{MaxPayload: protocol.MaxPayload, MaxBufferedBytes: protocol.MaxBufferedBytes, TickIntervalMs: st.TickInterval.Milliseconds()},
	}
	// hello-ok must be the first frame after the challenge, yet the client
	// must not miss events (e.g. shutdown) that come right after it: hold
	// the writer, attach, write hello-ok, then release queued events.
	c.mu.Lock()
	c.writing = true
	c.mu.Unlock()
	s.hub.attach(c)
	one := [1][]byte{responseFrame(f.ID, &hello, nil)}
	if err := c.t.writeFrames(nil, one[:]); err != nil {
		c.writeFailed(err)
		return false
	}
	c.flush()
	s.log.Info("client connected", "conn", c.id, "client", p.Client.ID, "mode", p.Client.Mode, "version", p.Client.Version, "remote", c.remote, "role", role)
	return true
}

var eventNames = []string{"connect.challenge", "tick", "presence", "health", "shutdown"}

// readLoop reads frames after hello and dispatches them. While further
// requests are already buffered, responses are held back (corked) and
// written together once the buffer is drained: pipelined requests cost one
// write, not one each.
func (s *Server) readLoop(ctx context.Context, c *wsConn) {
	defer func() {
		s.log.Debug("client disconnected", "conn", c.id, "remote", c.remote)
	}()
	defer c.uncork()
	for {
		buf := readBufs.Get().(*bytes.Buffer)
		typ, data, err := c.t.readMessage(buf, c.pong, c.uncork)
		if err != nil {
			putReadBuf(buf)
			var pc *peerClosed
			if errors.As(err, &pc) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, errFrameTooBig) {
				return
			}
			s.log.Debug("read failed", "conn", c.id, "err", err)
			c.close(protocol.CloseNormal, "")
			return
		}
		c.lastRead.Store(time.Now().UnixMilli())
		if c.t.hasBufferedFrame() {
			c.cork()
		}
		if typ != ws.OpText {
			putReadBuf(buf)
			c.respond("invalid", nil, protocol.InvalidFrame(errors.New("binary frames are not part of the protocol")).Error)
			continue
		}
		f, err := protocol.DecodeRequest(data)
		putReadBuf(buf) // f holds copies
		if err != nil {
			inv := protocol.InvalidFrame(err)
			c.respond(inv.ID, nil, inv.Error)
			continue
		}
		s.dispatch(ctx, c, f)
	}
}

// readBufs recycles frame buffers between reads: an idle connection holds
// none, a busy one does not allocate per frame. Decoded frames copy what
// they keep (json.RawMessage params are copied), so the buffer is free
// again once the frame is dispatched.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putReadBuf returns a buffer to the pool unless a huge frame grew it.
func putReadBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		b.Reset()
		readBufs.Put(b)
	}
}

func (s *Server) dispatch(ctx context.Context, c *wsConn, f *protocol.RequestFrame) {
	if f.Method == "connect" {
		c.respond(f.ID, nil, protocol.Errorf(protocol.ErrInvalidRequest, "invalid request: already connected"))
		return
	}
	m, ok := s.methods[f.Method]
	if !ok {
		c.respond(f.ID, nil, protocol.UnknownMethod(f.Method))
		return
	}
	if !hasScope(c.scopes, m.scope) {
		c.respond(f.ID, nil, protocol.MissingScope(m.scope, []string{m.scope}))
		return
	}
	if s.stopping.Load() {
		c.respond(f.ID, nil, &protocol.Error{Code: protocol.ErrUnavailable, Message: "gateway is shutting down", Retryable: true})
		return
	}
	if m.async {
		if c.async.Add(1) > MaxAsyncPerConn {
			c.async.Add(-1)
			c.respond(f.ID, nil, &protocol.Error{Code: protocol.ErrUnavailable, Retryable: true,
				Message: fmt.Sprintf("too many concurrent requests on this connection (at most %d); wait for some to finish", MaxAsyncPerConn)})
			return
		}
		s.handlers.Add(1)
		go func() {
			defer s.handlers.Done()
			defer c.async.Add(-1)
			s.call(ctx, c, m, f)
		}()
		return
	}
	s.call(ctx, c, m, f)
}

func (s *Server) call(ctx context.Context, c *wsConn, m method, f *protocol.RequestFrame) {
	var payload any
	var perr *protocol.Error
	if m.ext != nil {
		payload, perr = m.ext(ctx, c, f.ID, f.Params)
	} else {
		payload, perr = m.fn(ctx, c, f.Params)
	}
	if perr != nil {
		c.respond(f.ID, nil, perr)
		return
	}
	c.respond(f.ID, payload, nil)
}

// paramsError wraps a params decoding/validation error for method.
func paramsError(method string, err error) *protocol.Error {
	return protocol.InvalidParams(method, err)
}
