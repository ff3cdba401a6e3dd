package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestChannelsToolsHooksValidate(t *testing.T) {
	tests := []struct {
		name, json, want string // want "" = valid
	}{
		{"empty", `{}`, ""},
		{"full", `{"channels": {"default": "ops", "dedupeTtlMs": 60000, "webhooks": {"ops": {"url": "https://h.example/x", "secretEnv": "S",
			"targets": ["ops", "team-*"], "headers": {"X-Team": "a"}, "timeoutMs": 500, "retry": {"maxAttempts": 2, "initialBackoffMs": 100, "maxBackoffMs": 200}}}},
		  "tools": {"maxBodyBytes": 1000, "maxConcurrent": 2, "deny": ["x-*"], "exec": {"deploy": {"command": ["deploy", "--dry"],
		    "argsSchema": {"type": "object", "properties": {"env": {"enum": ["prod", "dev"]}}}, "timeoutMs": 1000, "env": {"A": "b"}, "dir": "/srv"}}},
		  "hooks": {"enabled": true, "tokenFile": "/etc/gatewayd/hooks.token", "requestsPerMinute": 5}}`, ""},
		{"unknown webhook key", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "sekret": 1}}}}`,
			`:1:71: channels.webhooks.ops.sekret: unknown key`},
		{"webhook url", `{"channels": {"webhooks": {"ops": {"url": "ftp://h/", "secret": "s"}}}}`,
			`channels.webhooks.ops.url: "ftp://h/" is not an http:// or https:// URL`},
		{"webhook secret missing", `{"channels": {"webhooks": {"ops": {"url": "http://h/"}}}}`,
			`channels.webhooks.ops.secret: is required (set secret, secretEnv or secretFile)`},
		{"webhook two secrets", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "secretEnv": "E"}}}}`,
			`set only one of secret, secretEnv and secretFile`},
		{"relative secret file", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secretFile": "s.txt"}}}}`,
			`channels.webhooks.ops.secretFile: "s.txt" is not an absolute path`},
		{"bad target", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "targets": ["[x"]}}}}`,
			`channels.webhooks.ops.targets[0]: "[x" is not a target pattern`},
		{"reserved header", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "headers": {"X-Gateway-Signature": "x"}}}}}`,
			`is set by the gateway itself`},
		{"bad channel name", `{"channels": {"webhooks": {"o ps": {"url": "http://h/", "secret": "s"}}}}`, `"o ps" is not a channel name`},
		{"default unknown", `{"channels": {"default": "nope"}}`, `channels.default: "nope" is not a configured channel (configured: none)`},
		{"chat channels", `{"channels": {"default": "tg", "telegram": {"tg": {"tokenFile": "/etc/t", "apiBaseUrl": "http://127.0.0.1:9/", "dmPolicy": "allowlist",
			"allowFrom": ["1"], "groupPolicy": "open", "requireMention": false, "rooms": {"-5": {"agentId": "ops"}}, "reconnect": {"initialMs": 10, "maxMs": 20}}},
			"matrix": {"mx": {"homeserver": "https://m.example", "userId": "@gw:m.example", "passwordEnv": "PW", "autoJoin": "off"}}}}`, ""},
		{"telegram inline token", `{"channels": {"telegram": {"tg": {"token": "123:abc"}}}}`, `channels.telegram.tg.token: unknown key`},
		{"telegram token missing", `{"channels": {"telegram": {"tg": {}}}}`, `channels.telegram.tg.token: is required (set token, tokenEnv or tokenFile) (the bot token`},
		{"telegram base url", `{"channels": {"telegram": {"tg": {"tokenEnv": "T", "apiBaseUrl": "api.telegram.org"}}}}`, `channels.telegram.tg.apiBaseUrl: "api.telegram.org" is not an http:// or https:// URL`},
		{"dm policy", `{"channels": {"telegram": {"tg": {"tokenEnv": "T", "dmPolicy": "friends"}}}}`, `channels.telegram.tg.dmPolicy: "friends" is not one of pairing, allowlist, open, disabled`},
		{"matrix user id", `{"channels": {"matrix": {"mx": {"homeserver": "https://m/", "userId": "gw", "accessTokenEnv": "T"}}}}`, `channels.matrix.mx.userId: "gw" is not a Matrix user id`},
		{"matrix token and password", `{"channels": {"matrix": {"mx": {"homeserver": "https://m/", "userId": "@gw:m", "accessTokenEnv": "T", "passwordFile": "/p"}}}}`, `set an access token or a password, not both`},
		{"matrix no secret", `{"channels": {"matrix": {"mx": {"homeserver": "https://m/", "userId": "@gw:m"}}}}`, `channels.matrix.mx.accessToken: is required`},
		{"name across kinds", `{"channels": {"webhooks": {"x": {"url": "http://h/", "secret": "s"}}, "telegram": {"x": {"tokenEnv": "T"}}}}`, `channels.telegram.x: the name is also used under channels.webhooks`},
		{"reconnect order", `{"channels": {"telegram": {"tg": {"tokenEnv": "T", "reconnect": {"initialMs": 500, "maxMs": 100}}}}}`, `reconnect.initialMs: 500 is larger than reconnect.maxMs 100`},
		{"backoff order", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "retry": {"initialBackoffMs": 500, "maxBackoffMs": 100}}}}}`,
			`retry.initialBackoffMs: 500 is larger than retry.maxBackoffMs 100`},
		{"negative attempts", `{"channels": {"webhooks": {"ops": {"url": "http://h/", "secret": "s", "retry": {"maxAttempts": -1}}}}}`,
			`channels.webhooks.ops.retry.maxAttempts: -1 is out of range`},
		{"tool without command", `{"tools": {"exec": {"t": {"command": []}}}}`, `tools.exec.t.command: is empty`},
		{"tool relative command", `{"tools": {"exec": {"t": {"command": ["bin/x"]}}}}`, `"bin/x" is a relative path`},
		{"tool reserved name", `{"tools": {"exec": {"gateway.x": {"command": ["x"]}}}}`, `built-in tools`},
		{"tool bad schema", `{"tools": {"exec": {"t": {"command": ["x"], "argsSchema": {"type": "objekt"}}}}}`,
			`tools.exec.t.argsSchema: is not a valid JSON Schema`},
		{"tool remote ref", `{"tools": {"exec": {"t": {"command": ["x"], "argsSchema": {"$ref": "https://example.com/s.json"}}}}}`,
			`only schemas inside argsSchema are allowed`},
		{"tools body", `{"tools": {"maxBodyBytes": -1}}`, `tools.maxBodyBytes: -1 is out of range`},
		{"hooks enabled without token", `{"hooks": {"enabled": true}}`, `hooks.token: is required when hooks.enabled is true`},
		{"hooks short token", `{"hooks": {"enabled": true, "token": "short"}}`, `hooks.token: is 5 characters; use at least 16`},
		{"hooks token disabled is fine", `{"hooks": {"token": "0123456789abcdef"}}`, ""},
		{"hooks allowed agents", `{"hooks": {"allowedAgentIds": ["main", "*"]}}`, ""},
		{"hooks allowed agent empty", `{"hooks": {"allowedAgentIds": ["main", " "]}}`, `hooks.allowedAgentIds[1]: " " is not an agent id`},
		{"tool limits", `{"tools": {"exec": {"t": {"command": ["/bin/true"], "limits": {"cpuSeconds": 5, "memoryBytes": 16777216, "openFiles": 3, "processes": 1}}}}}`, ""},
		{"tool memory limit too low", `{"tools": {"exec": {"t": {"command": ["/bin/true"], "limits": {"memoryBytes": 1000}}}}}`, `tools.exec.t.limits.memoryBytes: 1000 is below`},
		{"agent open files limit too low", `{"agents": {"list": {"x": {"backend": "exec", "exec": {"command": "/bin/true", "limits": {"openFiles": 2}}}}}}`, `agents.list.x.exec.limits.openFiles: 2 leaves no room`},
		{"negative limit", `{"tools": {"exec": {"t": {"command": ["/bin/true"], "limits": {"cpuSeconds": -1}}}}}`, `cpuSeconds`},
		{"hooks heartbeat", `{"hooks": {"heartbeatIntervalMs": 1}}`, `hooks.heartbeatIntervalMs: 1 is out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.json", []byte(tt.json))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid config rejected: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("invalid config accepted, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestChannelsDefaultsRedactClone(t *testing.T) {
	c, err := Parse("c.json", []byte(`{"channels": {"webhooks": {"ops": {"url": "https://u:pw@h.example/x?token=abc", "secret": "topsecret", "headers": {"Authorization": "Bearer x"}}}},
	  "tools": {"exec": {"t": {"command": ["x"], "env": {"API_KEY": "k"}}}}, "hooks": {"enabled": true, "token": "0123456789abcdef0"}}`))
	if err != nil {
		t.Fatal(err)
	}
	full := c.WithDefaults()
	w := full.Channels.Webhooks["ops"]
	if w.TimeoutMs != DefaultWebhookTimeoutMs || w.Retry.MaxAttempts != DefaultRetryMaxAttempts || w.Retry.MaxElapsedMs != DefaultRetryMaxElapsedMs ||
		full.Channels.DedupeTTLMs != DefaultDedupeTTLMs || full.Tools.Exec["t"].TimeoutMs != DefaultToolTimeoutMs ||
		full.Hooks.MaxBodyBytes != DefaultHooksMaxBodyBytes || full.Hooks.RequestsPerMinute != DefaultHooksPerMinute {
		t.Errorf("defaults not filled in: %+v %+v %+v", w, full.Tools, full.Hooks)
	}
	if c.Channels.Webhooks["ops"].TimeoutMs != 0 {
		t.Error("WithDefaults changed the original's map entry")
	}
	r := full.Redacted()
	raw, _ := json.Marshal(r)
	for _, secret := range []string{"topsecret", "Bearer x", `"k"`, "0123456789abcdef0", "pw@", "abc"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("redacted config still holds %q: %s", secret, raw)
		}
	}
	if full.Channels.Webhooks["ops"].Secret != "topsecret" || full.Tools.Exec["t"].Env["API_KEY"] != "k" || full.Channels.Webhooks["ops"].Headers["Authorization"] != "Bearer x" {
		t.Error("Redacted changed the config it copied")
	}
	if d := Diff(full, full.WithDefaults()); len(d) != 0 {
		t.Errorf("a config differs from its own copy: %v", d)
	}
	changed := full.WithDefaults()
	changed.Hooks.Enabled = false
	d := Diff(full, changed)
	if len(d) != 1 || d[0].Key != "hooks.enabled" || d[0].RestartInProcess {
		t.Errorf("toggling hooks: %+v, want one hot-safe change of hooks.enabled", d)
	}
}

