package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// Webhook request headers.
const (
	// HeaderSignature is "sha256=" + hex HMAC-SHA256 of the request body
	// with the channel's secret.
	HeaderSignature = "X-Gateway-Signature"
	// HeaderTimestamp is the unix time in seconds the body was signed at;
	// the body's "ts" field carries the same moment in milliseconds, so
	// the signature covers it.
	HeaderTimestamp = "X-Gateway-Timestamp"
	// HeaderIdempotencyKey is the send's idempotency key: the same on every
	// retry, so the receiver can drop duplicates.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderDelivery is the delivery id, the same on every retry.
	HeaderDelivery = "X-Gateway-Delivery"
	// HeaderAttempt counts the attempts of one delivery from 1.
	HeaderAttempt = "X-Gateway-Attempt"
)

// KindWebhook is the webhook channel's kind.
const KindWebhook = "webhook"

// WebhookPayload is the JSON body a webhook receiver gets.
type WebhookPayload struct {
	Type           string `json:"type"` // "message"
	DeliveryID     string `json:"deliveryId"`
	Channel        string `json:"channel"`
	To             string `json:"to"`
	Message        string `json:"message"`
	IdempotencyKey string `json:"idempotencyKey"`
	TS             int64  `json:"ts"` // unix ms when signed
}

// Webhook is a channel that POSTs signed JSON to a URL.
type Webhook struct {
	name      string
	cfg       config.WebhookChannelConfig
	secret    []byte
	secretErr error
	client    *http.Client
	userAgent string
	log       *slog.Logger
}

