package enforcer

import (
	"errors"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/verdict"
	"github.com/vigilsec/vigil/loader"
)

// handle decides and answers one notification, and records the decision.
func (s *receiver) handle(l notify.Answerer, n *notify.Notif) {
	start := time.Now()
	tid := int(n.Pid)
	g := s.gate(tid)
	defer s.ungate(g)
	atomic.AddUint64(&s.stats.Notifications, 1)
	pi := s.procs.Get(tid, s.commEpoch())
	o := s.decide(l, n, pi.Tgid)
	if s.cfg.BeforeAnswer != nil {
		s.cfg.BeforeAnswer(n, s.c.paths[0])
	}
	parked, err := s.answer(l, n, &o, pi, start)
	gone := errors.Is(err, notify.ErrGone)
	s.keepForRestart(n, &o, gone)
	if gone {
		atomic.AddUint64(&s.stats.Gone, 1)
		s.log.Debug().Uint64(audit.FieldNotifID, n.ID).Int(audit.FieldTid, tid).Msg("watchee withdrew the call before the answer")
	} else if err != nil {
		s.log.Error().Err(err).Uint64(audit.FieldNotifID, n.ID).Msg("answering notification")
	}
	s.c.release()
	if s.c.h.exec {
		s.procs.Forget(tid)
	}
	if o.kind != outPassOn && !parked {
		d := s.decisionOf(n, pi, &o, gone, time.Since(start))
		d.emit(&s.audit, nil)
	}
}

// commEpoch is the kernel's count of execs and renames of watched threads,
// which tells the comm cache when a thread may have another name; 0 without
// a kernel binding (the cache's age limit alone then).
func (s *receiver) commEpoch() uint64 {
	if s.cfg.Kernel == nil {
		return 0
	}
	return s.cfg.Kernel.commEpoch()
}

// decide turns a notification into an outcome, in the order of the data
// path: screen → decode → resolve → evaluate → carry out. Every path that
// cannot vet the call fails closed with the errno the kernel would have
// returned.
func (s *receiver) decide(l notify.Answerer, n *notify.Notif, tgid int) outcome {
	c := s.begin(n, tgid)
	if runningKernel().lacks(c.pc.Nr) {
		// A syscall younger than this kernel: ENOSYS whatever its
		// arguments and the policy, as without vigil (glibc falls back).
		return refusedBy(unix.ENOSYS)
	}
	if o, done := s.screen(l, n, c); done {
		return o
	}
	if !s.pol.ContentDependent(c.pc.Nr) {
		return s.decideByNumber(l, n, c)
	}
	if c.sc == nil {
		// Policy validation forbids match keys on syscalls vigil cannot
		// decode; fail closed if that ever breaks.
		return refusedBy(unix.EPERM)
	}
	s.decode(n, c)
	if o, ok := s.replayed(l, n, c); ok {
		return o
	}
	s.resolveArgs(n, c)
	if c.err != 0 {
		return s.unvetted(l, n, c)
	}
	return s.carryOut(l, n, c, s.pol.Evaluate(&c.pc))
}

// begin resets the receiver's call for notification n.
func (s *receiver) begin(n *notify.Notif, tgid int) *call {
	c := &s.c
	nr := int(n.Data.Nr)
	sc, _ := sysinfo.ByNr(nr)
	c.reset(sc, nr)
	c.tid, c.tgid = int(n.Pid), tgid
	return c
}

// screen decides what is settled before any rule looks at arguments: calls
// of another ABI, sends that may name a peer (send.go), and calls trapped
// only to keep vigil's view of the watchee right. It updates that view
// first, before the call can change it.
func (s *receiver) screen(l notify.Answerer, n *notify.Notif, c *call) (outcome, bool) {
	nr := c.pc.Nr
	if n.Data.Arch != notify.AuditArchX86_64 || nr&notify.X32SyscallBit != 0 || nr < 0 {
		// The filter kills other ABIs; reaching here means it did not.
		return refusedBy(unix.ENOSYS), true
	}
	s.track(n, c)
	if c.h.send != sendNone {
		if o, handled := s.decideSend(l, n, c); handled {
			return o, true
		}
	}
	if nr >= len(s.trapped) || !s.trapped[nr] {
		// Trapped only for root tracking; the policy has no say.
		if g, ok := verdict.ContentIndependent(s.pol, n); ok {
			return outcome{kind: outPassOn, dec: policy.Decision{Action: policy.ActionAllow}, grant: g}, true
		}
		return refusedBy(unix.EPERM), true
	}
	return outcome{}, false
}

