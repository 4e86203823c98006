package loader

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The binding array (bpf/vigil.h, struct vigil_slot) is written through its
// mmap, without a syscall: thread tid binds in slot tid&(BindSlots-1), whose
// key says which thread owns it and whether its binding is complete. A
// binding reaches the programs as follows: Bind claims the slot (its key
// from 0, or from tid's own, to tid), writes the binding, then publishes the
// key (tid | published); the caller then answers CONTINUE, whose ioctl and
// the watchee's wake-up order those stores before the watchee's sys_enter.
// Only a published key equal to the running thread's makes a binding, so a
// slot of another thread, or one being written, is no binding; and Bind
// never takes a slot another thread's pending binding holds, whose check
// would otherwise be lost: that binding goes to the bindings hash, as all
// did before, counted in bind_ctl so that the programs look there only
// while the hash may hold one. Bind and Unbind run under bindMu; the
// programs free a slot (key 0) when they consume its binding or its thread
// exits, and claim one only with a compare-and-swap (an exec moving a
// binding to the thread group leader's id).

// mapBindings maps the slots and the bookkeeping the binding write uses.
func (l *Loader) mapBindings() error {
	var err error
	if l.slotMem, err = mapShared(l.objs.Slots, BindSlots, slotSize); err != nil {
		return err
	}
	if l.ctlMem, err = mapShared(l.objs.BindCtl, 1, bindCtlSize); err != nil {
		return err
	}
	l.hashedTids = make(map[uint32]struct{})
	return nil
}

// unmapBindings undoes mapBindings; Bind fails and Unbind does nothing
// afterwards.
func (l *Loader) unmapBindings() error {
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	l.unmapMu.Lock()
	defer l.unmapMu.Unlock()
	var errs []error
	for _, m := range [][]byte{l.slotMem, l.ctlMem} {
		if m != nil {
			errs = append(errs, unix.Munmap(m))
		}
	}
	l.slotMem, l.ctlMem = nil, nil
	return errors.Join(errs...)
}

// maxHashedTids bounds the threads Loader remembers as bound in the hash
// before it forgets those whose entry the programs consumed.
const maxHashedTids = 256

// publish makes l.bindVal tid's binding. The caller holds bindMu.
func (l *Loader) publish(tid uint32) error {
	if l.slotMem == nil {
		return fmt.Errorf("binding thread %d: %w", tid, os.ErrClosed)
	}
	s := l.slot(tid)
	k := loadKey(s)
	if (k == 0 && casKey(s, 0, uint64(tid))) || (k != 0 && uint32(k) == tid && casKey(s, k, uint64(tid))) {
		if _, ok := l.hashedTids[tid]; ok {
			// An older binding of tid waits in the hash; the slot wins,
			// but drop it rather than leave it to a later thread.
			l.unhash(tid)
		}
		s.B = l.bindVal
		if !casKey(s, uint64(tid), uint64(tid)|slotPublished<<32) {
			// The exit program freed the slot meanwhile: tid is gone.
			return fmt.Errorf("binding thread %d: %w", tid, unix.ESRCH)
		}
		return nil
	}
	return l.hash(tid)
}

// hash writes l.bindVal as tid's binding in the bindings hash: tid's slot
// holds another thread's pending binding. The count goes up before the
// entry exists and down only after a delete removed one, so the programs
// never skip the hash while it holds a binding.
func (l *Loader) hash(tid uint32) error {
	l.bindKey = tid
	for range 2 {
		atomic.AddUint64(l.hashed(), 1)
		err := l.objs.Bindings.Update(&l.bindKey, &l.bindVal, ebpf.UpdateNoExist)
		if err == nil {
			l.remember(tid)
			return nil
		}
		atomic.AddUint64(l.hashed(), ^uint64(0))
		if !errors.Is(err, ebpf.ErrKeyExist) {
			return fmt.Errorf("binding thread %d: %w", tid, err)
		}
		l.unhash(tid) // an older binding of tid: replace it
	}
	return fmt.Errorf("binding thread %d: %w", tid, ebpf.ErrKeyExist)
}

// remember notes that tid may have an entry in the hash, for Unbind;
// entries the programs consumed are forgotten when there are many.
func (l *Loader) remember(tid uint32) {
	if len(l.hashedTids) >= maxHashedTids {
		var v vigilVigilBinding
		for t := range l.hashedTids {
			if err := l.objs.Bindings.Lookup(&t, &v); errors.Is(err, ebpf.ErrKeyNotExist) {
				delete(l.hashedTids, t)
			}
		}
	}
	l.hashedTids[tid] = struct{}{}
}

// unhash deletes tid's entry from the hash, if it has one.
func (l *Loader) unhash(tid uint32) {
	delete(l.hashedTids, tid)
	l.bindKey = tid
	if err := l.objs.Bindings.Delete(&l.bindKey); err == nil {
		atomic.AddUint64(l.hashed(), ^uint64(0))
	}
}

// withdraw removes tid's pending binding, in its slot or the hash. The
// caller holds bindMu.
func (l *Loader) withdraw(tid uint32) {
	if l.slotMem == nil {
		return
	}
	s := l.slot(tid)
	if k := loadKey(s); k != 0 && uint32(k) == tid {
		casKey(s, k, 0)
	}
	if _, ok := l.hashedTids[tid]; ok {
		l.unhash(tid)
	}
}
