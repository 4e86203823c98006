package loader

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"
)

// Lazy attachment of the syscall tracepoints.
//
// Attaching any program to the raw_syscalls tracepoints switches every task
// of the host onto the kernel's slow syscall entry and exit path
// (SYSCALL_WORK_SYSCALL_TRACEPOINT): measured here, about 15% on a getpid of
// a process vigil does not even watch, whatever the programs do. The
// sys_enter and sys_exit programs are only needed while a binding is pending
// (a CONTINUE grant between its write and the call's exit), while a doomed
// child has not yet returned to user mode, and while the emulator reuses a
// snapshot (the view epoch must move). So with Options.DetachIdle set they
// are attached on demand — by Bind, and by ViewEpoch — and detached once
// nothing needed them for a while and nothing is pending.
//
// Soundness at the two edges:
//   - Attach: a call that entered before it never runs sys_enter (the kernel
//     reads a task's syscall work once at entry) but does run sys_exit (read
//     again at exit). Bind attaches before it writes the binding, and the
//     bound thread waits in seccomp until the CONTINUE, so every bound call
//     meets sys_exit (and sched_process_exec/fork, attached for good); the
//     programs check a binding sys_enter never saw (ARMED) like one it
//     passed. The view epoch is bumped after each attach: whatever changed
//     while nothing counted invalidates every older snapshot, and a change in
//     flight at the attach is counted at its exit (sys_exit looks at every
//     filtered thread's syscall number).
//   - Detach: only under bindMu, which every binding write holds, and only
//     when no slot is published or claimed, the bindings hash may hold
//     nothing, no doomed child waits for its sys_exit and no exec moved a
//     binding between slots during the scan. A child doomed
//     while detached (UNTRACKED needs no binding) dies at its first sys_exit
//     after the next attach, which precedes any bound grant of it.
//
// Capturing loaders (observe, audit correlation) stay attached: their
// events are for every call.

// DefaultDetachIdle is how long the product leaves the syscall tracepoints
// attached with nothing needing them (Options.DetachIdle).
const DefaultDetachIdle = time.Second

// lazySyscalls holds the syscall tracepoints' links while attached. All but
// used change only under the Loader's bindMu.
type lazySyscalls struct {
	idle     time.Duration
	links    []link.Link
	attached bool
	// used is set by every Bind and ViewEpoch; the detacher clears it each
	// round and detaches after a round in which nobody set it.
	used atomic.Bool
	// attaches and detaches count the transitions
	// (SyscallTracepointsAttached).
	attaches, detaches uint64

	stop chan struct{}
	done chan struct{}
}

// syscallTracepoints are the programs lazySyscalls attaches, in order.
func (l *Loader) syscallTracepoints() []tracepointProgram {
	return []tracepointProgram{
		{"sys_enter", l.objs.VigilSysEnter},
		{"sys_exit", l.objs.VigilSysExit},
	}
}

// startLazy starts the detacher of a loader whose syscall tracepoints are
// attached on demand. They start attached, as the first watchee's first
// calls are about to come.
func (l *Loader) startLazy(idle time.Duration) error {
	l.lazy = &lazySyscalls{idle: idle, stop: make(chan struct{}), done: make(chan struct{})}
	l.bindMu.Lock()
	err := l.attachSyscallsLocked()
	l.bindMu.Unlock()
	if err != nil {
		close(l.lazy.done) // no detacher to wait for
		return err
	}
	go l.detachWhenIdle()
	return nil
}

// needSyscalls attaches the syscall tracepoints if they are not, and marks
// them used. The caller holds bindMu, so no detach runs until it releases
// it; anything it publishes meanwhile keeps them attached after.
func (l *Loader) needSyscalls() error {
	z := l.lazy
	if z == nil {
		return nil
	}
	if !z.used.Load() {
		z.used.Store(true)
	}
	if z.attached {
		return nil
	}
	return l.attachSyscallsLocked()
}

