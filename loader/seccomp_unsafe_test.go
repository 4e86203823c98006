package loader

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// allowAllFilter puts every thread of the helper under a seccomp filter
// that allows everything: the programs only look for bindings of threads
// under a filter (the enforcer binds threads that wait in a seccomp
// notification), so a watchee of these tests needs one.
func allowAllFilter() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	insns := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return errno
	}
	return nil
}
