package emulate

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// Caller is the watchee thread a call is emulated for. Pid is its thread
// group, Tid the thread that made the call; both as vigil's pid namespace
// numbers them (seccomp_notif.pid is the tid). /proc/<Tid> supplies the root,
// cwd, descriptors and credentials, because a thread may have its own fs_struct
// or fd table (clone without CLONE_FS/CLONE_FILES).
type Caller struct {
	Pid, Tid int
	// Changes, when its Source is set, is the epoch of the counter the
	// eBPF programs move around every syscall that may change what the
	// emulator reads of a caller from /proc (loader.ViewEpoch), read after
	// the notification arrived: the emulator then reuses what it read of
	// the same thread at the same epoch instead of reading it again.
	Changes Epoch
}

// Epoch is a value of a change counter. Source names the counter (one per
// loaded eBPF binding) and is 0 when there is none, and nothing is reused.
type Epoch struct{ Source, N uint64 }

// Result is an emulated syscall's outcome, to answer the notification with.
type Result struct {
	// Val is the syscall's return value on success.
	Val int64
	// Errno is the error the watchee's syscall returns, 0 on success.
	Errno unix.Errno
	// Fd is, for a successful open, a descriptor owned by vigil that the
	// caller installs in the watchee (InstallFd, or ADDFD with FdFlags) and
	// then closes; -1 otherwise.
	Fd int
	// FdFlags is ADDFD's newfd_flags: O_CLOEXEC when the watchee asked for
	// it. Close-on-exec is a property of the watchee's descriptor slot, not
	// of the open file description vigil holds.
	FdFlags uint32
}

func errnoResult(e unix.Errno) Result { return Result{Errno: e, Fd: -1} }

// Errors a caller branches on. Any error from this package means nothing
// was done for the watchee, except ErrWorker from a call that had been sent
// (see there).
var (
	// ErrUnsupported means the call cannot be emulated with the watchee's
	// exact semantics (a /proc magic link, a terminal, a blocking FIFO open, an
	// AF_UNIX connect...). Nothing happened; the caller may pass the call to
	// the kernel with a binding, or deny it.
	ErrUnsupported = errors.New("cannot emulate faithfully")
	// ErrRaced means the prepared object changed between preparation and the
	// call (an O_CREAT target appeared). Nothing happened; prepare and vet
	// again.
	ErrRaced = errors.New("prepared object changed")
	// ErrWorker means the worker for the watchee's namespaces failed. If the
	// request had been sent, the outcome is unknown: the worker may have died
	// after the syscall.
	ErrWorker = errors.New("emulation worker failed")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("emulator closed")
)

// Errno returns the errno to answer the watchee with for an error from this
// package: the error itself when it is a unix.Errno (the kernel's own answer,
// e.g. ENOENT from a lookup), ESRCH when the watchee vanished, and EPERM —
// vigil's deny — for everything that failed closed.
func Errno(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EPERM
}

// Emulator performs syscalls as watchees would have. It is safe for
// concurrent use; calls for watchees in the same namespaces serialize on
// their worker.
type Emulator struct {
	log        zerolog.Logger
	exe        string // "" re-executes this binary (reexec.Self)
	timeout    time.Duration
	maxWorkers int

	// proc is vigil's /proc (O_PATH), inherited by every worker: a procfs
	// whose pid namespace numbers vigil and its workers, whatever the
	// watchee mounted on its own /proc.
	proc   *os.File
	procfd int
	// selfFds is /proc/self/fd (O_PATH): vigil reopens what it holds
	// through it (PrepareOpenResolved); every vigil thread shares the table.
	selfFds  int
	selfUser nsID
	selfMnt  nsID

	mu      sync.Mutex
	workers map[workerKey]*worker
	clock   uint64
	closed  bool

	// inline serves watchees that share vigil's namespaces, root and
	// umask on the calling thread (inline.go); nil if vigil could not
	// read its own credentials.
	inline *inline

	localOnce sync.Once
	local     *local
	localErr  error

	credOnce sync.Once
	cred     *credIter // nil when credErr says why (linkcred.go)
	credErr  error

	bufs      sync.Pool
	openFlags openFlagsSeen
	snaps     threadCache[*snapshot]  // callers.go
	pidfds    threadCache[*heldPidfd] // getFd
}

