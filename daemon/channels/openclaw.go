package channels

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// What OpenClaw's clients read from the channels: channels.status's
// OpenClaw fields, the channels in health, and message.action's send. A
// gatewayd channel is one OpenClaw channel with a single account,
// "default".

// defaultAccount is the account id of every gatewayd channel.
const defaultAccount = "default"

// fillOpenClaw sets OpenClaw's fields from Channels.
func fillOpenClaw(p *channelproto.StatusPayload) {
	p.OpenClawStatus = channelproto.OpenClawStatus{ChannelOrder: []string{}, ChannelLabels: map[string]string{},
		ChannelAccounts: map[string][]channelproto.AccountStatus{}, ChannelDefaultAccountID: map[string]string{}, ChannelMeta: []map[string]string{}}
	for _, c := range p.Channels {
		a := channelproto.AccountStatus{AccountID: defaultAccount, Name: c.Name, Enabled: true, Configured: c.Configured, Linked: c.Linked,
			Running: c.Linked, Mode: c.Kind, Probe: c.Probe}
		switch {
		case c.LastError != nil && (c.LastDelivery == nil || c.LastError.TS > c.LastDelivery.TS):
			a.LastError = &c.LastError.Message
		case !c.Linked && c.Reason != "":
			a.LastError = &c.Reason
		}
		if c.LastDelivery != nil {
			a.LastOutboundAt = &c.LastDelivery.TS
		}
		if c.Probe != nil {
			a.LastProbeAt = &p.TS
		}
		label := c.Name + " (" + c.Kind + ")"
		p.ChannelOrder = append(p.ChannelOrder, c.Name)
		p.ChannelLabels[c.Name] = label
		p.ChannelAccounts[c.Name] = []channelproto.AccountStatus{a}
		p.ChannelDefaultAccountID[c.Name] = defaultAccount
		p.ChannelMeta = append(p.ChannelMeta, map[string]string{"id": c.Name, "label": label, "detailLabel": label})
	}
}

// ContributeHealth implements gateway.HealthContributor: each channel as
// OpenClaw's health reports it (configured, linked, last error), without a
// live probe (health is polled).
func (s *Service) ContributeHealth(h *gateway.Health) {
	st := s.Status(context.Background(), false, "")
	for _, name := range st.ChannelOrder {
		acc := st.ChannelAccounts[name][0]
		entry := map[string]any{"accountId": acc.AccountID, "configured": acc.Configured, "linked": acc.Linked,
			"lastError": acc.LastError, "accounts": map[string]any{acc.AccountID: acc}}
		h.Channels[name] = entry
		h.ChannelOrder = append(h.ChannelOrder, name)
		h.ChannelLabels[name] = st.ChannelLabels[name]
	}
}

// sendActionParams are message.action's params for action "send" (the
// names OpenClaw's message tool and CLI use, and gatewayd's own).
type sendActionParams struct {
	To      string `json:"to"`
	Target  string `json:"target"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

// mMessageAction serves OpenClaw's message.action. Only "send" exists
// here: it goes through Send, with the channel named and the action's
// idempotency key.
func (s *Service) mMessageAction(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p protocol.MessageActionParams
	if perr := call.Decode("MessageActionParams", &p); perr != nil {
		return nil, perr
	}
	if p.Action != "send" {
		return nil, &protocol.Error{Code: protocol.ErrInvalidRequest,
			Message: fmt.Sprintf("message.action %q is not supported by this gateway (gatewayd's channels only send; use action \"send\")", p.Action),
			Details: protocol.Details{"code": "ACTION_NOT_SUPPORTED", "action": p.Action, "supported": []string{"send"}}}
	}
	var sp sendActionParams
	if len(p.Params) > 0 {
		if err := json.Unmarshal(p.Params, &sp); err != nil {
			return nil, protocol.InvalidParams("message.action", fmt.Errorf("at /params: %w", err))
		}
	}
	to, text := sp.To, sp.Message
	if to == "" {
		to = sp.Target
	}
	if text == "" {
		text = sp.Text
	}
	d, perr := s.Send(ctx, channelproto.SendParams{To: to, Message: text, Channel: p.Channel, IdempotencyKey: p.IdempotencyKey})
	if perr != nil {
		return nil, perr
	}
	return map[string]any{"ok": true, "channel": d.Channel, "action": "send", "messageId": d.DeliveryID, "result": d}, nil
}
