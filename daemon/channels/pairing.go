package channels

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/gateway"
	"github.com/gatewayd/gatewayd/daemon/protocol"
	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
	"github.com/gatewayd/gatewayd/daemon/store"
)

// Channel (DM) pairing: under dmPolicy "pairing" an unknown sender gets a
// short code and leaves a pending request; an operator approves it
// (channels.pairing.approve, `gatewayctl pairing approve CODE`) and from
// then on the sender's messages reach the agent. The method names and
// payloads follow OpenClaw's channels.pairing.*.
const (
	BucketPairing = "channels.pairing" // channel \0 sender -> PairingRequest
	BucketAllowed = "channels.allowed" // channel \0 sender -> AllowedSender

	// PairingTTL is how long a pending request lives (OpenClaw: 1 h).
	PairingTTL = time.Hour
	// MaxPendingPerChannel bounds the pending requests of one channel; more
	// unknown senders get no code until one is resolved or expires.
	MaxPendingPerChannel = 3
	pairingCodeLength    = 8
	pairingCodeAlphabet  = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	// AccountID is the account id of every gatewayd channel: a channel is
	// one account (OpenClaw's channels have several per provider).
	AccountID = "default"
)

// storedRequest is a PairingRequest as stored (with its code and chat).
type storedRequest struct {
	RequestID  string `json:"requestId"`
	Code       string `json:"code"`
	Channel    string `json:"channel"`
	Kind       string `json:"kind"`
	SenderID   string `json:"senderId"`
	SenderName string `json:"senderName,omitempty"`
	Chat       string `json:"chat"`
	CreatedAt  int64  `json:"createdAt"`
	LastSeenAt int64  `json:"lastSeenAt"`
}

// AllowedSender is an approved sender.
type AllowedSender struct {
	SenderID   string `json:"senderId"`
	ApprovedAt int64  `json:"approvedAt"`
	RequestID  string `json:"requestId,omitempty"`
}

func pairKey(channel, sender string) string { return channel + "\x00" + sender }

func newPairingCode() string {
	b := make([]byte, pairingCodeLength)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(pairingCodeAlphabet))))
		b[i] = pairingCodeAlphabet[n.Int64()]
	}
	return string(b)
}

func pairingRequestID(channel, sender string, created int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", channel, AccountID, sender, created))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

func (s *Service) approved(channel, sender string) bool {
	var a AllowedSender
	ok, err := s.store.Get(BucketAllowed, pairKey(channel, sender), &a)
	if err != nil {
		s.log.Warn("reading approved senders", "err", err)
	}
	return ok
}

// pairingReply records (or refreshes) the sender's pending request and
// returns the text to send: the code when the request is new, "" when the
// sender already has a pending request or the channel has too many.
func (s *Service) pairingReply(l Link, in *Inbound) (string, error) {
	now := time.Now()
	var text string
	err := s.store.Update(func(tx *store.Tx) error {
		var r storedRequest
		found, err := tx.Get(BucketPairing, pairKey(in.Channel, in.SenderID), &r)
		if err != nil {
			return err
		}
		if found && now.Sub(time.UnixMilli(r.CreatedAt)) < PairingTTL {
			r.LastSeenAt = now.UnixMilli()
			return tx.Put(BucketPairing, pairKey(in.Channel, in.SenderID), r)
		}
		live := 0
		if err := tx.List(BucketPairing, in.Channel+"\x00", func(_ string, raw []byte) error {
			var o storedRequest
			if json.Unmarshal(raw, &o) == nil && now.Sub(time.UnixMilli(o.CreatedAt)) < PairingTTL {
				live++
			}
			return nil
		}); err != nil {
			return err
		}
		if live >= MaxPendingPerChannel {
			s.log.Warn("pairing request not created: too many pending requests on this channel (approve or reject some: gatewayctl pairing list)",
				"channel", in.Channel, "sender", in.SenderID, "pending", live)
			return nil
		}
		r = storedRequest{Code: newPairingCode(), Channel: in.Channel, Kind: l.Kind(), SenderID: in.SenderID, SenderName: in.SenderName,
			Chat: in.ChatID, CreatedAt: now.UnixMilli(), LastSeenAt: now.UnixMilli()}
		r.RequestID = pairingRequestID(in.Channel, in.SenderID, r.CreatedAt)
		text = fmt.Sprintf("This gateway does not know you yet. Your pairing code is %s. Ask its operator to approve it "+
			"(gatewayctl pairing approve %s); the code expires in %s.", r.Code, r.Code, PairingTTL)
		s.log.Info("pairing requested", "channel", in.Channel, "sender", in.SenderID, "request", r.RequestID)
		return tx.Put(BucketPairing, pairKey(in.Channel, in.SenderID), r)
	})
	return text, err
}

func (s *Service) pairingAccounts(filter string) []channelproto.PairingAccount {
	out := []channelproto.PairingAccount{}
	set := s.set.Load()
	for _, name := range set.Names() {
		ch, _ := set.Get(name)
		l, ok := ch.(Link)
		if !ok || l.Chat().DMPolicy != config.DMPolicyPairing || (filter != "" && !strings.EqualFold(filter, name)) {
			continue
		}
		out = append(out, channelproto.PairingAccount{Channel: name, ChannelLabel: l.Kind(), AccountID: AccountID, NotifySup: true})
	}
	return out
}

// PairingList lists the pending requests (expired ones are removed).
func (s *Service) PairingList(p channelproto.PairingListParams) (*channelproto.PairingList, error) {
	out := &channelproto.PairingList{Accounts: s.pairingAccounts(p.Channel), Requests: []channelproto.PairingRequest{},
		Limits: channelproto.PairingLimits{PendingPerAccount: MaxPendingPerChannel, TTLMs: PairingTTL.Milliseconds()}}
	reqs, err := s.pendingRequests()
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if p.Channel != "" && !strings.EqualFold(p.Channel, r.Channel) {
			continue
		}
		out.Requests = append(out.Requests, publicRequest(r))
	}
	return out, nil
}