// NewWebhook builds the webhook channel name from its config (defaults
// filled in). The secret is resolved now; when it cannot be, the channel
// is not linked and says why.
func NewWebhook(name string, cfg config.WebhookChannelConfig, getenv func(string) string, version string, log *slog.Logger) *Webhook {
	secret, err := config.ResolveSecret("channels.webhooks."+name+".secret", cfg.Secret, cfg.SecretEnv, cfg.SecretFile, getenv)
	w := &Webhook{name: name, cfg: cfg, secret: []byte(secret), secretErr: err, userAgent: "gatewayd/" + version,
		log: log.With("channel", name)}
	w.client = &http.Client{
		Timeout: time.Duration(cfg.TimeoutMs) * time.Millisecond,
		// A signed POST is not replayed to wherever a redirect points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w
}

// Name implements Channel.
func (w *Webhook) Name() string { return w.name }

// Kind implements Channel.
func (w *Webhook) Kind() string { return KindWebhook }

// Linked implements Channel.
func (w *Webhook) Linked() (bool, string) {
	switch {
	case w.cfg.Disabled:
		return false, "disabled in config (remove channels.webhooks." + w.name + ".disabled to deliver)"
	case w.secretErr != nil:
		return false, w.secretErr.Error()
	}
	return true, ""
}

// Sign returns the signature header value for body: "sha256=" + hex
// HMAC-SHA256(secret, body).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send implements Channel: one POST per attempt, retried on network errors,
// 5xx and 429 with exponential backoff and jitter, within the attempt and
// total-time bounds of channels.webhooks.NAME.retry.
func (w *Webhook) Send(ctx context.Context, m Message) (channelproto.Delivery, error) {
	if ok, why := w.Linked(); !ok {
		return channelproto.Delivery{}, &DeliveryError{Channel: w.name, Msg: fmt.Sprintf("channel %s cannot deliver: %s", w.name, why)}
	}
	r := w.cfg.Retry
	start := time.Now()
	deadline := start.Add(time.Duration(r.MaxElapsedMs) * time.Millisecond)
	id := uuid.NewString()
	backoff := time.Duration(r.InitialBackoffMs) * time.Millisecond
	maxBackoff := time.Duration(r.MaxBackoffMs) * time.Millisecond
	var last attemptResult
	attempt := 0
	for attempt < max(r.MaxAttempts, 1) {
		attempt++
		actx, cancel := context.WithDeadline(ctx, deadline)
		last = w.attempt(actx, m, id, attempt)
		cancel()
		if last.err == nil {
			return channelproto.Delivery{Channel: w.name, Kind: KindWebhook, To: m.To, IdempotencyKey: m.IdempotencyKey, DeliveryID: id,
				Attempts: attempt, Status: last.status, DeliveredAt: time.Now().UnixMilli(),
				DurationMs: time.Since(start).Milliseconds()}, nil
		}
		if !last.retryable || attempt >= r.MaxAttempts || ctx.Err() != nil {
			break
		}
		wait := backoff/2 + rand.N(backoff/2+1) // "equal jitter": never less than half the backoff
		if last.retryAfter > wait {
			wait = last.retryAfter
		}
		if time.Now().Add(wait).After(deadline) {
			w.log.Warn("webhook delivery: no time left for another attempt", "attempt", attempt, "wait", wait, "err", last.err)
			break
		}
		w.log.Info("webhook delivery failed; retrying", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", last.err)
		if err := sleepCtx(ctx, wait); err != nil {
			break
		}
		backoff = min(backoff*2, maxBackoff)
	}
	return channelproto.Delivery{}, w.failure(ctx, last, attempt, time.Since(start))
}

func (w *Webhook) failure(ctx context.Context, last attemptResult, attempts int, took time.Duration) *DeliveryError {
	e := &DeliveryError{Channel: w.name, Attempts: attempts, Status: last.status, Retryable: last.retryable, Err: last.err}
	what := fmt.Sprintf("channel %s: delivery to %s failed after %d attempt%s over %s: %v", w.name, w.host(), attempts,
		plural(attempts), took.Round(time.Millisecond), last.err)
	switch {
	case ctx.Err() != nil:
		e.Msg = what + " (the gateway stopped the delivery; send again with the same idempotencyKey)"
	case last.retryable:
		e.Msg = what + " (check that the receiver is up; send again with the same idempotencyKey, or raise channels.webhooks." + w.name + ".retry)"
	case last.status >= 300 && last.status < 400:
		e.Msg = what + " (the receiver redirects; set channels.webhooks." + w.name + ".url to the final URL)"
	case last.status == http.StatusUnauthorized || last.status == http.StatusForbidden:
		e.Msg = what + " (the receiver refused the signature or credentials; check that it uses the same secret)"
	default:
		e.Msg = what + " (the receiver rejected the message; it is not retried)"
	}
	return e
}

// host names the receiver without its path and query (which may carry a
// token) for messages.
func (w *Webhook) host() string {
	u := w.cfg.URL
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if k := strings.LastIndex(rest, "@"); k >= 0 {
			rest = rest[k+1:]
		}
		return u[:i+3] + rest
	}
	return u
}

type attemptResult struct {
	status     int
	retryable  bool
	retryAfter time.Duration
	err        error
}

func (w *Webhook) attempt(ctx context.Context, m Message, id string, n int) attemptResult {
	now := time.Now()
	body, err := json.Marshal(WebhookPayload{Type: "message", DeliveryID: id, Channel: w.name, To: m.To, Message: m.Text,
		IdempotencyKey: m.IdempotencyKey, TS: now.UnixMilli()})
	if err != nil {
		return attemptResult{err: fmt.Errorf("encode payload: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("build request: %w (check channels.webhooks.%s.url)", err, w.name)}
	}
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set(HeaderSignature, Sign(w.secret, body))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderIdempotencyKey, m.IdempotencyKey)
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	resp, err := w.client.Do(req)
	if err != nil {
		return attemptResult{retryable: true, err: cause(err)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{status: resp.StatusCode}
	}
	res := attemptResult{status: resp.StatusCode,
		retryable: resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout}
	res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	msg := strings.TrimSpace(string(snippet))
	if msg != "" {
		res.err = fmt.Errorf("HTTP %s: %s", resp.Status, oneLine(msg))
	} else {
		res.err = fmt.Errorf("HTTP %s", resp.Status)
	}
	return res
}

// Probe implements Channel: a HEAD request to the URL. Any answer below 500
// means the receiver is reachable (many answer HEAD with 405).
func (w *Webhook) Probe(ctx context.Context) channelproto.Probe {
	if ok, why := w.Linked(); !ok {
		return channelproto.Probe{Error: "not linked: " + why}
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, w.cfg.URL, nil)
	if err != nil {
		return channelproto.Probe{Error: err.Error()}
	}
	req.Header.Set("User-Agent", w.userAgent)
	resp, err := w.client.Do(req)
	p := channelproto.Probe{LatencyMs: time.Since(start).Milliseconds()}
	if err != nil {
		p.Error = fmt.Sprintf("%s is unreachable: %v", w.host(), cause(err))
		return p
	}
	resp.Body.Close()
	p.Status = resp.StatusCode
	p.OK = resp.StatusCode < 500
	if !p.OK {
		p.Error = fmt.Sprintf("%s answered HTTP %s", w.host(), resp.Status)
	}
	return p
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// cause strips net/http's "Post URL:" wrapping (the URL may carry a token).
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