// attachSyscallsLocked attaches sys_enter and sys_exit, then bumps the view
// epoch. The caller holds bindMu.
func (l *Loader) attachSyscallsLocked() error {
	z := l.lazy
	if l.ctlMem == nil {
		return errors.New("attaching syscall tracepoints: the loader is closed")
	}
	for _, tp := range l.syscallTracepoints() {
		lk, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			errs := []error{classify("attaching raw tracepoint "+tp.name, err)}
			for _, lk := range z.links {
				errs = append(errs, lk.Close())
			}
			z.links = z.links[:0]
			return errors.Join(errs...)
		}
		z.links = append(z.links, lk)
	}
	z.attached = true
	z.used.Store(true)
	z.attaches++
	atomic.AddUint64(l.viewEpoch(), 1)
	return nil
}

// detachWhenIdle detaches the syscall tracepoints after a round of idle
// with nothing used, until Close.
func (l *Loader) detachWhenIdle() {
	z := l.lazy
	defer close(z.done)
	t := time.NewTicker(z.idle)
	defer t.Stop()
	for {
		select {
		case <-z.stop:
			return
		case <-t.C:
		}
		if z.used.Swap(false) {
			continue
		}
		if err := l.detachIfIdle(); err != nil {
			l.log.Warn().Err(err).Msg("detaching the syscall tracepoints")
		}
	}
}

// detachIfIdle detaches the syscall tracepoints unless they were used since
// the last round or something is pending that needs them.
func (l *Loader) detachIfIdle() error {
	z := l.lazy
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	if !z.attached || z.used.Load() || l.ctlMem == nil {
		return nil
	}
	pending, err := l.syscallWorkPending()
	if err != nil || pending {
		return err
	}
	var errs []error
	for i := len(z.links) - 1; i >= 0; i-- {
		errs = append(errs, z.links[i].Close())
	}
	z.links = z.links[:0]
	z.attached = false
	z.detaches++
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing links: %w", err)
	}
	return nil
}

// syscallWorkPending reports whether a binding or a doomed child still
// needs sys_enter or sys_exit: a published or claimed slot, an entry the
// bindings hash may hold, a doomed child that has not returned to user
// mode, or a binding an exec was moving during the scan. The caller holds
// bindMu, so no binding is being written by userspace.
func (l *Loader) syscallWorkPending() (bool, error) {
	if atomic.LoadUint64(l.hashed()) != 0 {
		return true, nil
	}
	var doomed uint64
	if err := l.objs.DoomedPending.Get(&doomed); err != nil {
		return true, fmt.Errorf("reading doomed_pending: %w", err)
	}
	if doomed != 0 {
		return true, nil
	}
	// vigil_exec moves a binding from one slot to another by dropping it
	// first: a scan between the two would see neither. done is read before
	// the scan and begun after it; equal, no move was in flight at the start
	// or began during it.
	var done, begun uint64
	if err := l.objs.ExecMovesDone.Get(&done); err != nil {
		return true, fmt.Errorf("reading exec_moves_done: %w", err)
	}
	for i := uint32(0); i < BindSlots; i++ {
		if loadKey(l.slot(i)) != 0 {
			return true, nil
		}
	}
	if err := l.objs.ExecMovesBegun.Get(&begun); err != nil {
		return true, fmt.Errorf("reading exec_moves_begun: %w", err)
	}
	if begun != done {
		return true, nil
	}
	return false, nil
}

// stopLazy ends the detacher; Close calls it before it closes the links.
func (l *Loader) stopLazy() {
	if l.lazy == nil {
		return
	}
	select {
	case <-l.lazy.done:
	default:
		close(l.lazy.stop)
		<-l.lazy.done
	}
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	l.links = append(l.links, l.lazy.links...)
	l.lazy.links = nil
	l.lazy.attached = false
}

// SyscallTracepointsAttached reports whether the sys_enter and sys_exit
// programs are attached now, and how many times they were attached and
// detached on demand (0, 0 for a loader that keeps them attached).
func (l *Loader) SyscallTracepointsAttached() (attached bool, attaches, detaches uint64) {
	if l.lazy == nil {
		return true, 0, 0
	}
	l.bindMu.Lock()
	defer l.bindMu.Unlock()
	return l.lazy.attached, l.lazy.attaches, l.lazy.detaches
}
