package emulate

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSendmsg is sendmsg(2) with the destination and control bytes as vigil
// built them, passed byte for byte: the kernel validates them as it would
// have the watchee's. unix.Syscall, not RawSyscall: a send may block (a
// full socket buffer on a non-blocking retry loop never does, but a
// filesystem lookup of an AF_UNIX path can).
func rawSendmsg(fd int, data, name, ctl []byte, flags uint32) (int, unix.Errno) {
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(data) > 0 {
		iov.Base = &data[0]
		iov.SetLen(len(data))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(name) > 0 {
		msg.Name = &name[0]
		msg.Namelen = uint32(len(name))
	}
	if len(ctl) > 0 {
		msg.Control = &ctl[0]
		msg.SetControllen(len(ctl))
	}
	n, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// writeUint32 stores v at addr in the watchee thread tid, as put_user does:
// process_vm_writev, without FOLL_FORCE, so a read-only page is EFAULT.
func writeUint32(tid int, addr uint64, v uint32) unix.Errno {
	local := unix.Iovec{Base: (*byte)(unsafe.Pointer(&v))}
	local.SetLen(4)
	remote := unix.RemoteIovec{Base: uintptr(addr), Len: 4}
	n, _, e := unix.Syscall6(unix.SYS_PROCESS_VM_WRITEV, uintptr(tid),
		uintptr(unsafe.Pointer(&local)), 1, uintptr(unsafe.Pointer(&remote)), 1, 0)
	if e != 0 {
		if e == unix.ESRCH {
			return unix.ESRCH
		}
		return unix.EFAULT
	}
	if n != 4 {
		return unix.EFAULT
	}
	return 0
}
