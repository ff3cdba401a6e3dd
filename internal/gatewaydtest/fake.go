package gatewaydtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"

	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// AcceptFake plays the gateway's side of one connection's handshake with
// fixed frames, for tests of clients against framing or answers the real
// gateway never produces: it answers the WebSocket upgrade on conn, sends
// connect.challenge, reads the client's connect and answers hello-ok
// (protocol 4; policy.maxPayload when maxPayload > 0). It returns the
// reader to go on with: it may hold bytes the client sent after connect.
func AcceptFake(conn net.Conn, maxPayload int64) (*bufio.Reader, error) {
	if _, err := ws.Upgrade(conn); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	r := bufio.NewReader(conn)
	if err := wsutil.WriteServerText(conn, []byte(`{"type":"event","event":"connect.challenge","payload":{"nonce":"fake-nonce","ts":1}}`)); err != nil {
		return nil, err
	}
	req, err := wsutil.ReadClientText(struct {
		io.Reader
		io.Writer
	}{r, conn})
	if err != nil {
		return nil, fmt.Errorf("read connect: %w", err)
	}
	var f protocol.RequestFrame
	if err := json.Unmarshal(req, &f); err != nil || f.Method != "connect" {
		return nil, fmt.Errorf("first request %q is not connect (%v)", req, err)
	}
	policy := ""
	if maxPayload > 0 {
		policy = fmt.Sprintf(`,"policy":{"maxPayload":%d}`, maxPayload)
	}
	hello := fmt.Sprintf(`{"type":"res","id":%q,"ok":true,"payload":{"type":"hello-ok","protocol":4,"server":{"version":"fake","connId":"fake-conn"}%s}}`, f.ID, policy)
	if err := wsutil.WriteServerText(conn, []byte(hello)); err != nil {
		return nil, err
	}
	return r, nil
}
