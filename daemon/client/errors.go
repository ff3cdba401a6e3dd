package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/daemon/protocol"
)

// Stages of Dial, as reported in DialError.Stage.
const (
	StageConnect   = "connect"   // TCP connect and WebSocket upgrade
	StageChallenge = "challenge" // waiting for connect.challenge
	StageHandshake = "handshake" // connect request → hello-ok
)

// DialError is why Dial failed, written for operators: Error names the
// gateway, what went wrong and, in Fix, what to do about it.
type DialError struct {
	URL         string          // the gateway URL as dialed
	Stage       string          // StageConnect, StageChallenge or StageHandshake
	CloseCode   int             // the WebSocket close code, when the server closed (0 otherwise)
	CloseReason string          // the close reason sent with CloseCode
	HTTPStatus  int             // the HTTP status when the WebSocket upgrade was refused
	Server      *protocol.Error // the server's error response to connect, when there was one
	Err         error           // the underlying error (nil when Server says it all)
	// Fix is the remedy printed in parentheses after the message; Dial
	// fills in a generic one and callers may replace or extend it (gatewayctl
	// adds where this host's token file is).
	Fix string

	timeout            time.Duration
	minProto, maxProto int
}

// Unwrap returns Err, or Server when there is no Err.
func (e *DialError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	if e.Server != nil {
		return e.Server
	}
	return nil
}

// DetailCode returns the server error's details.code (e.g.
// "AUTH_TOKEN_MISMATCH"), or "".
func (e *DialError) DetailCode() string {
	if e.Server == nil {
		return ""
	}
	return e.Server.DetailCode()
}

// IsAuth reports whether the gateway refused the credentials (shared
// secret, rate limit, or device proof).
func (e *DialError) IsAuth() bool {
	d := e.DetailCode()
	if strings.HasPrefix(d, "AUTH_") || strings.HasPrefix(d, "DEVICE_AUTH_") {
		return true
	}
	if e.Server != nil && strings.HasPrefix(e.Server.Message, "unauthorized") {
		return true
	}
	return e.CloseCode == protocol.ClosePolicyViolation && strings.Contains(strings.ToLower(e.CloseReason), "unauthorized")
}

// IsUnreachable reports whether no gateway could be reached at all (nothing
// listening, no route, the upgrade timed out), or the gateway said it is not
// ready yet (close 1013) or restarting (1012): cases where retrying later
// may help.
func (e *DialError) IsUnreachable() bool {
	if e.Stage == StageConnect && (e.HTTPStatus == 0 || e.HTTPStatus == http.StatusServiceUnavailable) {
		return true
	}
	return e.CloseCode == protocol.CloseTryAgainLater || e.CloseCode == protocol.CloseServiceRestart
}

// Error renders the operator-grade message, e.g.
// "gateway not reachable at ws://127.0.0.1:18789: connection refused (is
// gatewayd running? check with: gatewayctl status)".
func (e *DialError) Error() string {
	msg := e.message()
	fix := e.Fix
	if fix == "" {
		fix = e.defaultFix()
	}
	if fix != "" {
		msg += " (" + fix + ")"
	}
	return msg
}

func (e *DialError) message() string {
	closed := ""
	if e.CloseCode > 0 {
		closed = fmt.Sprintf("closed %d", e.CloseCode)
		if e.CloseReason != "" {
			closed += " " + e.CloseReason
		}
	}
	switch {
	case e.Stage == StageConnect && e.HTTPStatus != 0:
		return fmt.Sprintf("gateway at %s refused the WebSocket upgrade: HTTP %d", e.URL, e.HTTPStatus)
	case e.Stage == StageConnect:
		return fmt.Sprintf("gateway not reachable at %s: %s", e.URL, connectCause(e.Err, e.timeout))
	case e.Server != nil:
		s := fmt.Sprintf("gateway at %s rejected the connection: %s", e.URL, e.Server.Message)
		if d := e.DetailCode(); d != "" {
			s += " [" + d + "]"
		}
		if e.DetailCode() == protocol.DetailProtocolMismatch {
			s += fmt.Sprintf("; this client speaks protocol %d..%d", e.minProto, e.maxProto)
		}
		return s
	case closed != "":
		return fmt.Sprintf("gateway at %s %s during the %s", e.URL, closed, stageWords(e.Stage))
	case errors.Is(e.Err, context.DeadlineExceeded) && e.Stage == StageChallenge:
		return fmt.Sprintf("gateway at %s sent no connect.challenge within %s", e.URL, e.timeout)
	case errors.Is(e.Err, context.DeadlineExceeded):
		return fmt.Sprintf("gateway at %s did not answer connect within %s", e.URL, e.timeout)
	case errors.Is(e.Err, errConnClosed):
		return fmt.Sprintf("gateway at %s dropped the connection during the %s", e.URL, stageWords(e.Stage))
	}
	return fmt.Sprintf("gateway at %s: %s failed: %v", e.URL, stageWords(e.Stage), e.Err)
}

func (e *DialError) defaultFix() string {
	switch d := e.DetailCode(); {
	case d == protocol.DetailAuthPasswordMismatch:
		return "pass --password or set GATEWAY_PASSWORD"
	case d == protocol.DetailAuthRateLimited:
		wait := "a few minutes"
		if e.Server.RetryAfterMs > 0 {
			wait = (time.Duration(e.Server.RetryAfterMs) * time.Millisecond).Round(time.Second).String()
		}
		return "too many failed attempts from this address; wait " + wait + " and retry with the right secret"
	case strings.HasPrefix(d, "DEVICE_AUTH_"):
		return "check the device key and this host's clock"
	case d == protocol.DetailProtocolMismatch:
		return "upgrade the older of the two sides"
	case e.IsAuth():
		return "pass --token or set GATEWAY_TOKEN"
	}
	switch e.CloseCode {
	case protocol.CloseTryAgainLater:
		return "the gateway is starting; try again in a moment"
	case protocol.CloseServiceRestart:
		return "the gateway is restarting; try again in a moment"
	}
	switch {
	case e.Stage == StageConnect && e.HTTPStatus == http.StatusServiceUnavailable:
		return "the gateway is stopping or restarting; try again in a moment"
	case e.Stage == StageConnect && e.HTTPStatus != 0:
		return "is this a gatewayd or OpenClaw gateway? check --url"
	case e.Stage == StageConnect:
		return "is gatewayd running? check with: gatewayctl status"
	case e.Stage == StageChallenge:
		return "is this a protocol v4 gateway? check --url"
	case errors.Is(e.Err, context.DeadlineExceeded):
		return "the gateway may be overloaded; retry, or raise --timeout"
	}
	return ""
}

func stageWords(stage string) string {
	switch stage {
	case StageChallenge:
		return "wait for connect.challenge"
	case StageHandshake:
		return "connect handshake"
	}
	return "connect"
}

// connectCause names the usual causes plainly.
func connectCause(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case err == nil:
		return "unknown error"
	}
	return err.Error()
}
