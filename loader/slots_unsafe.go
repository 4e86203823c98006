package loader

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// mapShared maps the memory of a BPF_F_MMAPABLE array of n values of size
// bytes each, read-write and shared with the programs.
func mapShared(m *ebpf.Map, n, size int) ([]byte, error) {
	length := (n*size + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	b, err := unix.Mmap(m.FD(), 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", m, err)
	}
	return b, nil
}

// slot is tid's slot of the binding array.
func (l *Loader) slot(tid uint32) *vigilVigilSlot {
	i := uintptr(tid & (BindSlots - 1))
	return (*vigilVigilSlot)(unsafe.Pointer(&l.slotMem[i*slotSize]))
}

// hashed is the count of entries the bindings hash may hold
// (struct vigil_bind_ctl.hashed), shared with the programs.
func (l *Loader) hashed() *uint64 {
	return (*uint64)(unsafe.Pointer(&l.ctlMem[0]))
}

func loadKey(s *vigilVigilSlot) uint64 { return atomic.LoadUint64(&s.Key) }
func casKey(s *vigilVigilSlot, old, new uint64) bool {
	return atomic.CompareAndSwapUint64(&s.Key, old, new)
}

// bindCtlSize is the size of struct vigil_bind_ctl.
const bindCtlSize = int(unsafe.Sizeof(vigilVigilBindCtl{}))

// sharedFilesSeen is how many thread groups the programs ever entered in
// shared_files (struct vigil_bind_ctl.shared_files). It is read with a
// locked add of zero, a full barrier: the binding just published — through
// the slot's compare-and-swap or the bindings hash's update syscall — is
// visible to the programs before the count is read.
func (l *Loader) sharedFilesSeen() uint64 {
	return atomic.AddUint64((*uint64)(unsafe.Pointer(&l.ctlMem[8])), 0)
}

// ViewEpoch is struct vigil_bind_ctl.view_epoch: the programs move it when
// a filtered thread enters and again when it leaves a syscall that may change
// what the emulator snapshots of a caller (credentials, groups, capabilities,
// umask, root, namespaces, limits) or that makes a task. A snapshot tagged
// with the value read before it was taken holds while the value is the same
// (docs/design.md §2, rule 9). The programs count only while the syscall
// tracepoints are attached, so ViewEpoch attaches them if they were not
// (lazy.go), which moves the epoch. ok is false when the page is not mapped
// (before Load maps it, after Close) or the tracepoints cannot be attached:
// then nothing counts, and no snapshot may be reused.
func (l *Loader) ViewEpoch() (epoch uint64, ok bool) {
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	if l.ctlMem == nil || l.needSyscalls() != nil {
		return 0, false
	}
	return atomic.LoadUint64(l.viewEpoch()), true
}

// viewEpoch is struct vigil_bind_ctl.view_epoch in the mapped page.
func (l *Loader) viewEpoch() *uint64 {
	return (*uint64)(unsafe.Pointer(&l.ctlMem[unsafe.Offsetof(vigilVigilBindCtl{}.ViewEpoch)]))
}

// CommEpoch is struct vigil_bind_ctl.comm_epoch: task_rename and
// sched_process_exec (attached for good, unlike the syscall tracepoints)
// move it whenever a watched thread gets a new comm: an exec, PR_SET_NAME, a
// write to /proc/<tid>/comm. A comm read from /proc after the value was read
// is still the thread's while the value holds. ok is false when the page is
// not mapped (before Load maps it, after Close).
func (l *Loader) CommEpoch() (epoch uint64, ok bool) {
	l.unmapMu.RLock()
	defer l.unmapMu.RUnlock()
	if l.ctlMem == nil {
		return 0, false
	}
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&l.ctlMem[unsafe.Offsetof(vigilVigilBindCtl{}.CommEpoch)]))), true
}
