// Package units is the single source of truth for what gatewayd's systemd
// units look like. It renders the .socket and .service unit files for a
// profile and scope from embedded templates (used by `gatewayctl install`,
// `gatewayctl doctor` and `make package`), parses unit files and drop-ins,
// and compares an installed unit with the rendered one, classifying the
// differences in systemd-delta's vocabulary (masked, equivalent, extended,
// ...).
//
// The package is pure: it never talks to systemd, reads no files and works
// the same on every OS. Whether systemd is present is the caller's concern
// (package platform); on a host without systemd the rendered files are still
// valid text, they just have no one to load them.
package units
