package args

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// processVMReadv is process_vm_readv(2) with one iovec on each side. It is
// unix.Syscall6, not RawSyscall6, although the watchee is stopped in its
// notification and a read is normally done in microseconds: a watchee can
// make it block for as long as it likes (memory registered with
// userfaultfd, or mapped from a FUSE file its own helper never answers).
// Inside a raw syscall the Go runtime cannot stop the thread, so the next
// garbage collection's stop-the-world waited for the stalled read and froze
// every goroutine of vigil — every other call, and under the agent every
// other container (TestAStalledReadStallsOnlyItsOwnCall hung when a GC
// came during the stall).
func processVMReadv(tid int, local *unix.Iovec, remote *unix.RemoteIovec) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_PROCESS_VM_READV, uintptr(tid),
		uintptr(unsafe.Pointer(local)), 1, uintptr(unsafe.Pointer(remote)), 1, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
