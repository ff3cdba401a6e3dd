package tools

import (
	"context"
	"os"
	"runtime"
	"time"

	"github.com/gatewayd/gatewayd/daemon/gateway"
)

// CoreInfo is what the gateway.* built-ins report about this process.
type CoreInfo struct {
	Version    string
	Profile    string
	ConfigPath string
	StateDir   string
	StartedAt  time.Time
}

// CoreReporter is implemented by a Host that can hand out the core's own
// health and status payloads (the same as the health and status methods).
// When the bound Host implements it, gateway.health and gateway.status
// return exactly those; otherwise they report from CoreInfo and the Host.
type CoreReporter interface {
	HealthReport() any
	StatusReport() any
}

// The core's server generation is a CoreReporter.
var _ CoreReporter = (*gateway.Server)(nil)

// CoreBuiltins returns the built-in tools gateway.status and
// gateway.health. (gateway.tools, the list of tools, is always added by
// New.)
func CoreBuiltins(info CoreInfo) map[string]Builtin {
	return map[string]Builtin{
		"gateway.status": {
			Description: "the gateway's status: version, profile, uptime, connections, paths",
			Run: func(_ context.Context, h gateway.Host, _ *Request) (any, error) {
				if r, ok := h.(CoreReporter); ok {
					return r.StatusReport(), nil
				}
				return map[string]any{
					"version": info.Version, "profile": info.Profile, "pid": os.Getpid(),
					"uptimeMs": time.Since(info.StartedAt).Milliseconds(), "startedAt": info.StartedAt.UnixMilli(),
					"connections": len(h.Peers()), "configPath": info.ConfigPath, "stateDir": info.StateDir,
					"stopping": h.Stopping(),
				}, nil
			},
		},
		"gateway.health": {
			Description: "the gateway's health: ok, uptime, connections",
			Run: func(_ context.Context, h gateway.Host, _ *Request) (any, error) {
				if r, ok := h.(CoreReporter); ok {
					return r.HealthReport(), nil
				}
				now := time.Now()
				return map[string]any{
					"ok": !h.Stopping(), "ts": now.UnixMilli(), "durationMs": 0, "version": info.Version, "profile": info.Profile,
					"pid": os.Getpid(), "uptimeMs": now.Sub(info.StartedAt).Milliseconds(), "connections": len(h.Peers()),
					"components": map[string]any{"server": map[string]any{"ok": !h.Stopping(), "stopping": h.Stopping()},
						"runtime": map[string]any{"goroutines": runtime.NumGoroutine()}},
				}, nil
			},
		},
	}
}

// ToolInfo describes one tool in gateway.tools.
type ToolInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // "builtin" or "exec"
	Description string `json:"description,omitempty"`
	ArgsSchema  any    `json:"argsSchema,omitempty"`
}

// List describes the available tools, sorted by name.
func (s *Service) List() []ToolInfo {
	t := s.table.Load()
	var out []ToolInfo
	for _, name := range s.Names() {
		if b, ok := s.builtins[name]; ok {
			out = append(out, ToolInfo{Name: name, Kind: "builtin", Description: b.Description})
			continue
		}
		et := t.exec[name]
		ti := ToolInfo{Name: name, Kind: "exec", Description: et.cfg.Description}
		if len(et.cfg.ArgsSchema) > 0 {
			ti.ArgsSchema = et.cfg.ArgsSchema
		}
		out = append(out, ti)
	}
	return out
}

func (s *Service) toolsBuiltin() Builtin {
	return Builtin{
		Description: "the tools this endpoint serves, with their argument schemas",
		Run: func(context.Context, gateway.Host, *Request) (any, error) {
			return map[string]any{"tools": s.List()}, nil
		},
	}
}
