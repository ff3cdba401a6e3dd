package gatewaydtest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/gobwas/ws"
)

// RawUpgrade opens a WebSocket to addr by hand, for tests that must
// misbehave where a client library would not: it sends the upgrade
// request with Host host (addr when ""), checks the 101, and reads the
// gateway's connect.challenge. The returned reader is positioned after
// the challenge; the connection has a 15 s deadline the caller may reset.
func RawUpgrade(addr, host string) (net.Conn, *bufio.Reader, error) {
	if host == "" {
		host = addr
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("gatewaytest-key!"))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host, key)
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 101 ") {
		c.Close()
		return nil, nil, fmt.Errorf("websocket upgrade: %q %v", strings.TrimSpace(line), err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("websocket upgrade headers: %w", err)
		}
		if l == "\r\n" {
			break
		}
	}
	if _, _, err := ReadFrame(br, 1<<20); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("connect.challenge: %w", err)
	}
	return c, br, nil
}

// ReadFrame reads one WebSocket frame from r (unmasking it), refusing a
// payload over limit bytes.
func ReadFrame(r io.Reader, limit int64) (ws.Header, []byte, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return h, nil, err
	}
	if h.Length > limit {
		return h, nil, fmt.Errorf("frame of %d bytes, over the %d expected", h.Length, limit)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return h, nil, err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return h, p, nil
}
