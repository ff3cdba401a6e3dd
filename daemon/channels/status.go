package channels

import (
	"fmt"
	"strings"
)

// HealthChannels is the channels component of health: every chat link's
// state and last error. OK is false while a link is not connected (the
// gateway itself keeps serving; health's own ok does not change).
type HealthChannels struct {
	OK       bool            `json:"ok"`
	Channels []HealthChannel `json:"channels"`
}

// HealthChannel is one channel in health.
type HealthChannel struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Account string `json:"account,omitempty"`
	Since   int64  `json:"since,omitempty"`
	Error   string `json:"error,omitempty"`
}

// HealthComponent implements gateway.StatusReporter.
func (s *Service) HealthComponent() any {
	set := s.set.Load()
	out := HealthChannels{OK: true, Channels: []HealthChannel{}}
	for _, name := range set.Names() {
		ch, _ := set.Get(name)
		hc := HealthChannel{Name: name, Kind: ch.Kind(), State: StateReady}
		if l, ok := ch.(Link); ok {
			st := l.Status()
			hc.State, hc.Account, hc.Since, hc.Error = st.State, st.Account, st.Since, st.Error
			if st.State != StateConnected && st.State != StateDisabled {
				out.OK = false
			}
		} else if ok, why := ch.Linked(); !ok {
			hc.State, hc.Error = StateUnlinked, why
		}
		out.Channels = append(out.Channels, hc)
	}
	return out
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
		if st.State != StateConnected && st.Error != "" {
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
