package channels

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/internal/testutil"
)

// receiver is a real HTTP server on loopback that checks each request's
// signature independently of Sign and answers with the next status of its
// script (the last one repeats).
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	statuses []int
	got      []received
	retryHdr string
}

type received struct {
	payload  WebhookPayload
	headers  http.Header
	sigOK    bool
	attempts int
}

func newReceiver(t *testing.T, secret string, statuses ...int) *receiver {
	r := &receiver{t: t, secret: secret, statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var p WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("receiver: body is not JSON: %v: %s", err, body)
	}
	n, _ := strconv.Atoi(req.Header.Get(HeaderAttempt))
	r.mu.Lock()
	r.got = append(r.got, received{payload: p, headers: req.Header.Clone(), sigOK: hmac.Equal([]byte(want), []byte(req.Header.Get(HeaderSignature))), attempts: n})
	status := r.statuses[min(len(r.got)-1, len(r.statuses)-1)]
	retry := r.retryHdr
	r.mu.Unlock()
	if retry != "" && status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retry)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("receiver says " + http.StatusText(status)))
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func webhookConfig(url, secret string, attempts int) config.WebhookChannelConfig {
	c := config.Config{Channels: config.ChannelsConfig{Webhooks: map[string]config.WebhookChannelConfig{"hook": {
		URL: url, Secret: secret, Retry: config.RetryConfig{MaxAttempts: attempts, InitialBackoffMs: 10, MaxBackoffMs: 40, MaxElapsedMs: 5000},
	}}}}
	return c.WithDefaults().Channels.Webhooks["hook"]
}

func TestWebhookSend(t *testing.T) {
	const secret = "s3cret-for-the-receiver"
	tests := []struct {
		name         string
		statuses     []int
		attempts     int
		wantErr      bool
		wantRequests int
		wantRetry    bool // DeliveryError.Retryable
		wantMsg      string
	}{
		{name: "first attempt", statuses: []int{200}, attempts: 3, wantRequests: 1},
		{name: "5xx then ok", statuses: []int{500, 503, 204}, attempts: 5, wantRequests: 3},
		{name: "429 then ok", statuses: []int{429, 200}, attempts: 3, wantRequests: 2},
		{name: "always 500", statuses: []int{500}, attempts: 3, wantErr: true, wantRequests: 3, wantRetry: true,
			wantMsg: "failed after 3 attempts"},
		{name: "4xx is not retried", statuses: []int{400}, attempts: 5, wantErr: true, wantRequests: 1,
			wantMsg: "rejected the message; it is not retried"},
		{name: "401 names the secret", statuses: []int{401}, attempts: 5, wantErr: true, wantRequests: 1,
			wantMsg: "same secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, secret, tt.statuses...)
			w := NewWebhook("hook", webhookConfig(rcv.srv.URL+"/in", secret, tt.attempts), nil, "test", testutil.Logger(t))
			d, err := w.Send(context.Background(), Message{To: "ops", Text: "deploy done", IdempotencyKey: "k-1"})
			got := rcv.requests()
			if len(got) != tt.wantRequests {
				t.Fatalf("receiver got %d requests, want %d", len(got), tt.wantRequests)
			}
			for i, r := range got {
				if !r.sigOK {
					t.Errorf("request %d: signature %q does not verify with the secret", i, r.headers.Get(HeaderSignature))
				}
				if r.attempts != i+1 {
					t.Errorf("request %d: %s = %d, want %d", i, HeaderAttempt, r.attempts, i+1)
				}
				if r.headers.Get(HeaderIdempotencyKey) != "k-1" || r.payload.IdempotencyKey != "k-1" {
					t.Errorf("request %d: idempotency key header %q payload %q, want k-1", i, r.headers.Get(HeaderIdempotencyKey), r.payload.IdempotencyKey)
				}
				if r.payload.To != "ops" || r.payload.Message != "deploy done" || r.payload.Channel != "hook" {
					t.Errorf("request %d: payload %+v", i, r.payload)
				}
				ts, err := strconv.ParseInt(r.headers.Get(HeaderTimestamp), 10, 64)
				if err != nil || ts != r.payload.TS/1000 {
					t.Errorf("request %d: timestamp header %q does not match payload ts %d", i, r.headers.Get(HeaderTimestamp), r.payload.TS)
				}
				if r.headers.Get(HeaderDelivery) != got[0].headers.Get(HeaderDelivery) {
					t.Errorf("request %d: delivery id changed between retries", i)
				}
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if d.Attempts != tt.wantRequests || d.Status != tt.statuses[len(tt.statuses)-1] || d.DeliveryID == "" {
					t.Errorf("delivery %+v: want %d attempts and status %d", d, tt.wantRequests, tt.statuses[len(tt.statuses)-1])
				}
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send error %v (%T), want *DeliveryError", err, err)
			}
			if de.Retryable != tt.wantRetry || de.Attempts != tt.wantRequests || !strings.Contains(de.Error(), tt.wantMsg) {
				t.Errorf("error %q retryable=%v attempts=%d; want retryable=%v attempts=%d containing %q", de, de.Retryable, de.Attempts, tt.wantRetry, tt.wantRequests, tt.wantMsg)
			}
			if !strings.Contains(de.Error(), "receiver says") {
				t.Errorf("error %q does not quote the receiver's answer", de)
			}
		})
	}
}

