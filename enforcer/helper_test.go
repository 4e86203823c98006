package enforcer_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
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
	case "swap-trunc":
		// argv: link other iterations. A thread keeps exchanging link and
		// other (a FIFO decoy and a protected file); the main thread opens
		// link for writing with O_TRUNC|O_NONBLOCK. Prints "ok <opened>".
		return swapTrunc(argv[0], argv[1], atoiOr(argv[2], 1000))
	case "fd-swap-trunc":
		// argv: allowed protected iterations. A thread keeps dup2-ing a
		// descriptor of the allowed file and an O_PATH one of the protected
		// file onto fd 50; the main thread reopens /proc/self/fd/50 with
		// O_WRONLY|O_TRUNC. Prints "ok <opened>".
		return fdSwapTrunc(argv[0], argv[1], atoiOr(argv[2], 1000))
	case "opath-reopen":
		// argv: path. Opens path O_PATH, then reopens it for writing
		// through /proc/self/fd/N and /dev/fd/N.
		fd, err := unix.Open(argv[0], unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			fmt.Printf("setup: %v\n", err)
			return 3
		}
		for _, p := range []string{"/proc/self/fd/", "/dev/fd/"} {
			w, err := unix.Open(p+strconv.Itoa(fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				fmt.Printf("err %s\n", unix.ErrnoName(err.(unix.Errno)))
				continue
			}
			unix.Close(w)
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
	case "fexecve":
		// glibc's fexecve(3): execveat(open(argv[0]), "", argv, environ,
		// AT_EMPTY_PATH). Prints only if the exec fails.
		errno = fexecve(argv)
	case "fexecve-thread":
		// The same from a thread other than the group's leader, whose
		// exec takes over the leader's id (de_thread).
		errno = onNonLeaderThread(func() unix.Errno { return fexecve(argv) })
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

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func swapTrunc(link, other string, n int) int {
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		for !stop.Load() {
			_ = unix.Renameat2(unix.AT_FDCWD, link, unix.AT_FDCWD, other, unix.RENAME_EXCHANGE)
		}
	}()
	opened := 0
	for i := 0; i < n; i++ {
		fd, err := unix.Open(link, unix.O_WRONLY|unix.O_TRUNC|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			opened++
			unix.Close(fd)
		}
	}
	stop.Store(true)
	<-done
	fmt.Printf("ok %d\n", opened)
	return 0
}

func fdSwapTrunc(allowed, protected string, n int) int {
	a, err := unix.Open(allowed, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Printf("setup: %v\n", err)
		return 3
	}
	p, err := unix.Open(protected, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Printf("setup: %v\n", err)
		return 3
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			src := a
			if i%2 == 1 {
				src = p
			}
			_ = unix.Dup2(src, 50)
		}
	}()
	opened := 0
	for i := 0; i < n; i++ {
		fd, err := unix.Open("/proc/self/fd/50", unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
		if err == nil {
			opened++
			unix.Close(fd)
		}
	}
	stop.Store(true)
	<-done
	fmt.Printf("ok %d\n", opened)
	return 0
}

func fexecve(argv []string) unix.Errno {
	fd, err := unix.Open(argv[0], unix.O_RDONLY, 0)
	if err != nil {
		return err.(unix.Errno)
	}
	empty, _ := unix.BytePtrFromString("")
	av, ev := cStrings(argv), cStrings(os.Environ())
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&av[0])), uintptr(unsafe.Pointer(&ev[0])), unix.AT_EMPTY_PATH, 0)
	return errno
}

// onNonLeaderThread runs f on a thread other than the thread group's leader
// and returns its result. A goroutine that finds itself on the leader keeps
// that thread locked (and waits for ever), so the next one cannot land there.
func onNonLeaderThread(f func() unix.Errno) unix.Errno {
	res := make(chan unix.Errno)
	var try func()
	try = func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if unix.Gettid() == unix.Getpid() {
			go try()
			select {}
		}
		res <- f()
	}
	go try()
	return <-res
}

// cStrings is a NULL-terminated array of C strings; a string with a NUL
// byte is cut there.
func cStrings(ss []string) []*byte {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		p, _ := unix.BytePtrFromString(s)
		out = append(out, p)
	}
	return append(out, nil)
}
