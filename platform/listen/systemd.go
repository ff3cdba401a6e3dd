package listen

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"
)

// systemdFiles returns the sockets systemd passed to this process. The
// environment (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) is read once per
// process and then unset, so child processes do not inherit it; the files
// stay open for the life of the process so every Acquire can hand them out
// again (an in-process restart keeps its sockets).
var systemdFiles = sync.OnceValue(func() []*os.File {
	// activation.Files is what activation.ListenersWithNames uses
	// underneath; it keeps the order systemd passed the fds in.
	return activation.Files(true)
})

// acquireSystemd returns listeners for every activation fd named name.
func acquireSystemd(name string) ([]Listener, error) {
	files := systemdFiles()
	if len(files) == 0 {
		return nil, fmt.Errorf("listen on systemd:%s: no sockets were passed by systemd (LISTEN_FDS unset or for another process); start gatewayd through its .socket unit or listen on a host:port", name)
	}
	var matched []*os.File
	for _, f := range files {
		if f.Name() == name {
			matched = append(matched, f)
		}
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("listen on systemd:%s: no socket with that name was passed (available: %s); set FileDescriptorName=%s in the socket unit or use one of the available names", name, availableNames(files), name)
	}
	ls := listenersFromFiles(matched, KindSystemd)
	if len(ls) == 0 {
		return nil, fmt.Errorf("listen on systemd:%s: the socket is not a listening stream socket; use ListenStream= in the socket unit", name)
	}
	return ls, nil
}

func availableNames(files []*os.File) string {
	seen := map[string]bool{}
	var names []string
	for _, f := range files {
		if !seen[f.Name()] {
			seen[f.Name()] = true
			names = append(names, f.Name())
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
