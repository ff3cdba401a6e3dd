package channels

import (
	"fmt"
	"strings"

	"github.com/gatewayd/gatewayd/daemon/protocol/channelproto"
)

// HealthComponent implements gateway.StatusReporter.
func (s *Service) HealthComponent() any {
	set := s.set.Load()
	out := channelproto.HealthChannels{OK: true, Channels: []channelproto.HealthChannel{}}
	for _, name := range set.Names() {
		ch, _ := set.Get(name)
		linked, why := ch.Linked()
		hc := channelproto.HealthChannel{Name: name, Kind: ch.Kind()}
		if l, ok := ch.(Link); ok {
			st := l.Status()
			hc.State, hc.Account, hc.Since, hc.Error = st.State, st.Account, st.Since, st.Error
			if st.State != channelproto.StateConnected && st.State != channelproto.StateDisabled {
				out.OK = false
			}
		} else {
			hc.State = webhookState(ch, linked)
			if !linked {
				hc.Error = why
			}
		}
		out.Channels = append(out.Channels, hc)
	}
	return out
}

// webhookState is the one place the state of a channel without a chat
// link (a webhook) is decided, for channels.status and health alike:
// ready, unlinked, or disabled (channels.webhooks.NAME.disabled). A chat
// link's state is its connection's (Link.Status).
func webhookState(ch Channel, linked bool) string {
	if linked {
		return channelproto.StateReady
	}
	if w, ok := ch.(*Webhook); ok && w.cfg.Disabled {
		return channelproto.StateDisabled
	}
	return channelproto.StateUnlinked
}

// StatusClause implements gateway.StatusReporter: the chat links' states,
// like "telegram connected, matrix disconnected (sync: connection
// refused)".
func (s *Service) StatusClause() string {
	set := s.set.Load()
	var parts []string
	for _, name := range set.Names() {
		ch, _ := set.Get(name)
		l, ok := ch.(Link)
		if !ok {
			continue
		}
		st := l.Status()
		p := name + " " + st.State
		if st.State != channelproto.StateConnected && st.Error != "" {
			p += " (" + shortErr(st.Error, 80) + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	return "channels: " + strings.Join(parts, ", ")
}

func shortErr(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return fmt.Sprintf("%s…", string(r[:n]))
	}
	return s
}
