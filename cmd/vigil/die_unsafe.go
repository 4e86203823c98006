package main

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dieBy ends vigil by sig, the signal that killed the command it ran, so
// that its parent sees what it would have seen without vigil: a shell
// prints "Segmentation fault" and, for SIGINT, stops the script it runs
// (bash waits for a child killed by SIGINT and then kills itself), python
// reports a negative returncode. strace and timeout do the same. The Go
// runtime keeps handlers of its own for most signals, so the default action
// is restored with a raw rt_sigaction, and the signal is sent to this very
// thread with it unblocked. vigil is not dumpable, so a core-dumping signal
// leaves no core of vigil's. If sig does not end the process, dieBy returns
// and the caller exits with 128+sig.
func dieBy(sig syscall.Signal) {
	runtime.LockOSThread()
	// struct kernel_sigaction: handler (SIG_DFL is 0), flags, restorer, mask.
	var act [4]uint64
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
		return
	}
	set := uint64(1) << (uint(sig) - 1)
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0); e != 0 {
		return
	}
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
}