// track notes calls that change how vigil must resolve and name paths,
// before they are answered: a path resolved after one never assumes vigil's
// root for a process that may have left it, and a mount about to move no
// longer gives its objects their reference names.
func (s *receiver) track(n *notify.Notif, c *call) {
	h := c.h
	copied := h.copiesMountNS != nil && h.copiesMountNS(s, n)
	if copied || (h.createsMounts != nil && h.createsMounts(n)) {
		s.ref.Renumber()
	}
	if s.ownRoot.Load() && (copied || (h.rootChange != nil && h.rootChange(s, n))) {
		s.ownRoot.Store(false)
		s.log.Debug().Int(audit.FieldTid, c.tid).Str(audit.FieldSyscall, sysinfo.Name(c.pc.Nr)).
			Msg("a watchee may change its root or mount namespace: resolving from its /proc root from now on")
	}
	// Every such call, not only the first: each one may free a mount id
	// that a later mount takes.
	if h.mountChange != nil && h.mountChange(n) {
		if s.ref.Settled() {
			s.log.Debug().Int(audit.FieldTid, c.tid).Str(audit.FieldSyscall, sysinfo.Name(c.pc.Nr)).
				Msg("a watchee may change a mount topology: naming objects through their filesystem path from now on")
		}
		s.ref.Unsettle()
	}
}

// decideByNumber decides a call whose verdict cannot depend on its pointer
// arguments (the first rule naming it has no match): its arguments are
// decoded for the record only, and an emulate verdict is performed.
func (s *receiver) decideByNumber(l notify.Answerer, n *notify.Notif, c *call) outcome {
	g, _ := verdict.ContentIndependent(s.pol, n)
	d := s.pol.Evaluate(&c.pc) // the first rule naming the call: it has no match
	if d.Action == policy.ActionAllow && s.quietAllows {
		// Nothing read from the watchee decides the call, and its record
		// is not written: pass it on without reading its memory (the
		// kernel's own checks apply; a stale id only fails the answer).
		return continueUnder(d, g)
	}
	if c.sc != nil {
		s.decode(n, c)
	}
	if d.Action == policy.ActionEmulate && c.sc != nil {
		if c.err != 0 {
			return deny(d, c.err)
		}
		return s.emulateCall(l, n, c, d)
	}
	return s.finish(l, n, d, g)
}

// resolveArgs resolves what the verdict or the binding will look at: the
// paths when a rule matches on them or the call will be bound (the binding
// pins the object, whatever the rule looked at), and an AF_UNIX address's
// socket file when a rule matches on addresses.
func (s *receiver) resolveArgs(n *notify.Notif, c *call) {
	needs := s.pol.Needs(c.pc.Nr)
	bound := s.cfg.Kernel != nil && c.h.bind != nil && c.firstPathArg() >= 0
	if c.err == 0 && (needs.Has(sysinfo.KeyPath) || bound) {
		s.resolvePaths(n, c)
	}
	if c.err == 0 && needs.Has(sysinfo.KeyAddr) {
		s.resolveSocketPath(n, c)
	}
}

// unvetted answers a call vigil could not decode or resolve with the
// kernel's errno (c.err), once it is sure the errno is this task's.
func (s *receiver) unvetted(l notify.Answerer, n *notify.Notif, c *call) outcome {
	if err := l.Valid(n.ID); err != nil {
		return refusedBy(unix.ESRCH)
	}
	o := refusedBy(c.err)
	o.kernels = c.reason == ""
	return o
}

// carryOut carries out a verdict on a content-dependent call. An allow is
// never continued on what vigil read alone: vigil performs the call itself
// from its own copy of the arguments (handling.perform), or binds it in
// eBPF (handling.bind). Only a call without either mechanism, or the naive
// mode, continues unverified, and its record says so.
func (s *receiver) carryOut(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) outcome {
	switch {
	case d.Action == policy.ActionEmulate:
		return s.emulateCall(l, n, c, d)
	case d.Action != policy.ActionAllow && d.Action != policy.ActionLog:
		return s.finish(l, n, d, verdict.Grant{})
	case s.cfg.Unverified:
		return s.finish(l, n, d, verdict.Unverified(n))
	}
	if c.h.perform != nil && s.cfg.Emulator != nil {
		if o, handled := c.h.perform(s, l, n, c, d); handled {
			return o
		}
	}
	if c.h.bind != nil && s.cfg.Kernel != nil {
		return s.bound(l, n, c, d)
	}
	return s.finish(l, n, d, verdict.Unverified(n))
}

