package tools

import (
	"context"

	"github.com/gatewayd/gatewayd/daemon/gateway"
)

// CoreBuiltins returns the built-in tools gateway.status and
// gateway.health: exactly the payloads of the core's status and health
// methods. (gateway.tools, the list of tools, is always added by New.)
func CoreBuiltins() map[string]Builtin {
	return map[string]Builtin{
		"gateway.status": {
			Description: "the gateway's status: version, profile, uptime, connections, paths",
			Run: func(_ context.Context, h gateway.Host, _ *Request) (any, error) {
				return h.StatusReport(), nil
			},
		},
		"gateway.health": {
			Description: "the gateway's health: ok, uptime, connections",
			Run: func(_ context.Context, h gateway.Host, _ *Request) (any, error) {
				return h.HealthReport(), nil
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
