package units

import (
	"reflect"
	"testing"
)

func TestExecStartOf(t *testing.T) {
	unit := []byte("[Service]\nExecStart=-/usr/bin/gatewayd --token \"a b\" --x='y'\n")
	if got, want := ExecStartOf(unit), [][]string{{"/usr/bin/gatewayd", "--token", "a b", "--x=y"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ExecStartOf = %q, want %q", got, want)
	}
	dropin := []byte("[Service]\nExecStart=\nExecStart=/opt/gw --password=p\n")
	if got, want := ExecStartOf(unit, dropin), [][]string{{"/opt/gw", "--password=p"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ExecStartOf with a resetting drop-in = %q, want %q", got, want)
	}
	if got := ExecStartOf([]byte("not a unit\x00")); got != nil {
		t.Errorf("ExecStartOf(garbage) = %q, want nil", got)
	}
}
