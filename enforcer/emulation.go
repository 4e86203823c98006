package enforcer

import (
	"errors"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// maxPrepareRetries bounds how often a call whose prepared object changed
// before it could be performed is prepared and vetted again.
const maxPrepareRetries = 3

// writeFlags are the open flags of opens vigil emulates when a path rule
// allowed them: ADDFD then installs exactly the vetted object.
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND

// actsBeforeReturn reports open flags whose effect the kernel carries out
// before any sys_exit check could kill the caller: creating or truncating
// a file. A racer could aim that effect at another object than the one
// vetted, so such an open is emulated or refused — never continued, not
// even with a binding (issue 9, bypass 2).
func actsBeforeReturn(flags uint64) bool { return flags&(unix.O_CREAT|unix.O_TRUNC) != 0 }

// performOpen performs an allowed open when vigil must (emulatesOpen) and
// can; otherwise the open is bound.
func (s *receiver) performOpen(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	if !s.emulatesOpen(c) {
		return outcome{}, false
	}
	if c.hasHow && c.how.Flags&unix.O_PATH != 0 {
		// ADDFD cannot install an O_PATH file (the kernel's fget skips
		// them), and continuing would let a sibling rewrite open_how's
		// flags after vigil looked. openat2 answers as a kernel before 5.6
		// does: programs then open with openat, whose flags sit in a
		// register (runc, systemd and libpathrs fall back so).
		c.reason = "openat2 with O_PATH under rules that look at its flags: vigil can neither install an O_PATH descriptor nor continue a call whose open_how a sibling could rewrite; answered ENOSYS, as a kernel without openat2, so the program falls back to openat"
		return deny(d, unix.ENOSYS), true
	}
	return s.emulateOpen(l, n, c, d)
}

// emulatesOpen reports whether an allowed content-dependent open is
// performed by vigil (and its fd installed with ADDFD): opens for writing,
// creating or truncating, O_TMPFILE opens, opens of FIFOs and devices
// (whose open acts), and openat2 calls whose open_how a rule looked at. Opens whose descriptor
// table another process shares are sent here by bound (sharedTable).
func (s *receiver) emulatesOpen(c *call) bool {
	if c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE {
		// A new, nameless inode in the vetted directory: no binding can
		// name it, and making it is the call's effect.
		return true
	}
	if c.pc.Flags&unix.O_PATH != 0 && !c.hasHow {
		// An O_PATH open acts on nothing (not even a FIFO or a device),
		// and ADDFD cannot install an O_PATH file: bind it. What an
		// O_PATH descriptor is used for later is vetted again by object
		// (reopens through /proc, execveat, linkat).
		return false
	}
	// openat2 keeps its flags and resolve mode in user memory (open_how),
	// which no binding re-checks: when a rule looked at them, emulate.
	how := c.hasHow && s.pol.Needs(c.pc.Nr)&(sysinfo.KeyFlags|sysinfo.KeyResolve) != 0
	switch c.objs[0].Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		return true
	}
	// An open whose descriptor table another process shares is emulated
	// too; bound() finds those once the binding is written (sharedTable).
	return how || c.pc.Flags&writeFlags != 0
}

// keepsOpenTarget reports whether decoding keeps the descriptor of an open's
// target for the emulator (emulate.PrepareOpenResolved): an open for writing
// that neither creates nor truncates, likely emulated, whose lookup the
// emulator then need not repeat. Keeping costs nothing: the descriptor is
// closed after the call instead of during decoding.
func (s *receiver) keepsOpenTarget(c *call) bool {
	f := c.pc.Flags
	return c.h.open && s.cfg.Emulator != nil && !c.hasHow && f&(unix.O_WRONLY|unix.O_RDWR|unix.O_APPEND) != 0 &&
		f&(unix.O_CREAT|unix.O_TRUNC|unix.O_TMPFILE|unix.O_PATH) == 0
}

