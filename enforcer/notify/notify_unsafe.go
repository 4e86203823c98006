package notify

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	sizeofNotif = int(unsafe.Sizeof(Notif{}))
	sizeofResp  = int(unsafe.Sizeof(Resp{}))
	sizeofData  = int(unsafe.Sizeof(Data{}))
)

// Compile-time checks of the ABI sizes (include/uapi/linux/seccomp.h).
var (
	_ [80 - sizeofNotif]struct{}
	_ [sizeofNotif - 80]struct{}
	_ [24 - sizeofResp]struct{}
	_ [sizeofResp - 24]struct{}
	_ [64 - sizeofData]struct{}
	_ [sizeofData - 64]struct{}
	_ [24 - unsafe.Sizeof(AddFD{})]struct{}
)

func getSizes() (Sizes, error) {
	var s Sizes
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s)))
	if e != 0 {
		return s, e
	}
	return s, nil
}

// RECV blocks, so it goes through unix.Syscall and the Go scheduler can hand
// this thread's P to other goroutines (a raw blocking call would stall
// garbage collection until the next notification). SEND and ID_VALID never
// block and are issued raw: entersyscall/exitsyscall around them is a
// measurable share of a notification's cost.

func ioctlNotif(fd int, req uint, n *Notif) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(n)))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlResp(fd int, req uint, r *Resp) error {
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(r)))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlID(fd int, req uint, id *uint64) error {
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(id)))
	if e != 0 {
		return e
	}
	return nil
}

func ioctlAddFD(fd int, req uint, a *AddFD) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(a)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// ioctlPtr passes a plain integer argument (SET_FLAGS takes the flags by value).
func ioctlPtr(fd int, req uint, arg uintptr) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
	if e != 0 {
		return e
	}
	return nil
}