// New returns an Emulator. Workers start on first use and run until Close.
func New(log zerolog.Logger) (*Emulator, error) {
	e := &Emulator{log: log, timeout: 10 * time.Second, maxWorkers: 64, workers: map[workerKey]*worker{}}
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /proc: %w", err)
	}
	e.proc = os.NewFile(uintptr(fd), "/proc")
	e.procfd = fd
	if e.selfUser, err = statNS(fd, "self/ns/user"); err != nil {
		e.proc.Close()
		return nil, fmt.Errorf("identifying vigil's user namespace: %w", err)
	}
	if e.selfMnt, err = statNS(fd, "self/ns/mnt"); err != nil {
		e.proc.Close()
		return nil, fmt.Errorf("identifying vigil's mount namespace: %w", err)
	}
	if e.selfFds, err = unix.Openat(fd, "self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		e.proc.Close()
		return nil, fmt.Errorf("opening vigil's /proc/self/fd: %w", err)
	}
	e.bufs.New = func() any { b := make([]byte, 8192); return &b }
	if e.inline, err = newInline(fd, make([]byte, 8192)); err != nil {
		log.Warn().Err(err).Msg("emulating every call in a worker process")
		e.inline = nil
	}
	return e, nil
}

// Close stops every worker and the local thread. Prepared values still open
// must be closed by their owners; their calls fail with ErrClosed.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ws := make([]*worker, 0, len(e.workers))
	for k, w := range e.workers {
		ws = append(ws, w)
		delete(e.workers, k)
	}
	e.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if err := w.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.local != nil {
		e.local.close()
	}
	e.cred.close()
	e.snaps.clear()
	e.pidfds.clear()
	unix.Close(e.selfFds)
	if err := e.proc.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing /proc: %w", err))
	}
	return errors.Join(errs...)
}

// IsWorker reports whether pid is one of the running workers. Watchees may
// not reach the workers through /proc: a worker holds a watchee's
// credentials and acts on vigil's behalf.
func (e *Emulator) IsWorker(pid int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workers {
		if w.pid() == pid {
			return true
		}
	}
	return false
}

// Workers returns the process ids of the running workers, for diagnostics
// and tests.
func (e *Emulator) Workers() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pids []int
	for _, w := range e.workers {
		pids = append(pids, w.pid())
	}
	return pids
}

// InstallFd installs r.Fd in the watchee and answers notification id with
// the new descriptor number, atomically (SECCOMP_ADDFD_FLAG_SEND), then
// closes r.Fd whatever happened. The kernel allocates the slot in the
// watchee's own table under its RLIMIT_NOFILE: a unix.Errno error such as
// EMFILE leaves the notification pending, to be answered with that errno.
// notify.ErrGone means the watchee no longer waits; the file is dropped.
func InstallFd(l notify.Answerer, id uint64, r *Result) (int, error) {
	return installFd(l, id, r, false, false)
}

// addFDUninterrupted issues ADDFD with every blockable signal blocked on the
// calling thread. With SECCOMP_ADDFD_FLAG_SEND the kernel marks the
// notification replied before the watchee has taken the descriptor, then
// waits for it interruptibly; a signal that interrupts that wait (Go's
// runtime and other processes send them to any thread) removes the queued
// descriptor but leaves the notification replied, and the watchee's open
// returns 0 with no descriptor (kernel/seccomp.c seccomp_notify_addfd; seen
// as git's "copy-fd: write returned: Bad file descriptor"). Blocked, the
// signals wait the few microseconds until the watchee took the descriptor.
func addFDUninterrupted(l notify.Answerer, a *notify.AddFD, blocked bool) (int, error) {
	if blocked {
		return l.AddFD(a)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := notify.BlockSignals()
	if err != nil {
		return -1, fmt.Errorf("%w, around ADDFD", err)
	}
	fd, err := l.AddFD(a)
	notify.RestoreSignals(&old)
	return fd, err
}

// InstallFdOrKeep is InstallFd, except that when the watchee no longer
// waits (notify.ErrGone) r.Fd stays open and the caller's: the watchee may
// restart the call, and the restart must get this very file (Replay).
// signalsBlocked says the calling thread is locked and already blocks every
// blockable signal (a receiver's), which spares two mask changes per call.
func InstallFdOrKeep(l notify.Answerer, id uint64, r *Result, signalsBlocked bool) (int, error) {
	return installFd(l, id, r, true, signalsBlocked)
}

func installFd(l notify.Answerer, id uint64, r *Result, keep, blocked bool) (fd int, err error) {
	if r.Fd < 0 {
		return -1, errors.New("installing fd: result holds no descriptor")
	}
	defer func() {
		if keep && errors.Is(err, notify.ErrGone) {
			return
		}
		unix.Close(r.Fd)
		r.Fd = -1
	}()
	a := notify.AddFD{ID: id, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(r.Fd), NewfdFlags: r.FdFlags}
	fd, err = addFDUninterrupted(l, &a, blocked)
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) {
			// ESRCH: a signal ended the watchee's wait as the descriptor
			// was queued (the kernel fails the pending ADDFD and restarts
			// the call). The answer did not reach it: like ENOENT, the
			// call is gone, and its restart must get this result, not
			// the errno.
			if e == unix.ENOENT || e == unix.ESRCH && l.Valid(id) != nil {
				return -1, notify.ErrGone
			}
			return -1, e
		}
		return -1, err
	}
	return fd, nil
}