func TestWebhookRetryBoundedByElapsedTime(t *testing.T) {
	rcv := newReceiver(t, "x", http.StatusTooManyRequests)
	rcv.retryHdr = "30" // longer than the whole budget
	cfg := webhookConfig(rcv.srv.URL, "x", 10)
	cfg.Retry.MaxElapsedMs = 500
	w := NewWebhook("hook", cfg, nil, "test", testutil.Logger(t))
	start := time.Now()
	_, err := w.Send(context.Background(), Message{To: "ops", Text: "m", IdempotencyKey: "k"})
	if err == nil {
		t.Fatal("Send succeeded against a receiver that always answers 429")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Send took %s; the retry budget is 500ms and Retry-After (30s) exceeds it, so it should stop at once", took)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1 (no time left to honour Retry-After)", n)
	}
}

func TestWebhookUnreachableIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	w := NewWebhook("hook", webhookConfig(url, "x", 3), nil, "test", testutil.Logger(t))
	_, err := w.Send(context.Background(), Message{To: "ops", Text: "m", IdempotencyKey: "k"})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || !de.Retryable || de.Status != 0 {
		t.Fatalf("Send to a closed port: %v; want a retryable DeliveryError after 3 attempts", err)
	}
	if !strings.Contains(de.Error(), "check that the receiver is up") {
		t.Errorf("error %q does not say what to do", de)
	}
}

func TestWebhookLinked(t *testing.T) {
	env := map[string]string{"HOOK_SECRET": "from-env"}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		name   string
		mod    func(c *config.WebhookChannelConfig)
		linked bool
		reason string
	}{
		{"inline secret", func(c *config.WebhookChannelConfig) {}, true, ""},
		{"env secret", func(c *config.WebhookChannelConfig) { c.Secret, c.SecretEnv = "", "HOOK_SECRET" }, true, ""},
		{"env missing", func(c *config.WebhookChannelConfig) { c.Secret, c.SecretEnv = "", "NOPE" }, false, "NOPE is not set"},
		{"file missing", func(c *config.WebhookChannelConfig) { c.Secret, c.SecretFile = "", "/nonexistent/secret" }, false, "does not exist"},
		{"disabled", func(c *config.WebhookChannelConfig) { c.Disabled = true }, false, "disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := webhookConfig("http://127.0.0.1:1/", "inline", 1)
			tc.mod(&c)
			ok, why := NewWebhook("hook", c, getenv, "test", testutil.Logger(t)).Linked()
			if ok != tc.linked || !strings.Contains(why, tc.reason) {
				t.Errorf("Linked() = %v, %q; want %v containing %q", ok, why, tc.linked, tc.reason)
			}
		})
	}
}

func TestWebhookProbe(t *testing.T) {
	rcv := newReceiver(t, "x", 200)
	p := NewWebhook("hook", webhookConfig(rcv.srv.URL, "x", 1), nil, "test", testutil.Logger(t)).Probe(context.Background())
	if !p.OK || p.Status != http.StatusMethodNotAllowed {
		t.Errorf("probe of a live receiver: %+v, want ok with status 405", p)
	}
	if n := len(rcv.requests()); n != 0 {
		t.Errorf("probe delivered %d messages; it must not deliver", n)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	p = NewWebhook("hook", webhookConfig(url, "x", 1), nil, "test", testutil.Logger(t)).Probe(context.Background())
	if p.OK || !strings.Contains(p.Error, "unreachable") {
		t.Errorf("probe of a closed port: %+v, want not ok, unreachable", p)
	}
}
