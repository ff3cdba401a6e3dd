//go:build darwin

package listen

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// launch_activate_socket and free come from libSystem without cgo, the way
// golang.org/x/sys/unix calls libc on darwin: the linker imports the symbol
// (cgo_import_dynamic), an assembly trampoline jumps to it, and the runtime's
// syscall.syscall switches to the system stack and calls the trampoline.

//go:cgo_import_dynamic libc_launch_activate_socket launch_activate_socket "/usr/lib/libSystem.B.dylib"
//go:cgo_import_dynamic libc_free free "/usr/lib/libSystem.B.dylib"

var (
	libc_launch_activate_socket_trampoline_addr uintptr
	libc_free_trampoline_addr                   uintptr
)

//go:linkname syscall_syscall syscall.syscall
func syscall_syscall(fn, a1, a2, a3 uintptr) (r1, r2 uintptr, err syscall.Errno)

// launchActivateSocket calls launch_activate_socket(3) for the Sockets key
// name and returns the descriptors launchd passed.
func launchActivateSocket(name string) ([]int, error) {
	cname, err := syscall.BytePtrFromString(name)
	if err != nil {
		return nil, fmt.Errorf("launchd socket name %q: %w", name, err)
	}
	var (
		fds *int32 // malloc'd by libSystem, freed below
		cnt uintptr
	)
	r1, _, _ := syscall_syscall(libc_launch_activate_socket_trampoline_addr,
		uintptr(unsafe.Pointer(cname)), uintptr(unsafe.Pointer(&fds)), uintptr(unsafe.Pointer(&cnt)))
	runtime.KeepAlive(cname)
	// The function returns an errno value (0 on success) as a C int.
	if code := syscall.Errno(uint32(int32(r1))); code != 0 {
		return nil, launchdError(code)
	}
	if fds == nil {
		return nil, nil
	}
	out := make([]int, 0, cnt)
	for _, fd := range unsafe.Slice(fds, cnt) {
		out = append(out, int(fd))
		syscall.CloseOnExec(int(fd))
	}
	syscall_syscall(libc_free_trampoline_addr, uintptr(unsafe.Pointer(fds)), 0, 0)
	return out, nil
}

func launchdError(code syscall.Errno) error {
	var hint string
	switch {
	case errors.Is(code, syscall.ENOENT):
		hint = "no socket with that name under Sockets in the job's plist"
	case errors.Is(code, syscall.ESRCH):
		hint = "this process was not started by launchd"
	case errors.Is(code, syscall.EALREADY):
		hint = "the socket was already activated by this process"
	default:
		hint = "launch_activate_socket failed"
	}
	return fmt.Errorf("%s: %w", hint, code)
}
