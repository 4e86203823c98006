package doctor

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// notifSizes mirrors struct seccomp_notif_sizes.
type notifSizes struct {
	notif, resp, data uint16
}

func getNotifSizes() (notifSizes, error) {
	var s notifSizes
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s)))
	if e != 0 {
		return s, e
	}
	return s, nil
}

// actionAvailable asks SECCOMP_GET_ACTION_AVAIL whether the kernel knows a
// filter return action.
func actionAvailable(action uint32) error {
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action)))
	if e != 0 {
		return e
	}
	return nil
}

// installListener loads prog on the calling thread with flags and returns
// the listener fd.
func installListener(prog []unix.SockFilter, flags uintptr) (int, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}
