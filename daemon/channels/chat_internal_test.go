package channels

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/store"
)

func TestSplitText(t *testing.T) {
	cases := []struct {
		text  string
		limit int
		want  []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three four", 9, []string{"one two ", "three ", "four"}},
		{"para one\n\npara two is long", 16, []string{"para one\n\n", "para two is long"}},
		{strings.Repeat("x", 25), 10, []string{strings.Repeat("x", 10), strings.Repeat("x", 10), strings.Repeat("x", 5)}},
		{"ééééé", 2, []string{"éé", "éé", "é"}},
	}
	for _, c := range cases {
		got := splitText(c.text, c.limit)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("splitText(%q, %d) = %q, want %q", c.text, c.limit, got, c.want)
		}
	}
	long := strings.Repeat("lorem ipsum dolor ", 700)
	parts := splitText(long, TelegramMaxText)
	if strings.Join(parts, "") != long {
		t.Fatal("parts do not join to the text")
	}
	for _, p := range parts {
		if n := utf8.RuneCountInString(p); n > TelegramMaxText || n == 0 {
			t.Errorf("part of %d characters", n)
		}
	}
}

func TestBackoffBound(t *testing.T) {
	b := newBackoff(config.ReconnectConfig{InitialMs: 100, MaxMs: 1000})
	for i := range 50 {
		w := b.next()
		if w > time.Second || w < 50*time.Millisecond {
			t.Fatalf("wait %d is %s, outside [50ms, 1s]", i, w)
		}
	}
	b.reset()
	if w := b.next(); w > 100*time.Millisecond {
		t.Errorf("after reset the wait is %s, want at most the initial 100ms", w)
	}
}

