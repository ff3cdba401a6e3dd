//go:build !linux

package service

// FindConflicts finds competing processes from /proc; elsewhere it finds
// none (launchd hosts have no /proc, and lsof output is not parsed).
func FindConflicts(q ConflictQuery) ([]Conflict, error) { return nil, nil }
