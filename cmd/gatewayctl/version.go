package main

import (
	"context"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/gatewayd/gatewayd/daemon/buildinfo"
)

// versionProbeTimeout bounds the attempt to ask the gateway its version.
const versionProbeTimeout = 3 * time.Second

// versionReport is the stable JSON of `gatewayctl version --json`: client
// always; server null when no gateway answered (serverError says why).
type versionReport struct {
	Client      buildinfo.Info `json:"client"`
	Server      *serverVersion `json:"server"`
	ServerError string         `json:"serverError,omitempty"`
}

type serverVersion struct {
	URL      string `json:"url"`
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	BuildID  string `json:"buildId,omitempty"`
}

func (a *app) versionCommand() *ffcli.Command {
	fs := a.flagSet("version")
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "gatewayctl version [--json]",
		ShortHelp:  "Print gatewayctl's build information, and the gateway's version when one answers.",
		LongHelp: `Prints gatewayctl's version, commit, Go version and platform. When a gateway
answers at the target (within 3 s or --timeout, whichever is shorter), its
version and protocol from hello-ok are printed too. --json prints
{"client":{version,commit,goVersion,os,arch},"server":{url,version,protocol,buildId?}|null,"serverError"?}.
An unreachable gateway is not an error here: exit status 0.`,
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usageErr(fmt.Errorf("version takes no arguments, got %q", args))
			}
			return a.version(ctx)
		},
	}
}

func (a *app) version(ctx context.Context) error {
	r := versionReport{Client: buildinfo.Get()}
	if t, err := a.resolve(); err != nil {
		r.ServerError = err.Error()
	} else {
		if a.g.timeout > versionProbeTimeout {
			a.g.timeout = versionProbeTimeout
		}
		cctx, cancel := a.callCtx(ctx)
		c, err := a.dial(cctx, t, readScopes)
		cancel()
		if err != nil {
			r.ServerError = err.Error()
		} else {
			h := c.Hello()
			r.Server = &serverVersion{URL: t.URL, Version: h.Server.Version, Protocol: h.Protocol, BuildID: h.Server.BuildID}
			c.Close()
		}
	}
	if a.g.json {
		return writeValue(a.stdout, r)
	}
	ci := r.Client
	commit := ci.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(a.stdout, "gatewayctl %s (commit %s, %s, %s/%s)\n", ci.Version, commit, ci.GoVersion, ci.OS, ci.Arch)
	if r.Server != nil {
		fmt.Fprintf(a.stdout, "gateway    %s (protocol %d) at %s\n", r.Server.Version, r.Server.Protocol, r.Server.URL)
	} else {
		fmt.Fprintf(a.stdout, "gateway    unknown: %s\n", r.ServerError)
	}
	return nil
}