// bound writes the binding that pins the call's object and grants the
// CONTINUE it backs.
func (s *receiver) bound(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) outcome {
	// An allow whose record is not written needs no confirmation: the
	// binding stays silent when it holds (a violation still kills and is
	// reported), and answer parks nothing.
	s.bind = loader.Binding{Nr: c.pc.Nr, Quiet: s.quietAllows && d.Action == policy.ActionAllow}
	switch res, errno := c.h.bind(s, n, c); res {
	case bindFailed:
		// A grant that should be pinned and cannot be: fail closed.
		if err := l.Valid(n.ID); err != nil {
			return deny(d, unix.ESRCH)
		}
		return deny(d, errno)
	case bindNone:
		return s.finish(l, n, d, verdict.Unverified(n))
	}
	if s.cfg.Container != "" {
		// A container runtime may let processes fork before the agent
		// watched the container's first one (crun does): a binding of an
		// unwatched process would never be checked.
		if err := s.cfg.Kernel.Watch(c.tgid); err != nil {
			return refuse(c, d, "cannot watch the caller in eBPF: "+err.Error())
		}
	}
	g, err := verdict.Bound(l, n, s.cfg.Kernel, &s.bind)
	if err != nil {
		if !errors.Is(err, notify.ErrGone) {
			s.log.Error().Err(err).Uint64(audit.FieldNotifID, n.ID).Msg("denying: kernel binding could not be written")
		}
		return deny(d, unix.EPERM)
	}
	if s.sharedTable(c) {
		return s.openInSharedTable(l, n, c, d)
	}
	return continueUnder(d, g)
}

// sharedTable reports whether the open just bound runs in a descriptor
// table another process shares (clone(CLONE_FILES) without CLONE_THREAD).
// The kernel would install whatever it opens before a kill could take
// effect, and the sharer keeps it (issue 9, bypass 3). Asked after the
// binding is written: a table shared later dooms the new sharer at fork
// (eBPF sees the pending binding), one shared sooner is seen here.
func (s *receiver) sharedTable(c *call) bool {
	if s.bind.Kind != loader.BindFile && s.bind.Kind != loader.BindCreate || c.pc.Flags&unix.O_PATH != 0 {
		return false
	}
	return s.cfg.Kernel.SharesFiles(c.tgid)
}

// openInSharedTable withdraws the binding of an open in a shared table and
// emulates the open, so ADDFD installs the vetted object only; without an
// emulator it refuses.
func (s *receiver) openInSharedTable(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) outcome {
	_ = s.cfg.Kernel.Unbind(int(n.Pid))
	c.sharedFiles = true
	if s.cfg.Emulator != nil {
		if o, handled := s.emulateOpen(l, n, c, d); handled {
			return o
		}
	}
	return refuse(c, d, "another process shares the caller's descriptor table, and vigil cannot install the vetted file alone")
}

// finish checks the notification is still the one that was read and turns
// the decision into an outcome.
func (s *receiver) finish(l notify.Answerer, n *notify.Notif, d policy.Decision, g verdict.Grant) outcome {
	// An answer needs no ID_VALID: notification ids are never reused, so
	// the SEND succeeds only while the very call that was read still waits
	// (its thread alive throughout, every read of its memory and /proc that
	// task's), and a stale one fails and is recorded as withdrawn. A kill
	// acts on a process id, which is the caller's only while it waits.
	switch d.Action {
	case policy.ActionDeny:
		return deny(d, d.Errno)
	case policy.ActionKill:
		if err := l.Valid(n.ID); err != nil {
			return deny(d, unix.ESRCH)
		}
		return outcome{kind: outKill, dec: d}
	case policy.ActionAllow, policy.ActionLog:
		return continueUnder(d, g)
	}
	// Unknown or unsupported action: fail closed.
	return deny(d, unix.EPERM)
}

