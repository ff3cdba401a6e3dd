// Package logs sets up the gateway's logging and serves its log file.
//
// New builds one *slog.Logger that writes human text lines to stderr and
// JSON lines (slog.JSONHandler) to a per-profile file with size rotation
// (gatewayd.jsonl, gatewayd.jsonl.1 … .N). Under systemd, where
// $JOURNAL_STREAM is set, each stderr line carries a "<N>" syslog priority
// prefix and no timestamp, so journald records the right priority and its own
// time. Without journald the stderr lines carry their own timestamps. Without
// a file path only stderr is written. A file that cannot be written (disk
// full, removed directory) never stops logging to stderr: failures are
// counted and reported once on stderr, and every later record tries the file
// again.
//
// Tail reads the file by byte cursor for the logs.tail protocol method and
// `gatewayctl logs --follow`; LastError finds the newest ERROR record for
// `gatewayctl status`. A missing file reads as empty.
package logs
