package emulate

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands and the attach type the iterator link needs
// (include/uapi/linux/bpf.h).
const (
	bpfLinkCreate = 28
	bpfIterCreate = 33
	bpfTraceIter  = 28 // BPF_TRACE_ITER
)

// linkIterToTask creates a BPF_TRACE_ITER link for prog restricted to one
// thread (union bpf_iter_link_info.task.tid, Linux 6.1), so reading it walks
// only that thread's descriptor table. cilium/ebpf's AttachIter cannot pass
// the task.
func linkIterToTask(prog, tid int) (int, error) {
	// union bpf_iter_link_info { ...; struct { __u32 tid, pid, pid_fd; } task; }
	info := [3]uint32{uint32(tid), 0, 0}
	// union bpf_attr, link_create: prog_fd, target_fd, attach_type, flags,
	// then iter_info (an aligned u64 pointer) and iter_info_len. A pointer
	// field, not an integer, so that the runtime keeps info where the
	// kernel will read it.
	attr := struct {
		progFd, targetFd, attachType, flags uint32
		iterInfo                            unsafe.Pointer
		iterInfoLen, _                      uint32
	}{progFd: uint32(prog), attachType: bpfTraceIter, iterInfo: unsafe.Pointer(&info), iterInfoLen: uint32(unsafe.Sizeof(info))}
	fd, _, e := unix.Syscall(unix.SYS_BPF, bpfLinkCreate, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// createIter makes a readable iterator from an iterator link.
func createIter(link int) (int, error) {
	var attr [8]byte // iter_create: link_fd, flags
	*(*uint32)(unsafe.Pointer(&attr[0])) = uint32(link)
	fd, _, e := unix.Syscall(unix.SYS_BPF, bpfIterCreate, uintptr(unsafe.Pointer(&attr)), uintptr(len(attr)))
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}
