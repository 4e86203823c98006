package launch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// installFilter loads prog on the calling thread and returns the listener.
// WAIT_KILLABLE_RECV (Linux 5.19) keeps Go's constant SIGURG preemption
// signals from interrupting a watchee's pending notification; older kernels
// get a plain listener. Without CAP_SYS_ADMIN the kernel demands
// no_new_privs, which is set only then so root watchees keep setuid
// semantics.
func installFilter(prog []byte, interruptible bool) (int, bool, error) {
	if len(prog) == 0 || len(prog)%8 != 0 || len(prog)/8 > 0xffff {
		return -1, false, fmt.Errorf("invalid seccomp program length %d", len(prog))
	}
	fprog := unix.SockFprog{
		Len:    uint16(len(prog) / 8),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0])),
	}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if interruptible {
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	for attempt := 0; attempt < 3; attempt++ {
		fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
		switch {
		case e == 0:
			return int(fd), flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0, nil
		case e == unix.EINVAL && flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0:
			flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		case e == unix.EACCES:
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				return -1, false, fmt.Errorf("setting no_new_privs: %w", err)
			}
		case e == unix.EBUSY:
			return -1, false, errors.New("installing seccomp filter: this process already has a seccomp listener (nested supervision is not supported)")
		case e == unix.EPERM && underSeccompFilter():
			// A filter above refuses new listeners: another supervisor's
			// hardening (vigil's own refuses them to its watchees).
			return -1, false, errors.New("installing seccomp filter: operation not permitted by the seccomp filter this process already runs under (is it supervised? vigil under vigil is not supported)")
		default:
			return -1, false, fmt.Errorf("installing seccomp filter: %w", e)
		}
	}
	return -1, false, errors.New("installing seccomp filter: kernel refused every flag combination")
}

// setComm sets the calling thread's comm (PR_SET_NAME; at most 15 bytes).
func setComm(name string) {
	b := append([]byte(name), 0)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// underSeccompFilter reports whether the calling process runs under a
// seccomp filter (Seccomp: 2 in /proc/self/status).
func underSeccompFilter() bool {
	b, err := os.ReadFile("/proc/self/status")
	return err == nil && bytes.Contains(b, []byte("\nSeccomp:\t2\n"))
}
