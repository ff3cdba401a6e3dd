package listen

import (
	"fmt"
	"os"
	"sync"
)

type launchdResult struct {
	files []*os.File
	err   error
}

// launchdCache remembers launch_activate_socket results per socket key, so
// each key is asked for once per process and later Acquire calls get the
// same sockets back.
var launchdCache struct {
	sync.Mutex
	m map[string]launchdResult
}

// launchdFiles returns the sockets launchd holds for this job under name.
func launchdFiles(name string) ([]*os.File, error) {
	launchdCache.Lock()
	defer launchdCache.Unlock()
	if r, ok := launchdCache.m[name]; ok {
		return r.files, r.err
	}
	var r launchdResult
	fds, err := launchActivateSocket(name)
	if err != nil {
		r.err = err
	} else {
		for _, fd := range fds {
			r.files = append(r.files, os.NewFile(uintptr(fd), name))
		}
	}
	if launchdCache.m == nil {
		launchdCache.m = map[string]launchdResult{}
	}
	launchdCache.m[name] = r
	return r.files, r.err
}

// acquireLaunchd returns listeners for the launchd socket key name.
func acquireLaunchd(name string) ([]Listener, error) {
	files, err := launchdFiles(name)
	if err != nil {
		return nil, fmt.Errorf("listen on launchd:%s: %w", name, err)
	}
	ls := listenersFromFiles(files, KindLaunchd)
	if len(ls) == 0 {
		return nil, fmt.Errorf("listen on launchd:%s: launchd passed %d sockets but none is a listening stream socket; check SockType in the plist", name, len(files))
	}
	return ls, nil
}