// emulateOpen opens the file vigil vetted, as the watchee, and installs it
// in the watchee with SECCOMP_ADDFD_FLAG_SEND, which answers the call. It
// reports handled false when the open cannot be emulated faithfully and
// creates and truncates nothing (a terminal a session leader would take as
// its own): the caller binds it instead.
func (s *receiver) emulateOpen(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	how := emulate.OpenHowFromFlags(int(c.pc.Flags), c.mode)
	if c.hasHow {
		how = unix.OpenHow{Flags: c.how.Flags, Mode: c.how.Mode, Resolve: c.how.Resolve}
	}
	var err error
	for try := 0; try < maxPrepareRetries; try++ {
		var o outcome
		o, err = s.emulateOpenOnce(l, n, c, d, how, try)
		if err == nil {
			return o, true
		}
		if !errors.Is(err, emulate.ErrRaced) {
			break
		}
	}
	switch {
	case errors.Is(err, emulate.ErrRaced):
		return deny(d, unix.EAGAIN), true
	case errors.Is(err, notify.ErrGone):
		return deny(d, unix.ESRCH), true
	case errors.Is(err, emulate.ErrUnsupported):
		if actsBeforeReturn(how.Flags) {
			return refuse(c, d, "cannot emulate faithfully, and the open creates or truncates before any check: "+err.Error()), true
		}
		if c.sharedFiles {
			return refuse(c, d, "cannot emulate faithfully, and another process shares the caller's descriptor table: "+err.Error()), true
		}
		return outcome{}, false
	}
	if e, ok := kernelAnswer(err); ok {
		// The emulated lookup's own answer (ENOENT, ENXIO for /dev/tty
		// without a controlling terminal...), as the kernel's would be.
		return returned(d, 0, e), true
	}
	s.log.Error().Err(err).Msg("denying: emulated open failed")
	s.cfg.Metrics.EmulationFailed(c.sc.Name)
	return refuse(c, d, "emulated open failed: "+err.Error()), true
}

func (s *receiver) emulateOpenOnce(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision, how unix.OpenHow, try int) (outcome, error) {
	em := s.cfg.Emulator
	caller := s.caller(c)
	obj, err := s.openTarget(c, try, how)
	if err != nil {
		return outcome{}, err
	}
	defer obj.Close()
	p, refusal, err := s.prepareOpenOf(c, caller, &obj, how, try)
	if refusal != "" {
		return refuse(c, d, refusal), nil
	}
	if err != nil {
		return outcome{}, err
	}
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	s.vetted(c, 0, &obj)
	d, o, refused, err := s.revet(l, n, c, !p.Opened())
	if refused || err != nil {
		return o, err
	}
	if p.Blocking() {
		// A FIFO waiting for its other end: off the notify loop, answered
		// when it opens or when the watchee stops waiting.
		q := p
		p = nil
		return deferredCall(d, s.fifoOpener(l, n.ID, c, q)), nil
	}
	r, err := em.Open(p)
	if err != nil {
		return outcome{}, err
	}
	if r.Errno != 0 {
		return performedResult(d, 0, r.Errno), nil
	}
	fd, err := emulate.InstallFdOrKeep(l, n.ID, &r, s.signalsBlocked)
	if err != nil {
		if errors.Is(err, notify.ErrGone) {
			// The open took effect (it may have created the file); the
			// watchee may restart it and must get this very file.
			o := performedResult(d, 0, unix.ESRCH)
			o.keptFd, o.keptFlags = r.Fd, r.FdFlags
			return o, nil
		}
		var e unix.Errno
		if errors.As(err, &e) {
			// ADDFD refused (EMFILE): the call is still pending.
			return performedResult(d, 0, e), nil
		}
		return outcome{}, err
	}
	return answeredWith(d, fd), nil
}

