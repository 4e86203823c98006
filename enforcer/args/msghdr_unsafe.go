package args

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// processVMReadvN reads the remote iovecs into dst with one
// process_vm_readv. unix.Syscall, not RawSyscall: sends copy up to
// MaxRWCount bytes, off the notify loop.
func processVMReadvN(tid int, dst []byte, remote []unix.RemoteIovec) (int, error) {
	local := unix.Iovec{Base: &dst[0]}
	local.SetLen(len(dst))
	n, _, e := unix.Syscall6(unix.SYS_PROCESS_VM_READV, uintptr(tid),
		uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote[0])), uintptr(len(remote)), 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
