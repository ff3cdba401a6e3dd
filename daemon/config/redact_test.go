package config_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/daemon/config"
	"github.com/gatewayd/gatewayd/daemon/config/configtest"
)

// secretLooking are JSON key names that hold (or point at) a secret.
var secretLooking = regexp.MustCompile(`(?i)(token|secret|passw|key|url|uri|header|env$|cookie|credential|origin)`)

// A field that looks like it holds a secret must say what it is with a
// redact tag (secret, url, or ref for where a secret is kept), so a new
// field cannot slip past config.get's redaction and the tests below.
func TestEverySecretLookingFieldIsTagged(t *testing.T) {
	var check func(t reflect.Type, path string)
	seen := map[reflect.Type]bool{}
	check = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Map || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			tag := f.Tag.Get("redact")
			switch tag {
			case "", config.RedactSecret, config.RedactURLTag, config.RedactRef:
			default:
				t.Errorf("%s.%s: unknown redact tag %q (secret, url or ref)", path, name, tag)
			}
			elem := f.Type
			for elem.Kind() == reflect.Pointer || elem.Kind() == reflect.Slice {
				elem = elem.Elem()
			}
			if tag == "" && secretLooking.MatchString(name) && elem.Kind() != reflect.Struct && elem.Kind() != reflect.Bool {
				t.Errorf("%s.%s looks like it holds a secret but has no redact tag (add redact:\"secret\", \"url\" or \"ref\"; see daemon/config/redact.go)", path, name)
			}
			check(f.Type, path+"."+name)
		}
	}
	check(reflect.TypeFor[config.Config](), "config")
	if len(configtest.SecretCases()) < 20 {
		t.Fatalf("only %d secret cases: the walk misses fields", len(configtest.SecretCases()))
	}
}

// Every tagged field, in valid and invalid shapes: the value is not in
// config.get (Redacted), nor in the error Load/Parse returns, nor after
// ScrubText with the config's own secret values.
func TestSecretsNeverEchoed(t *testing.T) {
	for _, c := range configtest.SecretCases() {
		t.Run(c.String(), func(t *testing.T) {
			var lenient config.Config
			if err := json.Unmarshal(c.JSON, &lenient); err != nil {
				t.Fatalf("case JSON does not decode: %v\n%s", err, c.JSON)
			}
			red, _ := json.Marshal(lenient.Redacted())
			if strings.Contains(string(red), c.Sentinel) {
				t.Errorf("config.get (Redacted) shows the secret:\n%s", red)
			}
			_, err := config.Parse("/etc/gatewayd/config.json", c.JSON)
			if err != nil {
				if strings.Contains(err.Error(), c.Sentinel) {
					t.Errorf("the config error quotes the secret: %v", err)
				}
				var ce *config.Error
				if ok := asConfigError(err, &ce); ok && strings.Contains(ce.Located(), c.Sentinel) {
					t.Errorf("the located error quotes the secret: %s", ce.Located())
				}
			}
			if got := config.ScrubText("dial "+string(c.JSON), lenient.SecretValues()...); strings.Contains(got, c.Sentinel) {
				t.Errorf("ScrubText with the config's secrets leaves the secret:\n%s", got)
			}
		})
	}
}

func asConfigError(err error, ce **config.Error) bool {
	e, ok := err.(*config.Error)
	*ce = e
	return ok
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"},
		{"https://hooks.example.com/gateway", "https://hooks.example.com/gateway"},
		{"https://user:pw@h.example/v1?key=abc", "https://__REDACTED__@h.example/v1?key=__REDACTED__"},
		{"https://ghp_abcdef0123@h.example/api", "https://__REDACTED__@h.example/api"},
		{"https://hooks.slack.com/services/T000/B000/XXXXsecret", "https://hooks.slack.com/services/__REDACTED__/__REDACTED__/__REDACTED__"},
		{"https://discord.com/api/webhooks/123456/abcDEF-token", "https://discord.com/api/webhooks/__REDACTED__/__REDACTED__"},
		{"http://[::1/%zz", config.RedactedValue},
		{"not a url", config.RedactedValue},
		{"api.telegram.org", "api.telegram.org"},
		{"[::1]:8080", "[::1]:8080"},
		{"Zq1sentinel", config.RedactedValue}, // no dot, mixed case: a token pasted into a URL field
		{"sk-proj-abc123", config.RedactedValue},
	} {
		if got := config.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := config.RedactURL(config.RedactURL(tc.in)); again != config.RedactURL(tc.in) && config.RedactURL(tc.in) != config.RedactedValue {
			t.Errorf("RedactURL is not idempotent on %q: %q", tc.in, again)
		}
	}
	got := config.ScrubText(`Post "https://u:p4ss@h.example/x9/y?k=v": dial tcp: refused.`)
	if strings.Contains(got, "p4ss") || strings.Contains(got, "x9") || !strings.HasSuffix(got, "refused.") {
		t.Errorf("ScrubText = %q", got)
	}
}
