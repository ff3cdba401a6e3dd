package openai_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkChatCompletionsEcho measures non-streaming
// /v1/chat/completions requests per second against the echo agent (16
// keep-alive clients in parallel; the client runs on the same machine).
func BenchmarkChatCompletionsEcho(b *testing.B) {
	g := startGateway(b, b.TempDir(), `{"http":{"endpoints":{"chatCompletions":{"enabled":true}}},"agents":{"maxConcurrent":1000}}`)
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	const body = `{"model":"gateway","messages":[{"role":"user","content":"ping from the benchmark"}]}`
	auth := "Bearer " + g.Token
	url := g.HTTPURL + "/v1/chat/completions"
	b.SetParallelism(8) // 8 x GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
