package config

import (
	"encoding/json"
	"net/url"
	"reflect"
	"regexp"
	"strings"
)

// Secrets are marked in the Config structs with a `redact` struct tag, and
// Redacted, config.get and error messages follow the tags:
//
//	redact:"secret"  the value is a secret: a string is replaced whole, a
//	                 map's values are replaced, a []string of KEY=VALUE
//	                 entries keeps the KEYs
//	redact:"url"     a URL that may carry credentials: see RedactURL
//	redact:"ref"     names where a secret is (an environment variable or a
//	                 file), not the secret itself: shown as is
//
// A field whose JSON name looks like it holds a secret (token, secret,
// password, key, url, header, env, …) must carry one of these tags;
// TestEverySecretLookingFieldIsTagged enforces it, so a new field cannot be
// forgotten.
const redactTag = "redact"

// Values of the redact tag.
const (
	RedactSecret = "secret"
	RedactURLTag = "url"
	RedactRef    = "ref"
)

// RedactedValue replaces secrets in Redacted.
const RedactedValue = "__REDACTED__"

// redactTagged replaces every tagged value below v (addressable) in place.
func redactTagged(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			redactTagged(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			switch f.Tag.Get(redactTag) {
			case RedactSecret:
				redactSecretValue(v.Field(i))
			case RedactURLTag:
				redactURLValue(v.Field(i))
			default:
				redactTagged(v.Field(i))
			}
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			redactTagged(e)
			v.SetMapIndex(k, e)
		}
	case reflect.Slice:
		for i := range v.Len() {
			redactTagged(v.Index(i))
		}
	}
}

func redactSecretValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.String() != "" {
			v.SetString(RedactedValue)
		}
	case reflect.Map:
		if v.IsNil() || v.Type().Elem().Kind() != reflect.String {
			return
		}
		for _, k := range v.MapKeys() {
			v.SetMapIndex(k, reflect.ValueOf(RedactedValue).Convert(v.Type().Elem()))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return
		}
		for i := range v.Len() {
			e := v.Index(i)
			if k, val, ok := strings.Cut(e.String(), "="); ok && envNameRe.MatchString(k) {
				if val != "" {
					e.SetString(k + "=" + RedactedValue)
				}
			} else if e.String() != "" {
				e.SetString(RedactedValue)
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			redactSecretValue(v.Elem())
		}
	}
}

func redactURLValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.String() != "" {
			v.SetString(RedactURL(v.String()))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			for i := range v.Len() {
				redactURLValue(v.Index(i))
			}
		}
	}
}

// RedactURL returns raw with the parts of a URL that carry credentials
// replaced by __REDACTED__: the user info (a user name alone is often a
// token), every query value, the fragment, and every path segment that is
// not a plain word (webhook URLs such as Slack's /services/T…/B…/SECRET or
// Discord's /api/webhooks/ID/TOKEN carry the secret in the path). Scheme,
// host and port stay, so an operator can still tell which URL it is. A bare
// host name is shown as is; any other string that does not parse as a URL
// with a host is replaced whole.
func RedactURL(raw string) string {
	if bareHost.MatchString(raw) {
		return raw // a bare host name or address with no scheme: nothing secret in it
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" || strings.ContainsAny(raw, " \t\r\n") {
		return RedactedValue
	}
	if u.User != nil {
		u.User = url.User(RedactedValue)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = RedactedValue
		} else {
			for k := range q {
				q[k] = []string{RedactedValue}
			}
			u.RawQuery = q.Encode()
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = RedactedValue, ""
	}
	if u.Path != "" {
		segs := strings.Split(u.Path, "/")
		for i, s := range segs {
			if s != "" && !plainSegment.MatchString(s) {
				segs[i] = RedactedValue
			}
		}
		u.Path, u.RawPath = strings.Join(segs, "/"), ""
	}
	// Host names do not carry secrets, but a host that is not a host name
	// (percent escapes, odd characters) is not echoed either.
	if !hostRE.MatchString(u.Host) {
		u.Host = RedactedValue
	}
	return u.String()
}

var (
	// plainSegment is a path segment shown as is: a short lower-case word
	// like "api", "v1", "webhooks", "chat-completions", or the redaction
	// marker. Anything with capitals, digits or length looks like an id or
	// a token and is hidden.
	plainSegment = regexp.MustCompile(`^(?:[a-z][a-z_-]{0,15}|v[0-9]{1,3}|__REDACTED__)$`)
	// bareHost is a lower-case dotted host name or an IP address, with an
	// optional port: what a URL field holds when the scheme was left out.
	// Mixed case or no dot looks like a token pasted into the wrong place.
	bareHost = regexp.MustCompile(`^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$`)
	hostRE   = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	// urlInText finds URLs in free text (error messages from the outside,
	// like a dial error that quotes the URL).
	urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]{0,15}://[^\s"'<>` + "`" + `]+`)
)

// ScrubText returns s with every URL in it redacted (RedactURL) and every
// one of the given secret values (empty ones ignored) replaced by
// __REDACTED__. The daemon passes every error text it shows (health,
// status, STATUS=, the log) through it as a second line of defence: config
// errors do not quote secrets in the first place.
func ScrubText(s string, secrets ...string) string {
	s = urlInText.ReplaceAllStringFunc(s, func(u string) string {
		trail := ""
		for len(u) > 0 && strings.ContainsRune(".,;:)]}", rune(u[len(u)-1])) {
			trail = u[len(u)-1:] + trail
			u = u[:len(u)-1]
		}
		return RedactURL(u) + trail
	})
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, RedactedValue)
		}
	}
	return s
}

// SecretValues returns every non-empty value of a field tagged
// redact:"secret" or redact:"url" in c (map values and KEY=VALUE values
// included), for ScrubText.
func (c *Config) SecretValues() []string {
	var out []string
	if c == nil {
		return nil
	}
	collectSecrets(reflect.ValueOf(c).Elem(), "", &out)
	return out
}

func collectSecrets(v reflect.Value, tag string, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			collectSecrets(v.Elem(), tag, out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				collectSecrets(v.Field(i), t.Field(i).Tag.Get(redactTag), out)
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			collectSecrets(v.MapIndex(k), tag, out)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			collectSecrets(v.Index(i), tag, out)
		}
	case reflect.String:
		s := v.String()
		switch {
		case s == "":
		case tag == RedactSecret:
			if k, val, ok := strings.Cut(s, "="); ok && envNameRe.MatchString(k) && val != "" {
				*out = append(*out, val)
			}
			*out = append(*out, s)
		case tag == RedactURLTag:
			*out = append(*out, urlSecrets(s)...)
		}
	}
}

// urlSecrets lists the parts of a URL that RedactURL hides.
func urlSecrets(raw string) []string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	if u.Fragment != "" {
		out = append(out, u.Fragment)
	}
	for _, s := range strings.Split(u.Path, "/") {
		if s != "" && !plainSegment.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// LenientSecretValues returns the secret values of a config file that may
// be invalid (SecretValues of what decodes), so a rejected file's secrets
// can be scrubbed from the rejection too.
func LenientSecretValues(raw []byte) []string {
	var c Config
	_ = json.Unmarshal(raw, &c) // a type error still decodes the rest
	return c.SecretValues()
}
