package units

import "strings"

// ExecStartOf returns the command lines of ExecStart= in the [Service]
// section, with any drop-ins applied in the order given (an empty
// ExecStart= clears earlier ones), each split into words as systemd does
// (quotes group, backslash escapes) and without the special-executable
// prefixes (-, @, :, +, !). It returns nil if the unit or a drop-in does not
// parse. Doctor's secret-in-unit check reads secrets passed as flags here.
func ExecStartOf(data []byte, dropins ...[]byte) [][]string {
	u, err := parseAll(data, dropins)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, v := range u.Values("Service", "ExecStart") {
		words := splitWords(v)
		if len(words) == 0 {
			continue
		}
		words[0] = strings.TrimLeft(words[0], "-@:+!")
		out = append(out, words)
	}
	return out
}
