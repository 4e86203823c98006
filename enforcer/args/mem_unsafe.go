package args

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// processVMReadv is process_vm_readv(2) with one iovec on each side, issued
// as a raw syscall: it never blocks for long (the watchee is stopped in its
// notification), and skipping the Go scheduler's entersyscall/exitsyscall
// takes a measurable share off every notification (see BenchmarkTrappedOpen).
func processVMReadv(tid int, local *unix.Iovec, remote *unix.RemoteIovec) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_PROCESS_VM_READV, uintptr(tid),
		uintptr(unsafe.Pointer(local)), 1, uintptr(unsafe.Pointer(remote)), 1, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
