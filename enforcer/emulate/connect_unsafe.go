package emulate

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawConnect passes addr to connect(2) byte for byte: vigil connects with
// exactly the bytes it vetted, whatever their family or length, and the
// kernel validates them as it would have the watchee's. unix.Syscall, not
// RawSyscall: a blocking connect must release the P.
func rawConnect(fd int, addr []byte) unix.Errno { return sockaddrCall(unix.SYS_CONNECT, fd, addr) }

// rawBind passes addr to bind(2) byte for byte, as rawConnect does.
func rawBind(fd int, addr []byte) unix.Errno { return sockaddrCall(unix.SYS_BIND, fd, addr) }

func sockaddrCall(nr uintptr, fd int, addr []byte) unix.Errno {
	var p unsafe.Pointer
	if len(addr) > 0 {
		p = unsafe.Pointer(&addr[0])
	}
	_, _, e := unix.Syscall(nr, uintptr(fd), uintptr(p), uintptr(len(addr)))
	return e
}