// prepareOpenOf prepares the emulated open of obj (openTarget's), or says
// why it is refused.
func (s *receiver) prepareOpenOf(c *call, caller emulate.Caller, obj *resolve.Object, how unix.OpenHow, try int) (p *emulate.Prepared, refusal string, err error) {
	em := s.cfg.Emulator
	if held := &c.objs[0]; try == 0 && held.Fd >= 0 && obj.FastName && obj.Exists && !obj.Magic && !obj.ForeignMagic {
		// Decoding found the object from vigil's root, which is the
		// watchee's, with no symlink on the way: the emulator's own lookup
		// would walk the same names (it checks the rest).
		if fp, ok := em.PrepareOpenResolved(caller, held.Fd, obj.Dev, obj.Ino, obj.Mode, how); ok {
			held.Fd = -1 // the Prepared's now
			return fp, "", nil
		}
	}
	switch {
	case obj.ForeignMagic:
		return nil, "the path follows another process's /proc magic link, which emulation cannot check access to", nil
	case obj.Exists && obj.Mode&unix.S_IFMT == unix.S_IFCHR && obj.Rdev == unix.Mkdev(5, 0) && how.Flags&unix.O_PATH == 0:
		// /dev/tty names the opener's controlling terminal.
		tty, terr := em.ControllingTerminal(caller)
		if terr != nil {
			return nil, "", terr
		}
		p, err = em.PrepareOpenHeld(caller, tty, -1, "", how)
		unix.Close(tty)
	case obj.Magic:
		p, err = s.prepareOpenHeld(caller, obj, how)
	default:
		p, err = em.PrepareOpenUnnamed(caller, c.dirfds[0], c.paths[0], how)
		if errors.Is(err, emulate.ErrUnsupported) && obj.Exists {
			// procfs objects: the worker will not look them up by name
			// (through vigil's /proc/self the walk made them explicit).
			p, err = s.prepareOpenHeldAgain(c, caller, obj, how)
		} else if err == nil && !sameOpen(p, obj) {
			p.Close()
			return nil, "", emulate.ErrRaced
		}
	}
	return p, "", err
}

// openTarget is the object an emulated open acts on, as the policy sees it.
// The first try starts from what decoding resolved, without descriptors: the
// emulator's own lookup must find that very object (sameOpen) or the open is
// retried. A retry, RESOLVE_ flags (decoding resolves without them) and magic
// links, which the emulator opens through the resolver's descriptors, resolve
// again and hold the result.
func (s *receiver) openTarget(c *call, try int, how unix.OpenHow) (resolve.Object, error) {
	if o := c.objs[0]; try == 0 && c.pathsResolved && how.Resolve == 0 && !o.Magic && !o.ForeignMagic {
		o.Fd, o.ParentFd = -1, -1
		return o, nil
	}
	return s.resolveHeld(c, 0, c.follows(c.sc.Follow), c.mayCreate(0), how.Resolve)
}

// prepareOpenHeldAgain is prepareOpenHeld for obj, resolved again with
// descriptors if openTarget took it without.
func (s *receiver) prepareOpenHeldAgain(c *call, caller emulate.Caller, obj *resolve.Object, how unix.OpenHow) (*emulate.Prepared, error) {
	if obj.Fd < 0 {
		held, err := s.resolveHeld(c, 0, c.follows(c.sc.Follow), c.mayCreate(0), how.Resolve)
		if err != nil {
			return nil, err
		}
		if held.Exists != obj.Exists || held.Dev != obj.Dev || held.Ino != obj.Ino {
			held.Close()
			return nil, emulate.ErrRaced
		}
		obj.Close()
		*obj = held
	}
	return s.prepareOpenHeld(caller, obj, how)
}

// prepareOpenHeld prepares an open of an object the resolver holds.
func (s *receiver) prepareOpenHeld(caller emulate.Caller, obj *resolve.Object, how unix.OpenHow) (*emulate.Prepared, error) {
	if obj.Exists {
		return s.cfg.Emulator.PrepareOpenHeld(caller, obj.Fd, obj.ParentFd, obj.Name, how)
	}
	// Fd is the directory the missing name would be created in.
	return s.cfg.Emulator.PrepareOpenHeld(caller, -1, obj.Fd, obj.Name, how)
}

