// Package verdict carries out decisions on a seccomp notification. It holds
// the only code in vigil that answers SECCOMP_USER_NOTIF_FLAG_CONTINUE, and it
// does so only for a Grant, a value other packages cannot forge: a grant is
// either proof that no argument contents could have changed the verdict, or
// an explicitly unverified grant that the caller must record as such
// (`verified: "none"`) until an eBPF binding is available.
package verdict

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/loader"
)

type grantKind uint8

const (
	grantInvalid grantKind = iota
	grantContentIndependent
	grantUnverified
	grantBound
)

// Grant permits one CONTINUE. The zero Grant permits nothing.
type Grant struct {
	kind grantKind
	id   uint64
}

// ContentIndependence is implemented by the policy: whether the verdict for
// syscall nr can depend on argument contents.
type ContentIndependence interface {
	ContentDependent(nr int) bool
}

// ContentIndependent returns a grant for notification n when the policy's
// verdict for its syscall cannot depend on argument contents: vigil then only
// passes the call on to the kernel's own permission checks.
func ContentIndependent(p ContentIndependence, n *notify.Notif) (Grant, bool) {
	if p.ContentDependent(int(n.Data.Nr)) {
		return Grant{}, false
	}
	return Grant{kind: grantContentIndependent, id: n.ID}, true
}

// Unverified returns a grant for a content-dependent decision that no kernel
// binding backs: the naive mode (`--unverified`), or a call for which vigil
// has neither a binding nor an emulation (the plan lists them and vigil warns
// at startup). The caller marks the audit record `verified: "none"`; the
// kernel may re-read memory that a racing thread changed (docs/design.md §1).
func Unverified(n *notify.Notif) Grant {
	return Grant{kind: grantUnverified, id: n.ID}
}

// Binder writes and removes kernel bindings (package loader, through
// enforcer.Kernel).
type Binder interface {
	Bind(tid int, b *loader.Binding) error
	Unbind(tid int) error
}

// Bound writes b for the notifying thread and returns a grant backed by it:
// eBPF will kill the thread before it returns to user mode if the kernel
// uses another object. Without a written binding there is no grant; the
// caller denies.
//
// No ID_VALID follows the write: the CONTINUE that uses the grant is the
// check. Notification ids are never reused, so it succeeds only while the
// very call that was read still waits — its thread alive throughout, every
// read of its memory and /proc that task's, its slot freed by the programs
// when it dies — and when it fails the caller removes the binding
// (Kernel.withdraw), one ioctl after the write, as an ID_VALID would have.
func Bound(l notify.Answerer, n *notify.Notif, k Binder, b *loader.Binding) (Grant, error) {
	tid := int(n.Pid)
	if err := k.Bind(tid, b); err != nil {
		return Grant{}, fmt.Errorf("writing kernel binding for thread %d: %w", tid, err)
	}
	return Grant{kind: grantBound, id: n.ID}, nil
}

// IsBound reports whether the grant is backed by a kernel binding.
func (g Grant) IsBound() bool { return g.kind == grantBound }

// Verified is the audit value for what backs the grant.
func (g Grant) Verified() string {
	switch g.kind {
	case grantContentIndependent, grantUnverified:
		return "none"
	case grantBound:
		return "kernel"
	}
	return ""
}

// Continue lets the kernel run the syscall. Without a valid grant for this
// very notification it denies with EPERM instead: fail closed.
func Continue(l notify.Answerer, n *notify.Notif, g Grant) error {
	if !g.permits(n) {
		if err := Deny(l, n, unix.EPERM); err != nil {
			return err
		}
		return fmt.Errorf("refusing CONTINUE of notification %d without a valid grant", n.ID)
	}
	r := notify.Resp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	return l.Answer(r)
}

// permits reports whether g was issued for this very notification.
func (g Grant) permits(n *notify.Notif) bool {
	return g.kind != grantInvalid && g.id == n.ID
}

// Deny answers -errno.
func Deny(l notify.Answerer, n *notify.Notif, errno unix.Errno) error {
	if errno == 0 {
		errno = unix.EPERM
	}
	r := notify.Resp{ID: n.ID, Error: -int32(errno)}
	return l.Answer(r)
}

// Return answers with a value the supervisor produced (emulation).
func Return(l notify.Answerer, n *notify.Notif, val int64) error {
	r := notify.Resp{ID: n.ID, Val: val}
	return l.Answer(r)
}

// Kill SIGKILLs the watchee's thread group, then denies the pending call so
// the dying thread cannot run it. The pidfd is taken while the notification is
// still valid, so a recycled pid is never signalled.
func Kill(l notify.Answerer, n *notify.Notif, tgid int) error {
	pidfd, err := unix.PidfdOpen(tgid, 0)
	if err == nil {
		if verr := l.Valid(n.ID); verr == nil {
			err = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		} else {
			err = verr
		}
		unix.Close(pidfd)
	}
	if derr := Deny(l, n, unix.EPERM); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("killing thread group %d: %w", tgid, err)
	}
	return nil
}
