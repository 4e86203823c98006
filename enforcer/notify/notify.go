// Package notify is vigil's thin, allocation-free interface to a seccomp
// user-notification listener: the kernel structs golang.org/x/sys lacks, the
// RECV/SEND/ID_VALID/ADDFD/SET_FLAGS ioctls, and the size check that ties the
// Go structs to the running kernel (SECCOMP_GET_NOTIF_SIZES).
package notify

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// AuditArchX86_64 is the seccomp_data.arch value of native x86_64 syscalls.
const AuditArchX86_64 = unix.AUDIT_ARCH_X86_64

// X32SyscallBit marks x32-ABI syscall numbers on x86_64; vigil never decodes
// them as native calls.
const X32SyscallBit = 0x40000000

// Data mirrors struct seccomp_data.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// Notif mirrors struct seccomp_notif: one trapped syscall. Pid is the thread
// id (in vigil's pid namespace) of the task that made the call.
type Notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  Data
}

// Resp mirrors struct seccomp_notif_resp.
type Resp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// AddFD mirrors struct seccomp_notif_addfd.
type AddFD struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// Sizes mirrors struct seccomp_notif_sizes.
type Sizes struct {
	Notif       uint16
	Resp        uint16
	SeccompData uint16
}

// ErrGone is returned when the notification is no longer valid: the thread
// died, or a signal interrupted the syscall and the kernel withdrew it. It is
// the ordinary outcome of a benign race, not a failure.
var ErrGone = errors.New("notification no longer valid")

// ErrInterrupted is returned by Recv when a signal interrupted the wait.
var ErrInterrupted = errors.New("receive interrupted")

// CheckSizes asks the kernel for its notification struct sizes and fails if
// the Go mirrors are smaller: the kernel would write past them. Larger kernel
// structs are an ABI extension vigil does not know and also refused, since a
// zeroed prefix would be mis-decoded.
func CheckSizes() (Sizes, error) {
	s, err := getSizes()
	if err != nil {
		return s, fmt.Errorf("querying SECCOMP_GET_NOTIF_SIZES: %w", err)
	}
	if int(s.Notif) != sizeofNotif || int(s.Resp) != sizeofResp || int(s.SeccompData) != sizeofData {
		return s, fmt.Errorf("kernel seccomp notification sizes %d/%d/%d differ from vigil's %d/%d/%d",
			s.Notif, s.Resp, s.SeccompData, sizeofNotif, sizeofResp, sizeofData)
	}
	return s, nil
}

// Listener is a seccomp user-notification fd. Its methods perform one ioctl
// each and never allocate.
type Listener struct {
	fd int
}

// NewListener wraps fd; the Listener owns it from now on.
func NewListener(fd int) *Listener { return &Listener{fd: fd} }

// Answerer is what deciding and answering a notification needs of a
// listener. *Listener implements it; tests of the decision core fake it.
type Answerer interface {
	// Valid reports notify.ErrGone once the notification no longer waits.
	Valid(id uint64) error
	// Answer answers a notification (Send, taking the response by value
	// so that answering through the interface does not allocate).
	Answer(r Resp) error
	// AddFD installs a descriptor in the notifying process.
	AddFD(a *AddFD) (int, error)
}

// Fd returns the underlying descriptor.
func (l *Listener) Fd() int { return l.fd }

// Close closes the listener. Pending and future notifications of the filter
// then fail with ENOSYS in the watchee: nothing is granted by vigil's exit.
func (l *Listener) Close() error {
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}

// SetSyncWakeUp asks the kernel to wake the receiving thread synchronously on
// the notifying CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6), which
// cuts a scheduler round trip from every notification. It reports whether the
// kernel supports it.
func (l *Listener) SetSyncWakeUp() (bool, error) {
	err := ioctlPtr(l.fd, unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOTTY):
		return false, nil
	}
	return false, fmt.Errorf("setting SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %w", err)
}