// fifoOpener returns the deferred work of a blocking FIFO open: it waits
// for the other end as the watchee would, and gives up when the watchee no
// longer waits (its notification is no longer valid) or has a signal that
// would have interrupted its wait alone (answered ERESTARTSYS, which the
// signal's delivery turns into a restart or EINTR, as alone).
func (s *receiver) fifoOpener(l notify.Answerer, id uint64, c *call, p *emulate.Prepared) func() (int64, unix.Errno, bool) {
	em := s.cfg.Emulator
	tgid, tid := c.tgid, c.tid
	return func() (int64, unix.Errno, bool) {
		defer p.Close()
		cancel := make(chan struct{})
		var signaled atomic.Bool
		stop := whileWaiting(l, id, tgid, tid, func(bool) { close(cancel) }, func() {
			signaled.Store(true)
			close(cancel)
		})
		defer stop()
		r, err := em.OpenFIFO(p, cancel)
		if err != nil {
			if errors.Is(err, emulate.ErrCanceled) && signaled.Load() {
				return 0, errRestartSys, false
			}
			return 0, unix.EPERM, false
		}
		if r.Errno != 0 {
			return 0, r.Errno, false
		}
		fd, err := emulate.InstallFd(l, id, &r)
		if err != nil {
			var e unix.Errno
			if errors.As(err, &e) && e != unix.ENOENT {
				return 0, e, false
			}
			return 0, unix.ESRCH, true
		}
		return int64(fd), 0, true
	}
}

// sameOpen reports whether the worker's preparation of an open found the
// object the resolver named: the same file, or the same name to create in
// the same directory.
func sameOpen(p *emulate.Prepared, obj *resolve.Object) bool {
	if p.Exists != obj.Exists {
		return false
	}
	if obj.Exists {
		return p.Dev == obj.Dev && p.Ino == obj.Ino
	}
	return p.ParentDev == obj.Dev && p.ParentIno == obj.Ino && strings.TrimRight(p.Name, "/") == obj.Name
}

// resolveHeld resolves path argument i for emulation, keeping descriptors of
// the object and of the directory it is in.
func (s *receiver) resolveHeld(c *call, i int, follow, mayCreate bool, res uint64) (resolve.Object, error) {
	obj, err := s.resolver.Resolve(resolve.Request{
		Tid: c.tid, Tgid: c.tgid, Dirfd: c.dirfds[i], Path: c.paths[i], Follow: follow, MayCreate: mayCreate,
		Entry: c.entry(i), OwnRoot: s.ownRoot.Load(), Resolve: res, Keep: true, Parent: true,
	})
	if err != nil {
		if refused(err) {
			c.reason = err.Error()
			return obj, unix.EACCES
		}
		return obj, err
	}
	return obj, nil
}

// vetted records path argument i's object, named in the reference view,
// for the policy and the audit record.
func (s *receiver) vetted(c *call, i int, obj *resolve.Object) {
	// Descriptors decoding kept (keepsOpenTarget) are the call's to close;
	// obj's stay its owner's.
	old := &c.objs[i]
	for _, fd := range []*int{&old.Fd, &old.ParentFd} {
		if *fd >= 0 && *fd != obj.Fd && *fd != obj.ParentFd {
			unix.Close(*fd)
		}
		*fd = -1
	}
	o := *obj
	o.Fd, o.ParentFd = -1, -1
	c.objs[i] = o
	if i == 0 {
		c.pc.Path = o.Path
	} else {
		c.pc.Path2 = o.Path
	}
}

// performConnect performs an allowed connect with an address (IP ones; see
// emulateConnect).
func (s *receiver) performConnect(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	if !c.pc.HasAddr {
		return outcome{}, false
	}
	return s.emulateConnect(l, n, c, d)
}