// answer sends the outcome's answer. parked reports that the record is
// written later: when the kernel confirms a bound call, or when a deferred
// call ends.
func (s *receiver) answer(l notify.Answerer, n *notify.Notif, o *outcome, pi procinfo.Info, start time.Time) (parked bool, err error) {
	switch o.kind {
	case outDeny:
		if o.kernels {
			atomic.AddUint64(&s.stats.KernelErrors, 1)
		} else {
			atomic.AddUint64(&s.stats.Denied, 1)
		}
		return false, verdict.Deny(l, n, o.errno)
	case outKill:
		atomic.AddUint64(&s.stats.Killed, 1)
		tgid, ok := procinfo.FreshTgid(int(n.Pid))
		if !ok {
			tgid = pi.Tgid
		}
		return false, verdict.Kill(l, n, tgid)
	case outReturn:
		if o.errno != 0 {
			// The kernel's own error, from the call vigil performed or
			// from its lookup: not a refusal.
			atomic.AddUint64(&s.stats.KernelErrors, 1)
			return false, verdict.Deny(l, n, o.errno)
		}
		atomic.AddUint64(&s.stats.Allowed, 1)
		return false, verdict.Return(l, n, o.val)
	case outAnswered:
		atomic.AddUint64(&s.stats.Allowed, 1)
		return false, nil
	case outDeferred:
		atomic.AddUint64(&s.stats.Allowed, 1)
		s.runDeferred(l, n, o, s.decisionOf(n, pi, o, false, 0), start)
		return true, nil
	case outContinue, outPassOn:
		atomic.AddUint64(&s.stats.Allowed, 1)
		if !o.grant.IsBound() {
			return false, verdict.Continue(l, n, o.grant)
		}
		tid := int(n.Pid)
		if s.bind.Quiet { // the binding bound() wrote for this call
			// No event comes when the grant holds; a violation finds
			// the record here (one per thread, replaced by the next).
			s.cfg.Kernel.keepQuiet(tid, int(n.Data.Nr), s.decisionOf(n, pi, o, false, time.Since(start)), &s.audit)
			if err := verdict.Continue(l, n, o.grant); err != nil {
				s.cfg.Kernel.withdraw(tid)
				return false, err
			}
			return false, nil
		}
		// The kernel event may arrive as soon as CONTINUE is answered:
		// park the record first.
		s.cfg.Kernel.expect(tid, int(n.Data.Nr), s.decisionOf(n, pi, o, false, time.Since(start)), &s.audit)
		if err := verdict.Continue(l, n, o.grant); err != nil {
			s.cfg.Kernel.withdraw(tid)
			return true, err
		}
		return true, nil
	}
	atomic.AddUint64(&s.stats.Denied, 1)
	return false, verdict.Deny(l, n, unix.EPERM) // an unknown kind: fail closed
}

// runDeferred performs a deferred call on its own goroutine, which answers
// and records it; Serve waits for it.
func (s *receiver) runDeferred(l notify.Answerer, n *notify.Notif, o *outcome, d decision, start time.Time) {
	id := *n // n is the loop's, reused for the next notification
	d.call.detach(nil)
	perform := o.deferred
	s.deferred.Add(1)
	go func() {
		defer s.deferred.Done()
		val, errno, answered := perform()
		var err error
		switch {
		case answered && errno == unix.ESRCH:
			err = notify.ErrGone
		case answered:
		case errno != 0:
			err = verdict.Deny(l, &id, errno)
		default:
			err = verdict.Return(l, &id, val)
		}
		d.errno, d.latency = errno, time.Since(start)
		d.withdrawn = errors.Is(err, notify.ErrGone)
		d.emit(&s.audit, nil)
	}()
}

// keepForRestart hands the result of a call vigil performed, whose answer
// never reached the watchee, to the restart guard: the watchee may make the
// call again (a signal interrupted its wait before RECV completed), and
// must get this result instead of a second effect. A file an emulated open
// made is kept for that restart; otherwise it is closed.
func (s *receiver) keepForRestart(n *notify.Notif, o *outcome, gone bool) {
	if gone && o.performed && s.replay != nil {
		s.replay.Withdrawn(int(n.Pid), &n.Data, s.c.argKey(),
			emulate.Result{Val: o.val, Errno: o.errno, Fd: o.keptFd, FdFlags: o.keptFlags}, o.dec)
		return
	}
	if o.keptFd > 0 {
		unix.Close(o.keptFd)
	}
}