func TestChatChannelDefaultsClone(t *testing.T) {
	c, err := Parse("c.json", []byte(`{"channels": {"telegram": {"tg": {"tokenEnv": "T", "allowFrom": ["1"]}},
	  "matrix": {"mx": {"homeserver": "https://m/", "userId": "@gw:m", "accessTokenFile": "/t", "rooms": {"!r:m": {"requireMention": false}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	full := c.WithDefaults()
	tg, mx := full.Channels.Telegram["tg"], full.Channels.Matrix["mx"]
	if tg.DMPolicy != DMPolicyPairing || tg.GroupPolicy != GroupPolicyAllowlist || tg.APIBaseURL != DefaultTelegramAPIBaseURL ||
		tg.PollTimeoutS != DefaultTelegramPollTimeoutS || tg.Reconnect.MaxMs != DefaultReconnectMaxMs || mx.AutoJoin != MatrixAutoJoinAlways {
		t.Errorf("defaults not filled in: %+v %+v", tg, mx)
	}
	if c.Channels.Telegram["tg"].DMPolicy != "" {
		t.Error("WithDefaults changed the original's map entry")
	}
	if !tg.MentionRequired("-1") || mx.MentionRequired("!r:m") {
		t.Error("MentionRequired: default true, per room false")
	}
	full.Channels.Telegram["tg"].AllowFrom[0] = "changed"
	if c.Channels.Telegram["tg"].AllowFrom[0] != "1" {
		t.Error("the copy shares allowFrom with the original")
	}
	c2, err := Parse("c.json", []byte(`{"channels": {"telegram": {"tg": {"tokenEnv": "T", "apiBaseUrl": "https://u:hidden@bot.example/?k=hidden"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(c2.Redacted()); strings.Contains(string(raw), "hidden") {
		t.Errorf("redacted config still holds the apiBaseUrl's credentials: %s", raw)
	}
	if names := full.Channels.ChannelNames(); strings.Join(names, ",") != "mx,tg" {
		t.Errorf("ChannelNames: %q", names)
	}
}
