// Package service is the service-manager layer behind `gatewayctl install`,
// `uninstall`, `start`, `stop`, `restart`, `status` and `doctor`: it installs
// a profile's units (systemd) or job (launchd) rendered by packages units and
// launchd, drives the service manager, reports the runtime state, and checks
// and repairs the installation.
//
// The systemd Manager talks to the systemd user or system manager over D-Bus
// (go-systemd, plus raw godbus calls for GetUnit, GetUnitFileState and
// PresetUnitFiles). The launchd Manager runs launchctl through an injectable
// function and parses its output leniently with launchd.ParsePrint.
//
// When the OS feature is absent, nothing is faked: Detect and NewSystemd
// return an error that names the fix (no systemd user manager: log in, or
// enable lingering), Detect on an OS with neither systemd nor launchd says so,
// and doctor checks that cannot run say "skipped" with the reason.
//
// Doctor checks have stable kebab-case names and a severity (ok, info,
// warning, error, failed, skipped); a panic inside one check becomes that
// check's "failed" result. With DoctorOptions.Fix, only safe, idempotent
// repairs are applied (rewrite the units from the template, daemon-reload,
// re-enable, restart once); everything else is reported as
// "manual fix required: <exact command>".
//
// Each manager is laid out the same way: systemd.go and launchd.go hold the
// manager (install, uninstall, start, stop, restart, status);
// systemd_doctor.go and launchd_doctor.go hold what the checks look at
// (gather), the checks, and the --fix plan (fixPlan, applyFix,
// applyManagerSteps). The doctor run itself (checks, --dry-run, repair,
// re-check) is runDoctor in service.go, shared by both.
package service
