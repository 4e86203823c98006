package enforcer_test

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runHelper is a Go watchee for behaviour the C probe does not cover. It
// prints one result line like the probe.
func runHelper(name string, argv []string) int {
	var errno unix.Errno
	switch name {
	case "chroot-open":
		// chroot(argv[0]), then open each further argument.
		if err := unix.Chroot(argv[0]); err != nil {
			fmt.Printf("setup chroot: %v\n", err)
			return 3
		}
		for _, p := range argv[1:] {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				fmt.Printf("err %s\n", unix.ErrnoName(err.(unix.Errno)))
				continue
			}
			unix.Close(fd)
			fmt.Println("ok")
		}
		return 0
	case "chroot-openw", "chroot-unlink":
		// chroot(argv[0]), then open each further argument for appending,
		// or unlink it.
		if err := unix.Chroot(argv[0]); err != nil {
			fmt.Printf("setup chroot: %v\n", err)
			return 3
		}
		for _, p := range argv[1:] {
			var err error
			if name == "chroot-unlink" {
				err = unix.Unlink(p)
			} else {
				var fd int
				if fd, err = unix.Open(p, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0); err == nil {
					unix.Close(fd)
				}
			}
			if err != nil {
				fmt.Printf("err %s\n", unix.ErrnoName(err.(unix.Errno)))
				continue
			}
			fmt.Println("ok")
		}
		return 0
	case "seccomp-listener":
		// A one-instruction program: RET ALLOW.
		insns := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
		prog := unix.SockFprog{Len: 1, Filter: &insns[0]}
		_, _, errno = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
			unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	case "io_uring":
		var params [120]byte
		_, _, errno = unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)
	case "ptrace":
		_, _, errno = unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
	default:
		fmt.Printf("usage: unknown helper %s\n", name)
		return 2
	}
	if errno != 0 {
		fmt.Printf("err %s\n", unix.ErrnoName(errno))
	} else {
		fmt.Println("ok")
	}
	return 0
}