// emulateConnect connects the watchee's own socket (pidfd_getfd) from vigil
// with the sockaddr vigil read and vetted, so the kernel never reads the
// watchee's memory again. A blocking connect takes as long as the watchee's
// would, so the connect runs on its own goroutine, which answers and records
// the call; the notify loop goes on. handled is false for sockets
// emulation cannot connect faithfully (AF_UNIX: the server would see vigil
// as its peer): the caller binds those instead.
func (s *receiver) emulateConnect(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	p, err := s.cfg.Emulator.PrepareSocket(s.caller(c), c.fd)
	if errors.Is(err, emulate.ErrUnsupported) {
		return outcome{}, false
	}
	if err != nil {
		if e, ok := kernelAnswer(err); ok {
			return deny(d, e), true
		}
		s.log.Error().Err(err).Msg("denying: preparing an emulated connect failed")
		s.cfg.Metrics.EmulationFailed(c.sc.Name)
		return deny(d, unix.EPERM), true
	}
	if err := l.Valid(n.ID); err != nil {
		p.Close()
		return deny(d, unix.ESRCH), true
	}
	em := s.cfg.Emulator
	if nonBlocking(p.ObjectFd) || c.addr.IP.Unmap().IsLoopback() {
		return s.connectHere(l, n, c, d, p), true
	}
	addr := append([]byte(nil), s.scratch.Sockaddr[:c.saLen]...)
	id, tgid, tid := n.ID, c.tgid, c.tid
	return deferredCall(d, func() (int64, unix.Errno, bool) {
		// A blocking connect waits as long as the watchee's would, but
		// no longer than the watchee lives: shutting vigil's copy of the
		// socket down ends the handshake it would no longer see. A
		// signal that would have interrupted the watchee's connect
		// alone answers ERESTARTSYS at once, and one that did (the
		// kernel withdrew the call) answers nothing; both leave the
		// handshake going, as the kernel does (a restarted connect
		// waits for it).
		done := make(chan emulate.Result, 1)
		signaled, withdrawn := make(chan struct{}), make(chan struct{})
		stop := whileWaiting(l, id, tgid, tid, func(exited bool) {
			if exited {
				_ = unix.Shutdown(p.ObjectFd, unix.SHUT_RDWR)
				return
			}
			close(withdrawn)
		}, func() { close(signaled) })
		go func() {
			defer p.Close()
			r, err := em.Connect(p, addr)
			stop()
			if err != nil {
				r = emulate.Result{Errno: unix.EPERM}
			}
			done <- r
		}()
		select {
		case r := <-done:
			return r.Val, r.Errno, false
		case <-signaled:
			return 0, errRestartSys, false
		case <-withdrawn:
			return 0, unix.ESRCH, true
		}
	}), true
}

// connectHere performs an emulated connect on the receiver: it cannot wait
// (EINPROGRESS instead), or its handshake is done within connect(2) itself
// (loopback: the peer's kernel answers in the same call, a refusal too), so
// the hand-off to another thread would cost more than the connect. A
// loopback peer whose backlog is full, or a sibling that clears O_NONBLOCK
// meanwhile, makes this a wait on the receiver, which the pool treats as
// any stalled call; the watchee's death still ends it (whileValid, then the
// socket shut down). A watchee that lives on (the kernel withdrew the call
// for a signal) keeps the handshake going, as alone. It takes p over.
func (s *receiver) connectHere(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision, p *emulate.Prepared) outcome {
	tgid, tid := c.tgid, c.tid
	stop := whileValid(l, n.ID, func() {
		if threadExited(tgid, tid) {
			_ = unix.Shutdown(p.ObjectFd, unix.SHUT_RDWR)
		}
	})
	r, err := s.cfg.Emulator.Connect(p, s.scratch.Sockaddr[:c.saLen])
	stop()
	p.Close()
	if err != nil {
		return deny(d, unix.EPERM)
	}
	return performedResult(d, r.Val, r.Errno)
}

