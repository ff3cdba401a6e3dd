package config

import "fmt"

// LoggingConfig is the "logging" section.
type LoggingConfig struct {
	Level        string `json:"level,omitempty"`        // debug | info (default) | warn | error
	MaxFileBytes int64  `json:"maxFileBytes,omitempty"` // default 10 MiB
	MaxFiles     int    `json:"maxFiles,omitempty"`     // rotated files kept, default 3
}

// Defaults of the "logging" section.
const (
	DefaultLogLevel     = "info"
	DefaultMaxFileBytes = 10 << 20
	DefaultMaxFiles     = 3

	maxLogFiles = 100
)

var logLevels = []string{"debug", "info", "warn", "error"}

func (l *LoggingConfig) withDefaults() {
	setDefault(&l.Level, DefaultLogLevel)
	setDefault(&l.MaxFileBytes, DefaultMaxFileBytes)
	setDefault(&l.MaxFiles, DefaultMaxFiles)
}

// unshare: every field is a value.
func (l *LoggingConfig) unshare() {}

func (l *LoggingConfig) validate() *Error {
	return firstError(
		func() *Error { return oneOf("logging.level", l.Level, logLevels) },
		func() *Error {
			if l.MaxFileBytes < 0 {
				return &Error{Key: "logging.maxFileBytes", Msg: fmt.Sprintf("%d is negative (use a size in bytes, or leave it out for %d)", l.MaxFileBytes, DefaultMaxFileBytes)}
			}
			return nil
		},
		func() *Error { return intRange("logging.maxFiles", l.MaxFiles, 0, maxLogFiles) },
	)
}