func TestDecide(t *testing.T) {
	no := false
	base := config.ChatConfig{DMPolicy: config.DMPolicyPairing, GroupPolicy: config.GroupPolicyAllowlist, AllowFrom: []string{"alice"},
		Rooms: map[string]config.ChatRoomConfig{"team": {}, "quiet": {Disabled: true}, "chatty": {RequireMention: &no}}}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Service{store: st, log: slog.New(slog.DiscardHandler)}
	if err := st.Put(BucketAllowed, pairKey("tg", "carol"), AllowedSender{SenderID: "carol"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mod  func(c *config.ChatConfig)
		in   Inbound
		want verdict
	}{
		{"allowed sender", nil, Inbound{Direct: true, SenderID: "alice"}, verdictRun},
		{"approved sender", nil, Inbound{Channel: "tg", Direct: true, SenderID: "carol"}, verdictRun},
		{"approved on another channel only", nil, Inbound{Channel: "mx", Direct: true, SenderID: "carol"}, verdictPair},
		{"unknown sender pairs", nil, Inbound{Direct: true, SenderID: "bob"}, verdictPair},
		{"allowlist ignores unknown", func(c *config.ChatConfig) { c.DMPolicy = config.DMPolicyAllowlist }, Inbound{Direct: true, SenderID: "bob"}, verdictIgnore},
		{"open", func(c *config.ChatConfig) { c.DMPolicy = config.DMPolicyOpen }, Inbound{Direct: true, SenderID: "bob"}, verdictRun},
		{"dm disabled", func(c *config.ChatConfig) { c.DMPolicy = config.DMPolicyDisabled }, Inbound{Direct: true, SenderID: "alice"}, verdictIgnore},
		{"group not listed", nil, Inbound{ChatID: "other", Mentioned: true}, verdictIgnore},
		{"group listed, mentioned", nil, Inbound{ChatID: "team", Mentioned: true}, verdictRun},
		{"group listed, not mentioned", nil, Inbound{ChatID: "team"}, verdictIgnore},
		{"room without mention requirement", nil, Inbound{ChatID: "chatty"}, verdictRun},
		{"disabled room", nil, Inbound{ChatID: "quiet", Mentioned: true}, verdictIgnore},
		{"open groups", func(c *config.ChatConfig) { c.GroupPolicy = config.GroupPolicyOpen }, Inbound{ChatID: "other", Mentioned: true}, verdictRun},
		{"groups disabled", func(c *config.ChatConfig) { c.GroupPolicy = config.GroupPolicyDisabled }, Inbound{ChatID: "team", Mentioned: true}, verdictIgnore},
	}
	for _, c := range cases {
		cfg := base
		if c.mod != nil {
			c.mod(&cfg)
		}
		if got, why := s.decide(cfg, &c.in); got != c.want {
			t.Errorf("%s: verdict %d (%s), want %d", c.name, got, why, c.want)
		}
	}
}

func TestMatrixJoinAllowed(t *testing.T) {
	cfg := config.MatrixChannelConfig{AccessTokenEnv: "T", ChatConfig: config.ChatConfig{AllowFrom: []string{"@alice:x"},
		Rooms: map[string]config.ChatRoomConfig{"!team:x": {}, "!off:x": {Disabled: true}}}}
	cases := []struct {
		mode, room, inviter string
		want                bool
	}{
		{config.MatrixAutoJoinAlways, "!any:x", "@mallory:x", true},
		{config.MatrixAutoJoinOff, "!team:x", "@alice:x", false},
		{config.MatrixAutoJoinAllowlist, "!any:x", "@alice:x", true},
		{config.MatrixAutoJoinAllowlist, "!team:x", "@mallory:x", true},
		{config.MatrixAutoJoinAllowlist, "!off:x", "@mallory:x", false},
		{config.MatrixAutoJoinAllowlist, "!any:x", "@mallory:x", false},
	}
	for _, c := range cases {
		cfg.AutoJoin = c.mode
		m := NewMatrix("mx", cfg, func(string) string { return "token" }, "", slog.New(slog.DiscardHandler))
		if got := m.joinAllowed(id.RoomID(c.room), c.inviter); got != c.want {
			t.Errorf("autoJoin %s, room %s, inviter %s: %v, want %v", c.mode, c.room, c.inviter, got, c.want)
		}
	}
}

func TestMatrixMentioned(t *testing.T) {
	m := &Matrix{cfg: config.MatrixChannelConfig{UserID: "@gw:example.org"}}
	for body, want := range map[string]bool{
		"gw: deploy":                true,
		"GW, status?":               true,
		"hey @gw:example.org":       true,
		"@gw what's up":             true,
		"the gateway is down":       false,
		"gwen: lunch?":              false,
		"@gwen see this":            false,
		"ask gw later, not now ...": false,
	} {
		if got := m.mentioned(&event.MessageEventContent{Body: body}); got != want {
			t.Errorf("mentioned(%q) = %v, want %v", body, got, want)
		}
	}
	if !m.mentioned(&event.MessageEventContent{Body: "hi", Mentions: &event.Mentions{UserIDs: []id.UserID{"@gw:example.org"}}}) {
		t.Error("m.mentions with the account is a mention")
	}
}

// TestDroppedRecordForgetsItsPieces: a record that ends without being
// answered (here its channel was removed by a reload) leaves the inbox and
// takes its pieces out of tried, so tried stays bounded by the records in
// flight; another record's pieces stay.
func TestDroppedRecordForgetsItsPieces(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Service{store: st, log: slog.New(slog.DiscardHandler), tried: map[string]bool{}}
	s.set.Store(&Set{})
	rec := &inboxRecord{Inbound: Inbound{Channel: "gone", ChatID: "c1"}, State: inboxReply, Reply: []string{"a", "b"}}
	if err := st.Put(BucketInbox, "k1", rec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"reply/k1/0", "reply/k1/1", "reply/k2/0"} {
		s.triedHere(k)
	}
	if _, done := s.handle("k1", rec); !done {
		t.Fatal("a record of a removed channel was kept waiting")
	}
	if len(s.tried) != 1 || !s.tried["reply/k2/0"] {
		t.Fatalf("tried = %v, want only the other record's piece", s.tried)
	}
	var got inboxRecord
	if found, err := st.Get(BucketInbox, "k1", &got); err != nil || found {
		t.Fatalf("the dropped record is still in the inbox (found %v, err %v)", found, err)
	}
}