// nonBlocking reports whether the open file description fd has O_NONBLOCK.
func nonBlocking(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

// performEmulation performs an allowed call no binding can pin (the path
// calls: the kernel leaves no object to check after unlink, rename, mkdir,
// chmod...).
func (s *receiver) performEmulation(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	return s.emulateCall(l, n, c, d), true
}

// emulateCall prepares the call's objects in the watchee's view (held open),
// re-evaluates the policy on exactly those objects, checks the notification
// is still valid and performs the call. The answer is the call's own result.
func (s *receiver) emulateCall(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) outcome {
	if s.cfg.Emulator == nil || c.h.emulation == nil {
		// New refuses emulate rules without the engine, and plans refuse
		// them on calls vigil cannot emulate: fail closed regardless.
		return refuse(c, d, "vigil cannot perform this call here")
	}
	var err error
	for try := 0; try < maxPrepareRetries; try++ {
		var o outcome
		o, err = s.emulateOnce(l, n, c, d)
		if !errors.Is(err, emulate.ErrRaced) {
			if err != nil {
				break
			}
			return o
		}
	}
	return s.emulationFailed(c, d, err)
}

// emulationFailed is the outcome of an emulation that could not be carried
// out: fail closed, with the errno emulation reports when it has one, and
// the reason in the record.
func (s *receiver) emulationFailed(c *call, d policy.Decision, err error) outcome {
	var ae argUnreadable
	switch {
	case errors.Is(err, notify.ErrGone):
		return deny(d, unix.ESRCH)
	case errors.As(err, &ae):
		return deny(d, ae.errno)
	case errors.Is(err, emulate.ErrUnsupported):
		c.reason = err.Error()
		if !strings.HasPrefix(c.reason, emulate.ErrUnsupported.Error()) {
			c.reason = emulate.ErrUnsupported.Error() + ": " + c.reason
		}
		s.log.Warn().Err(err).Str("syscall", c.sc.Name).Msg("denying: the call cannot be emulated faithfully")
	case errors.Is(err, emulate.ErrRaced):
		c.reason = "the object kept changing while vigil vetted it"
	default:
		c.reason = "emulation failed: " + err.Error()
		s.log.Error().Err(err).Str("syscall", c.sc.Name).Msg("denying: emulation failed")
		s.cfg.Metrics.EmulationFailed(c.sc.Name)
	}
	return deny(d, errnoFor(err))
}

// argUnreadable reports that an argument a perform function reads late
// (setxattr's value) could not be read: the call is denied with the
// kernel's errno and nothing was performed.
type argUnreadable struct{ errno unix.Errno }

func (e argUnreadable) Error() string { return "reading an argument: " + e.errno.Error() }

// emulateOnce prepares, re-vets and performs the call once; ErrRaced asks
// for another try.
func (s *receiver) emulateOnce(l notify.Answerer, n *notify.Notif, c *call, d policy.Decision) (outcome, error) {
	e := c.h.emulation
	var ps [2]*emulate.Prepared
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.Close()
			}
		}
	}()
	if o, done, err := s.prepareAll(c, d, e, &ps); done || err != nil {
		return o, err
	}
	d, o, refused, err := s.revet(l, n, c, true)
	if refused || err != nil {
		return o, err
	}
	r, err := e.do(s, s.cfg.Emulator, ps[0], ps[1], c, &n.Data.Args, d.Action == policy.ActionEmulate)
	if err != nil {
		return outcome{}, err
	}
	return performedResult(d, r.Val, r.Errno), nil
}

// caller names c's thread to the emulator, with the kernel's change epoch
// read now, after the notification arrived (emulate.Caller.Changes).
func (s *receiver) caller(c *call) emulate.Caller {
	cl := emulate.Caller{Pid: c.tgid, Tid: c.tid}
	if s.cfg.Kernel != nil {
		cl.Changes = s.cfg.Kernel.viewEpoch()
	}
	return cl
}

// prepareAll prepares the objects an emulated call acts on, in argument
// order, into ps. done reports an outcome to answer instead (a lookup that
// failed as the kernel's would, or a refusal).
func (s *receiver) prepareAll(c *call, d policy.Decision, e *emulation, ps *[2]*emulate.Prepared) (o outcome, done bool, err error) {
	caller := s.caller(c)
	if e.onFd {
		p, err := s.prepareFd(c, caller, 0, c.fd)
		if err != nil {
			return s.prepareFailed(c, d, err)
		}
		ps[0] = p
		return outcome{}, false, nil
	}
	for i, lk := range e.lookups(c) {
		p, err := s.prepareArg(c, caller, i, lk)
		if err != nil {
			return s.prepareFailed(c, d, err)
		}
		ps[i] = p
	}
	return outcome{}, false, nil
}

// prepareFailed turns a failed preparation into an outcome or an error.
func (s *receiver) prepareFailed(c *call, d policy.Decision, err error) (outcome, bool, error) {
	if e, ok := kernelAnswer(err); ok {
		// The lookup itself failed as the kernel's would.
		return returned(d, 0, e), true, nil
	}
	if errors.Is(err, errRefused) {
		return refuse(c, d, c.reason), true, nil
	}
	return outcome{}, false, err
}