func publicRequest(r storedRequest) channelproto.PairingRequest {
	label := map[string]string{KindTelegram: "telegramUserId", KindMatrix: "matrixUserId"}[r.Kind]
	if label == "" {
		label = "senderId"
	}
	pr := channelproto.PairingRequest{RequestID: r.RequestID, Channel: r.Channel, ChannelLabel: r.Kind, AccountID: AccountID, SenderID: r.SenderID,
		SenderLabel: label, CreatedAt: time.UnixMilli(r.CreatedAt).UTC().Format(time.RFC3339Nano),
		LastSeenAt: time.UnixMilli(r.LastSeenAt).UTC().Format(time.RFC3339Nano),
		ExpiresAt:  time.UnixMilli(r.CreatedAt).Add(PairingTTL).UTC().Format(time.RFC3339Nano), Code: r.Code, Chat: r.Chat, NotifySup: true}
	if r.SenderName != "" {
		pr.Metadata = map[string]string{"name": r.SenderName}
	}
	return pr
}

// pendingRequests returns the live requests, oldest first, and removes
// the expired ones.
func (s *Service) pendingRequests() ([]storedRequest, error) {
	now := time.Now()
	var live []storedRequest
	var expired []string
	err := s.store.View(func(tx *store.Tx) error {
		return tx.List(BucketPairing, "", func(key string, raw []byte) error {
			var r storedRequest
			if json.Unmarshal(raw, &r) != nil || now.Sub(time.UnixMilli(r.CreatedAt)) >= PairingTTL {
				expired = append(expired, key)
				return nil
			}
			live = append(live, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(expired) > 0 {
		_ = s.store.Update(func(tx *store.Tx) error {
			for _, k := range expired {
				_ = tx.Delete(BucketPairing, k)
			}
			return nil
		})
	}
	slices.SortFunc(live, func(a, b storedRequest) int { return int(a.CreatedAt - b.CreatedAt) })
	return live, nil
}

// PairingResolve approves or dismisses the request p names.
func (s *Service) PairingResolve(ctx context.Context, p channelproto.PairingResolveParams, approve bool) (*channelproto.PairingResolved, *protocol.Error) {
	method := channelproto.MethodPairingDismiss
	if approve {
		method = channelproto.MethodPairingApprove
	}
	if p.RequestID == "" && p.Code == "" {
		return nil, protocol.InvalidParams(method, fmt.Errorf("at /requestId: required (or code: the code the sender got)"))
	}
	reqs, err := s.pendingRequests()
	if err != nil {
		return nil, storeError(err)
	}
	var match *storedRequest
	for i := range reqs {
		r := &reqs[i]
		if p.Channel != "" && !strings.EqualFold(p.Channel, r.Channel) {
			continue
		}
		if (p.RequestID != "" && r.RequestID == p.RequestID) || (p.Code != "" && strings.EqualFold(strings.TrimSpace(p.Code), r.Code)) {
			match = r
			break
		}
	}
	if match == nil {
		return nil, protocol.Errorf(protocol.ErrInvalidRequest, "pending DM access request no longer exists (it was resolved or expired; see gatewayctl pairing list)")
	}
	now := time.Now()
	err = s.store.Update(func(tx *store.Tx) error {
		if err := tx.Delete(BucketPairing, pairKey(match.Channel, match.SenderID)); err != nil {
			return err
		}
		if !approve {
			return nil
		}
		return tx.Put(BucketAllowed, pairKey(match.Channel, match.SenderID), AllowedSender{SenderID: match.SenderID, ApprovedAt: now.UnixMilli(), RequestID: match.RequestID})
	})
	if err != nil {
		return nil, storeError(err)
	}
	out := &channelproto.PairingResolved{RequestID: match.RequestID, Channel: match.Channel, SenderID: match.SenderID}
	if approve {
		s.log.Info("pairing approved", "channel", match.Channel, "sender", match.SenderID, "request", match.RequestID)
		out.Notification = "not-requested"
		if p.Notify {
			out.Notification = "sent"
			l, ok := s.link(match.Channel)
			if !ok {
				out.Notification = "failed"
			} else if err := l.SendText(ctx, match.Chat, "You are approved: your messages now reach the agent.", "approved/"+match.RequestID); err != nil {
				s.log.Warn("pairing approval notification failed", "channel", match.Channel, "err", err)
				out.Notification = "failed"
			}
		}
	} else {
		s.log.Info("pairing dismissed", "channel", match.Channel, "sender", match.SenderID, "request", match.RequestID)
	}
	return out, nil
}

func (s *Service) mPairingList(_ context.Context, call *gateway.Call) (any, *protocol.Error) {
	var p channelproto.PairingListParams
	if perr := call.Decode("", &p); perr != nil {
		return nil, perr
	}
	l, err := s.PairingList(p)
	if err != nil {
		return nil, storeError(err)
	}
	return l, nil
}

func (s *Service) mPairingResolve(approve bool) func(context.Context, *gateway.Call) (any, *protocol.Error) {
	return func(ctx context.Context, call *gateway.Call) (any, *protocol.Error) {
		var p channelproto.PairingResolveParams
		if perr := call.Decode("", &p); perr != nil {
			return nil, perr
		}
		r, perr := s.PairingResolve(ctx, p, approve)
		if perr != nil {
			return nil, perr
		}
		return r, nil
	}
}