// Recv blocks until a notification arrives and fills n (zeroed first, as the
// kernel requires). It returns ErrInterrupted on EINTR and ErrGone when the
// notifying task vanished before it could be received (ENOENT).
func (l *Listener) Recv(n *Notif) error {
	*n = Notif{}
	err := ioctlNotif(l.fd, unix.SECCOMP_IOCTL_NOTIF_RECV, n)
	switch err {
	case nil:
		return nil
	case unix.EINTR:
		return ErrInterrupted
	case unix.ENOENT:
		return ErrGone
	}
	return fmt.Errorf("receiving seccomp notification: %w", err)
}

// Send answers a notification. ErrGone means the watchee no longer waits for
// this answer (it died or was interrupted); nothing was applied.
func (l *Listener) Send(r *Resp) error {
	err := ioctlResp(l.fd, unix.SECCOMP_IOCTL_NOTIF_SEND, r)
	for interrupted(err) {
		err = ioctlResp(l.fd, unix.SECCOMP_IOCTL_NOTIF_SEND, r)
	}
	switch err {
	case nil:
		return nil
	case unix.ENOENT:
		return ErrGone
	}
	return fmt.Errorf("answering seccomp notification %d: %w", r.ID, err)
}

// Answer is Send by value: it implements Answerer.
func (l *Listener) Answer(r Resp) error { return l.Send(&r) }

// Valid reports whether notification id is still pending. It must be called
// after reading the watchee's memory or /proc: a pid reused by a new process
// would otherwise let vigil vet the wrong task's data.
func (l *Listener) Valid(id uint64) error {
	err := ioctlID(l.fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, &id)
	for interrupted(err) {
		err = ioctlID(l.fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, &id)
	}
	switch err {
	case nil:
		return nil
	case unix.ENOENT:
		return ErrGone
	}
	return fmt.Errorf("checking seccomp notification %d: %w", id, err)
}

// AddFD installs an fd into the watchee. With unix.SECCOMP_ADDFD_FLAG_SEND the
// kernel installs it and answers the notification atomically, returning the
// new fd number as the syscall's result.
func (l *Listener) AddFD(a *AddFD) (int, error) {
	fd, err := ioctlAddFD(l.fd, unix.SECCOMP_IOCTL_NOTIF_ADDFD, a)
	for interrupted(err) {
		// Should a handler without SA_RESTART ever interrupt the wait
		// after queueing, the call is already answered and the retry
		// fails as a restart would.
		fd, err = ioctlAddFD(l.fd, unix.SECCOMP_IOCTL_NOTIF_ADDFD, a)
	}
	switch err {
	case nil:
		return fd, nil
	case unix.ENOENT:
		return -1, ErrGone
	}
	return -1, fmt.Errorf("adding fd to seccomp notification %d: %w", a.ID, err)
}

// interrupted reports whether an ioctl failed with EINTR before it did
// anything. SEND, ID_VALID and ADDFD take the filter's notify_lock with
// mutex_lock_interruptible (kernel/seccomp.c), so a signal to the calling
// thread — Go's runtime signals its threads at random — can fail them while
// they wait for it; they are then issued again, since denying the call or
// leaving it unanswered would be vigil's failure, not the watchee's. ADDFD's
// later wait for the watchee ends in ERESTARTSYS instead, which SA_RESTART
// turns into a restart; blocking signals around it is what prevents that.
func interrupted(err error) bool { return err == unix.EINTR }

// BlockSignals blocks every blockable signal on the calling thread, which
// must be locked to its goroutine, and returns the mask it had, for
// RestoreSignals. A thread that blocks them is the only way to keep ADDFD's
// wait for the watchee from being interrupted (see interrupted).
func BlockSignals() (old unix.Sigset_t, err error) {
	var all unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return old, fmt.Errorf("blocking signals: %w", err)
	}
	return old, nil
}

// RestoreSignals sets the calling thread's mask back to old (BlockSignals').
// Restoring a mask the thread had cannot fail.
func RestoreSignals(old *unix.Sigset_t) { _ = unix.PthreadSigmask(unix.SIG_SETMASK, old, nil) }
