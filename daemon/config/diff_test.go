package config

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	f := false
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []Change
	}{
		{"nothing", func(c *Config) {}, nil},
		{"explicit default is no change", func(c *Config) {
			c.Gateway.Mode = "local"
			c.Gateway.Reload.Mode = "hybrid"
			c.Logging.MaxFiles = 3
			c.Gateway.Listen = []string{}
		}, nil},
		{"token", func(c *Config) { c.Gateway.Auth.Token = "new" }, []Change{{"gateway.auth.token", false}}},
		{"auth all", func(c *Config) {
			c.Gateway.Auth = AuthConfig{Mode: "password", Password: "p", RateLimit: RateLimitConfig{MaxAttempts: 1, WindowMs: 2, LockoutMs: 3}}
		}, []Change{
			{"gateway.auth.mode", false}, {"gateway.auth.password", false},
			{"gateway.auth.rateLimit.lockoutMs", false}, {"gateway.auth.rateLimit.maxAttempts", false}, {"gateway.auth.rateLimit.windowMs", false},
		}},
		{"hot misc", func(c *Config) {
			c.Gateway.ControlUI.AllowedOrigins = []string{"*"}
			c.Gateway.Reload = ReloadConfig{Mode: "off", DebounceMs: 50}
			c.Gateway.TickIntervalMs = 1000
			c.Gateway.HealthIntervalMs = 1000
			c.Logging.Level = "debug"
			c.Commands.Restart = &f
		}, []Change{
			{"commands.restart", false}, {"gateway.controlUi.allowedOrigins", false}, {"gateway.healthIntervalMs", false},
			{"gateway.reload.debounceMs", false}, {"gateway.reload.mode", false}, {"gateway.tickIntervalMs", false}, {"logging.level", false},
		}},
		{"restart keys", func(c *Config) {
			c.Gateway.Port = 1
			c.Gateway.Bind = "lan"
			c.Gateway.Listen = []string{"systemd:gw"}
			c.Gateway.Mode = "remote"
			c.Logging.MaxFileBytes = 5
			c.Logging.MaxFiles = 9
		}, []Change{
			{"gateway.bind", true}, {"gateway.listen", true}, {"gateway.mode", true}, {"gateway.port", true},
			{"logging.maxFileBytes", true}, {"logging.maxFiles", true},
		}},
		{"mixed", func(c *Config) { c.Gateway.Port = 2; c.Logging.Level = "warn" }, []Change{{"gateway.port", true}, {"logging.level", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := &Config{}
			c := &Config{}
			tt.mutate(c)
			if got := Diff(old, c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff(default, new) = %v, want %v", got, tt.want)
			}
			if got := Diff(c, old); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff(new, default) = %v, want %v (not symmetric)", got, tt.want)
			}
		})
	}
	if got := Diff(nil, Default()); got != nil {
		t.Errorf("Diff(nil, Default()) = %v, want none", got)
	}
}

// TestDiffCoversEveryLeaf changes each leaf field of Config by reflection and
// checks Diff reports exactly that key: a field Diff cannot see would never
// trigger a reload.
func TestDiffCoversEveryLeaf(t *testing.T) {
	keys := leaves(reflect.ValueOf(Config{}), "", map[string]reflect.Value{})
	if len(keys) < 19 {
		t.Fatalf("only %d leaf keys found", len(keys))
	}
	for key := range keys {
		c := Default()
		v := leaves(reflect.ValueOf(c).Elem(), "", map[string]reflect.Value{})[key]
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Float64:
			v.SetFloat(v.Float() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.String {
				v.Set(reflect.Append(v, reflect.ValueOf("x")))
			} else {
				v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
			}
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			m.SetMapIndex(reflect.ValueOf("x").Convert(v.Type().Key()), reflect.New(v.Type().Elem()).Elem())
			v.Set(m)
		case reflect.Pointer:
			n := reflect.New(v.Type().Elem())
			if v.Type().Elem().Kind() == reflect.Bool {
				n.Elem().SetBool(v.IsNil() || !v.Elem().Bool())
			}
			v.Set(n)
		default:
			t.Fatalf("%s: kind %v not handled by this test", key, v.Kind())
		}
		got := Diff(Default(), c)
		if len(got) != 1 || got[0].Key != key || got[0].RestartInProcess != NeedsRestartInProcess(key) {
			t.Errorf("changing %s: Diff = %v", key, got)
		}
	}
}

func TestNeedsRestartInProcessByDefault(t *testing.T) {
	for key, want := range map[string]bool{
		"gateway.newThing":       true,
		"gateway.authx":          true, // a prefix of a hot key is not the key
		"gateway.auth":           false,
		"gateway.auth.new":       false,
		"logging.levelOverrides": true,
		"newSection.x":           true,
	} {
		if got := NeedsRestartInProcess(key); got != want {
			t.Errorf("NeedsRestartInProcess(%q) = %v, want %v", key, got, want)
		}
	}
}

// Carry keeps the running value of every listed key, whatever its section,
// and takes the rest from next.
func TestCarry(t *testing.T) {
	running := &Config{}
	running.Gateway.Port = 1000
	running.Gateway.Listen = []string{"127.0.0.1:1000"}
	running.Logging.MaxFiles = 3
	running.Logging.MaxFileBytes = 111
	next := &Config{}
	next.Gateway.Port = 2000
	next.Gateway.Listen = []string{"127.0.0.1:2000"}
	next.Logging.MaxFiles = 9
	next.Logging.MaxFileBytes = 999
	next.Logging.Level = "debug"
	var keys []string
	for _, c := range Diff(running, next) {
		if c.RestartInProcess {
			keys = append(keys, c.Key)
		}
	}
	got := Carry(running, next, keys)
	if got.Gateway.Port != 1000 || got.Gateway.Listen[0] != "127.0.0.1:1000" || got.Logging.MaxFiles != 3 || got.Logging.MaxFileBytes != 111 {
		t.Fatalf("restart-required keys %v not carried: %+v %+v", keys, got.Gateway, got.Logging)
	}
	if got.Logging.Level != "debug" {
		t.Fatalf("hot key lost: level %q", got.Logging.Level)
	}
	if left := Diff(running, got); len(left) != 1 || left[0].Key != "logging.level" {
		t.Fatalf("after Carry the only difference should be logging.level, got %v", left)
	}
	got.Gateway.Listen[0] = "changed"
	if running.Gateway.Listen[0] != "127.0.0.1:1000" {
		t.Fatal("Carry shares a slice with running")
	}
}