// prepareFd prepares the object descriptor fd of the watchee refers to, for
// argument i, and checks it is the one the resolver named.
func (s *receiver) prepareFd(c *call, caller emulate.Caller, i, fd int) (*emulate.Prepared, error) {
	p, err := s.cfg.Emulator.PrepareFd(caller, fd)
	if err != nil {
		return nil, err
	}
	obj, err := s.resolver.ResolveFd(c.tid, fd, false)
	if err == nil && (obj.Dev != p.Dev || obj.Ino != p.Ino) {
		err = emulate.ErrRaced
	}
	if err != nil {
		p.Close()
		if refused(err) {
			c.reason = err.Error()
			return nil, errRefused
		}
		return nil, err
	}
	s.vetted(c, i, &obj)
	return p, nil
}

// errRefused marks a preparation vigil refuses (c.reason says why).
var errRefused = errors.New("refused")

// prepareArg resolves path argument i in the watchee's view and names it in
// the reference view, then prepares exactly that object for the call: the
// worker looks the path up again with the watchee's credentials (search
// permissions and all) and must find the same object, or the resolver's own
// descriptors are used when the path goes through a /proc magic link, which
// the worker cannot follow as the watchee.
func (s *receiver) prepareArg(c *call, caller emulate.Caller, i int, lk emulate.Lookup) (*emulate.Prepared, error) {
	em := s.cfg.Emulator
	if c.paths[i] == "" && c.atFlags&unix.AT_EMPTY_PATH != 0 {
		return s.prepareFd(c, caller, i, c.dirfds[i])
	}
	obj, err := s.resolveHeld(c, i, lk == emulate.LookupFollow, lk == emulate.LookupParent, 0)
	if err != nil {
		if c.reason != "" {
			return nil, errRefused
		}
		return nil, err
	}
	defer obj.Close()
	if obj.ForeignMagic {
		c.reason = "the path follows another process's /proc magic link, which emulation cannot check access to"
		return nil, errRefused
	}
	var p *emulate.Prepared
	if obj.Magic {
		p, err = s.prepareHeld(caller, &obj, lk)
	} else {
		p, err = em.PrepareAt(caller, c.dirfds[i], c.paths[i], lk)
		if errors.Is(err, emulate.ErrUnsupported) {
			p, err = s.prepareHeld(caller, &obj, lk)
		} else if err == nil && !samePrepared(p, &obj, lk, c.paths[i]) {
			p.Close()
			return nil, emulate.ErrRaced
		}
	}
	if err != nil {
		return nil, err
	}
	s.vetted(c, i, &obj)
	return p, nil
}

func (s *receiver) prepareHeld(caller emulate.Caller, obj *resolve.Object, lk emulate.Lookup) (*emulate.Prepared, error) {
	if lk != emulate.LookupParent {
		return s.cfg.Emulator.PrepareHeld(caller, obj.Fd, -1, "", lk)
	}
	parent := obj.ParentFd
	if !obj.Exists {
		parent = obj.Fd
	}
	return s.cfg.Emulator.PrepareHeld(caller, -1, parent, obj.Name, lk)
}

// samePrepared reports whether the worker prepared the object the resolver
// named for the watchee's path: for a call on a name, the same entry
// (directory and name, and the same object under it if any); otherwise the
// same object — any name of an object is as good as another for what is done
// to the object itself.
func samePrepared(p *emulate.Prepared, obj *resolve.Object, lk emulate.Lookup, path string) bool {
	if lk != emulate.LookupParent {
		return p.Exists && obj.Exists && p.Dev == obj.Dev && p.Ino == obj.Ino
	}
	if last := lastComponent(path); noEntry(last) {
		// The resolver names the directory itself (it has no parent entry
		// to name); the worker holds the directory the name is looked up
		// in, and the call on it changes nothing.
		return lastComponent(p.Name) == last
	}
	pdev, pino := obj.ParentDev, obj.ParentIno
	if p.Exists != obj.Exists || p.ParentDev != pdev || p.ParentIno != pino ||
		strings.TrimRight(p.Name, "/") != obj.Name {
		return false
	}
	return !p.Exists || p.Dev == obj.Dev && p.Ino == obj.Ino
}

