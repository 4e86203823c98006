package enforcer

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// performBind performs an allowed bind(2) with an address on the watchee's
// own socket (pidfd_getfd), from vigil's copy of the sockaddr: a thread that
// rewrites the address after vigil read it changes nothing. An AF_UNIX path
// is made in the directory vigil resolved and vetted, held open
// (emulate.Bind keeps the spelling as the socket's name). The preparation
// must name the very entry the decision was made on (c.sock); if the path
// changed meanwhile the call is refused, as any emulation that kept racing.
func (s *receiver) performBind(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	if !c.pc.HasAddr {
		// Decoding failed, and its errno was answered before: never
		// continue a bind unverified all the same.
		return refuse(c, d, "the address was not decoded"), true
	}
	em := s.cfg.Emulator
	caller := s.caller(c)
	sock, err := em.PrepareBindSocket(caller, c.fd)
	if err != nil {
		return s.bindFailed(c, d, err), true
	}
	defer sock.Close()
	var parent *emulate.Prepared
	spelled := ""
	a := &c.pc.Addr
	// A pathname address makes a file only on an AF_UNIX socket; another
	// socket refuses it before any lookup (EINVAL, EAFNOSUPPORT), as the
	// kernel answers the plain bind.
	if a.Family == unix.AF_UNIX && !a.Abstract && a.UnixPath != "" && sock.Domain == unix.AF_UNIX {
		if !c.hasSock {
			return refuse(c, d, "the socket path was not resolved"), true
		}
		spelled = c.spelledSock
		parent, err = em.PrepareAt(caller, unix.AT_FDCWD, spelled, emulate.LookupParent)
		if err == nil && !samePrepared(parent, &c.sock, emulate.LookupParent, spelled) {
			parent.Close()
			err = emulate.ErrRaced
		}
		if err != nil {
			return s.bindFailed(c, d, err), true
		}
		defer parent.Close()
	}
	if err := l.Valid(n.ID); err != nil {
		return deny(d, unix.ESRCH), true
	}
	r, err := em.Bind(sock, parent, spelled, s.scratch.Sockaddr[:c.saLen])
	if err != nil {
		return s.emulationFailed(c, d, err), true
	}
	return performedResult(d, r.Val, r.Errno), true
}

// bindFailed answers a bind whose preparation failed: the kernel's own
// error for a lookup or descriptor the watchee's call would have failed on,
// otherwise a refusal that says why.
func (s *receiver) bindFailed(c *call, d policy.Decision, err error) outcome {
	if e, ok := kernelAnswer(err); ok && !errors.Is(err, notify.ErrGone) {
		return returned(d, 0, e)
	}
	return s.emulationFailed(c, d, err)
}