// lastComponent is the last component of path as the kernel's lookup of a
// name to create, remove or rename sees it: trailing slashes dropped, "/" for
// a path of slashes alone (the root).
func lastComponent(path string) string {
	t := strings.TrimRight(path, "/")
	if t == "" && path != "" {
		return "/"
	}
	return t[strings.LastIndexByte(t, '/')+1:]
}

// noEntry reports whether last (lastComponent) names no entry a call could
// create, remove or rename: ".", ".." and the root. The kernel fails every
// such call after looking up the directory, with an errno the call and the
// name decide (EEXIST for mkdir, mknod, symlink and link, EISDIR for unlink,
// EINVAL or ENOTEMPTY for rmdir, EBUSY for rename and for rmdir of the root),
// and changes nothing; the worker's own call on the name gives that errno.
func noEntry(last string) bool { return last == "." || last == ".." || last == "/" }

// revet evaluates the policy again on the objects emulation will act on,
// named in the reference view (c.pc, set by vetted), and, when they are
// allowed, checks the notification is still this task's before vigil acts
// for it. refused reports an outcome (deny or kill) to answer instead.
//
// acts says whether what follows has an effect of its own; if not (an open
// already performed without one, emulate.Prepared.Opened), no ID_VALID is
// needed: the ADDFD that follows reaches the very call that waits or fails.
func (s *receiver) revet(l notify.Answerer, n *notify.Notif, c *call, acts bool) (d policy.Decision, o outcome, refused bool, err error) {
	d = s.pol.Evaluate(&c.pc)
	switch d.Action {
	case policy.ActionDeny:
		return d, deny(d, d.Errno), true, nil
	case policy.ActionKill:
		if err := l.Valid(n.ID); err != nil {
			return d, outcome{}, true, err
		}
		return d, outcome{kind: outKill, dec: d}, true, nil
	}
	if !acts {
		return d, outcome{}, false, nil
	}
	// The watchee's memory was read and /proc consulted: make sure it is
	// still this task before acting for it.
	if err := l.Valid(n.ID); err != nil {
		return d, outcome{}, true, err
	}
	return d, outcome{}, false, nil
}

// replayed answers a restart of an emulated call whose first answer never
// reached the watchee with that call's result, so that it takes effect once
// (issue 10, item 2): the kernel withdraws a notification whose wait a signal
// interrupted just before vigil's RECV completed, and the watchee, under
// SA_RESTART, makes the same call again with a new notification id. A
// restart comes from the same thread with the same registers and the same
// argument bytes; any other call drops the record.
func (s *receiver) replayed(l notify.Answerer, n *notify.Notif, c *call) (outcome, bool) {
	if s.replay == nil || !s.replay.Has(c.tid) {
		return outcome{}, false
	}
	res, tag, ok := s.replay.Take(c.tid, &n.Data, c.argKey())
	if !ok {
		return outcome{}, false
	}
	d, _ := tag.(policy.Decision)
	c.replayed = true
	if res.Fd < 0 {
		// performed: the effect happened (the first time), so if this
		// answer is withdrawn too, the next restart must get it again.
		return performedResult(d, res.Val, res.Errno), true
	}
	fd, err := emulate.InstallFdOrKeep(l, n.ID, &res, s.signalsBlocked)
	if err != nil {
		if errors.Is(err, notify.ErrGone) {
			// Gone again: keep it for the next restart.
			o := performedResult(d, 0, unix.ESRCH)
			o.keptFd, o.keptFlags = res.Fd, res.FdFlags
			return o, true
		}
		var e unix.Errno
		if errors.As(err, &e) {
			return returned(d, 0, e), true
		}
		return deny(d, unix.EPERM), true
	}
	return answeredWith(d, fd), true
}

// argKey is the call's copy of its pointer arguments, which a restart must
// repeat byte for byte.
func (c *call) argKey() string {
	return c.paths[0] + "\x00" + c.paths[1] + "\x00" + c.target
}
