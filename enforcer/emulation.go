package enforcer

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// emulable lists the syscalls vigil can perform in lieu of the watchee:
// those whose allow no kernel binding can pin (DESIGN.md §2: the kernel
// leaves no object to check after unlink, rename, mkdir, chmod, ...), and
// mknod and setxattr, whose privilege vigil lends in user namespaces.
var emulable = map[string]bool{
	"mknod": true, "mknodat": true,
	"setxattr": true, "lsetxattr": true, "fsetxattr": true,
	"unlink": true, "unlinkat": true, "rmdir": true,
	"mkdir": true, "mkdirat": true,
	"rename": true, "renameat": true, "renameat2": true,
	"link": true, "linkat": true, "symlink": true, "symlinkat": true,
	"chmod": true, "fchmodat": true, "fchmodat2": true,
	"chown": true, "lchown": true, "fchownat": true,
	"truncate": true,
}

// Emulable reports whether vigil can emulate the named syscall.
func Emulable(name string) bool { return emulable[name] }

// NeedsEmulator reports whether a policy can use the emulation engine: an
// emulate rule, or a content-dependent allow of a call vigil emulates
// (the path calls, opens for writing, connect).
func NeedsEmulator(p *policy.Policy) bool {
	for _, r := range p.Rules {
		if r.Action == policy.ActionEmulate {
			return true
		}
	}
	for _, name := range NeedsBinding(p) {
		if sc, ok := sysinfo.Lookup(name); ok && (emulable[name] || name == "connect" || sc.Flags == sysinfo.FlagsOpen) {
			return true
		}
	}
	return false
}

// maxPrepareRetries bounds how often a call whose prepared object changed
// before it could be performed is prepared and vetted again.
const maxPrepareRetries = 3

// writeFlags are the open flags whose effect (creating, truncating,
// writing) happens before any sys_exit check could kill the caller: an allow
// that depended on the path is emulated rather than bound (issue 4).
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND

// emulatesOpen reports whether a content-dependent allow of an open is
// performed by vigil (and its fd installed with ADDFD).
func (s *Supervisor) emulatesOpen(c *call, d policy.Decision) bool {
	if s.cfg.Emulator == nil || s.cfg.Unverified || c.sc == nil || c.sc.Flags != sysinfo.FlagsOpen ||
		(d.Action != policy.ActionAllow && d.Action != policy.ActionLog) ||
		c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE || !s.pol.ContentDependent(c.pc.Nr) {
		return false
	}
	// openat2 keeps its flags and resolve mode in user memory (open_how),
	// which no binding re-checks: when a rule looked at them, emulate.
	how := c.sc.Name == "openat2" && s.pol.Needs(c.pc.Nr)&(sysinfo.KeyFlags|sysinfo.KeyResolve) != 0
	return how || c.pc.Flags&writeFlags != 0
}

// emulateOpen opens the file vigil vetted, as the watchee, and installs it
// in the watchee with SECCOMP_ADDFD_FLAG_SEND, which answers the call. It
// reports handled false when the open cannot be emulated faithfully (a
// terminal, /proc, a blocking FIFO): the caller then binds it instead.
func (s *Supervisor) emulateOpen(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	em := s.cfg.Emulator
	caller := emulate.Caller{Pid: c.tgid, Tid: int(n.Pid)}
	how := emulate.OpenHowFromFlags(int(c.pc.Flags), c.mode)
	if c.sc.Name == "openat2" {
		how = unix.OpenHow{Flags: c.how.Flags, Mode: c.how.Mode, Resolve: c.how.Resolve}
	}
	for try := 0; try < maxPrepareRetries; try++ {
		p, err := em.PrepareOpen(caller, c.dirfds[0], c.paths[0], how)
		if errors.Is(err, emulate.ErrUnsupported) {
			return outcome{}, false
		}
		if err != nil {
			if e, ok := errnoOf(err); ok {
				return outcome{dec: d, errno: e}, true
			}
			s.log.Error().Err(err).Msg("denying: preparing an emulated open failed")
			return outcome{dec: d, errno: unix.EPERM}, true
		}
		o, err := s.openPrepared(l, n, c, p)
		p.Close()
		if errors.Is(err, emulate.ErrRaced) {
			continue
		}
		if err != nil {
			if errors.Is(err, notify.ErrGone) {
				return outcome{dec: d, errno: unix.ESRCH}, true
			}
			s.log.Error().Err(err).Msg("denying: emulated open failed")
			return outcome{dec: d, errno: unix.EPERM}, true
		}
		return o, true
	}
	return outcome{dec: d, errno: unix.EAGAIN}, true
}

func (s *Supervisor) openPrepared(l *notify.Listener, n *notify.Notif, c *call, p *emulate.Prepared) (outcome, error) {
	d, o, refused, err := s.revet(l, n, c, p, nil)
	if refused || err != nil {
		return o, err
	}
	r, err := s.cfg.Emulator.Open(p)
	if err != nil {
		return outcome{}, err
	}
	if r.Errno != 0 {
		return outcome{dec: d, errno: r.Errno, emulated: true}, nil
	}
	fd, err := emulate.InstallFd(l, n.ID, &r)
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) && e != unix.ENOENT {
			// ADDFD refused (EMFILE): the call is still pending.
			return outcome{dec: d, errno: e, emulated: true}, nil
		}
		return outcome{}, err
	}
	return outcome{dec: d, emulated: true, answered: true, val: int64(fd)}, nil
}

// emulateConnect connects the watchee's own socket (pidfd_getfd) from vigil
// with the sockaddr vigil read and vetted, so the kernel never reads the
// watchee's memory again. A blocking connect takes as long as the watchee's
// would, so the connect runs on its own goroutine, which answers and records
// the call; the notify loop goes on. handled is false for sockets
// emulation cannot connect faithfully (AF_UNIX: the server would see vigil
// as its peer): the caller binds those instead.
func (s *Supervisor) emulateConnect(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	p, err := s.cfg.Emulator.PrepareSocket(emulate.Caller{Pid: c.tgid, Tid: int(n.Pid)}, c.fd)
	if errors.Is(err, emulate.ErrUnsupported) {
		return outcome{}, false
	}
	if err != nil {
		if e, ok := errnoOf(err); ok {
			return outcome{dec: d, errno: e}, true
		}
		s.log.Error().Err(err).Msg("denying: preparing an emulated connect failed")
		return outcome{dec: d, errno: unix.EPERM}, true
	}
	if err := l.Valid(n.ID); err != nil {
		p.Close()
		return outcome{dec: d, errno: unix.ESRCH}, true
	}
	addr := append([]byte(nil), s.scratch.Sockaddr[:c.saLen]...)
	em := s.cfg.Emulator
	return outcome{dec: d, emulated: true, deferred: func() (int64, unix.Errno) {
		defer p.Close()
		r, err := em.Connect(p, addr)
		if err != nil {
			return 0, unix.EPERM
		}
		return r.Val, r.Errno
	}}, true
}

// mustEmulate reports whether a decision must be carried out by vigil: the
// policy says emulate, or it allows a content-dependent side-effecting call
// that no kernel binding could pin.
func (s *Supervisor) mustEmulate(c *call, d policy.Decision) bool {
	if s.cfg.Emulator == nil || c.sc == nil || !emulable[c.sc.Name] {
		return false
	}
	switch d.Action {
	case policy.ActionEmulate:
		return true
	case policy.ActionAllow, policy.ActionLog:
		// The naive mode (--unverified) continues them instead.
		return !s.cfg.Unverified && s.pol.ContentDependent(c.pc.Nr)
	}
	return false
}

// emulateCall prepares the call's objects in the watchee's view (held open),
// re-evaluates the policy on exactly those objects, checks the notification
// is still valid and performs the call. The answer is the call's own result.
func (s *Supervisor) emulateCall(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) outcome {
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
	switch {
	case errors.Is(err, notify.ErrGone):
		return outcome{dec: d, errno: unix.ESRCH}
	case errors.Is(err, emulate.ErrUnsupported):
		s.log.Warn().Err(err).Str("syscall", c.sc.Name).Msg("denying: the call cannot be emulated faithfully")
	default:
		s.log.Error().Err(err).Str("syscall", c.sc.Name).Msg("denying: emulation failed")
	}
	// Fail closed, with the errno emulation reports when it has one.
	if e := emulate.Errno(err); e != 0 {
		return outcome{dec: d, errno: e}
	}
	return outcome{dec: d, errno: unix.EPERM}
}

func (s *Supervisor) emulateOnce(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, error) {
	em := s.cfg.Emulator
	caller := emulate.Caller{Pid: int(c.tgid), Tid: int(n.Pid)}
	a := &n.Data.Args
	name := c.sc.Name
	var p, p2 *emulate.Prepared
	var err error
	defer func() {
		if p != nil {
			p.Close()
		}
		if p2 != nil {
			p2.Close()
		}
	}()
	prep := func(i int, lk emulate.Lookup) (*emulate.Prepared, error) {
		if c.paths[i] == "" && c.atFlags&unix.AT_EMPTY_PATH != 0 {
			return em.PrepareFd(caller, c.dirfds[i])
		}
		return em.PrepareAt(caller, c.dirfds[i], c.paths[i], lk)
	}
	follow := emulate.LookupNoFollow
	if c.follows(c.sc.Follow) {
		follow = emulate.LookupFollow
	}
	switch name {
	case "fsetxattr":
		p, err = em.PrepareFd(caller, c.fd)
	case "mknod", "mknodat", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "symlink", "symlinkat":
		p, err = prep(0, emulate.LookupParent)
	case "rename", "renameat", "renameat2":
		if p, err = prep(0, emulate.LookupParent); err == nil {
			p2, err = prep(1, emulate.LookupParent)
		}
	case "link", "linkat":
		// Without AT_SYMLINK_FOLLOW the name itself is linked.
		old := emulate.LookupParent
		if c.follows(c.sc.Follow) {
			old = emulate.LookupFollow
		}
		if p, err = prep(0, old); err == nil {
			p2, err = prep(1, emulate.LookupParent)
		}
	default:
		p, err = prep(0, follow)
	}
	if err != nil {
		if e, ok := errnoOf(err); ok {
			// The lookup itself failed as the kernel's would.
			return outcome{dec: d, errno: e}, nil
		}
		return outcome{}, err
	}
	d, o, refused, err := s.revet(l, n, c, p, p2)
	if refused || err != nil {
		return o, err
	}
	lend := d.Action == policy.ActionEmulate
	var r emulate.Result
	switch name {
	case "mknod", "mknodat":
		r, err = em.Mknodat(p, c.mode, a[c.sc.ArgIndex(sysinfo.ArgDev)], lend)
	case "setxattr", "lsetxattr", "fsetxattr":
		i := c.sc.ArgIndex(sysinfo.ArgXattrValue)
		m, rerr := args.ReadXattrValue(int(n.Pid), a[i], a[i+1], s.scratch.XattrValue[:])
		if rerr != nil {
			return outcome{dec: d, errno: args.Errno(rerr)}, nil
		}
		r, err = em.Setxattr(p, c.pc.Xattr, s.scratch.XattrValue[:m], int(int32(a[i+2])), lend)
	case "unlink":
		r, err = em.Unlinkat(p, 0)
	case "unlinkat":
		r, err = em.Unlinkat(p, int(c.atFlags))
	case "rmdir":
		r, err = em.Unlinkat(p, unix.AT_REMOVEDIR)
	case "mkdir", "mkdirat":
		r, err = em.Mkdirat(p, c.mode)
	case "rename", "renameat":
		r, err = em.Renameat2(p, p2, 0)
	case "renameat2":
		r, err = em.Renameat2(p, p2, uint(uint32(a[4])))
	case "link", "linkat":
		r, err = em.Linkat(p, p2)
	case "symlink", "symlinkat":
		r, err = em.Symlinkat(c.target, p)
	case "chmod", "fchmodat", "fchmodat2":
		r, err = em.Fchmodat(p, c.mode)
	case "chown", "lchown", "fchownat":
		i := c.sc.PathArgs()[0]
		r, err = em.Fchownat(p, int(int32(a[i+1])), int(int32(a[i+2])))
	case "truncate":
		r, err = em.Truncate(p, int64(a[1]))
	default:
		return outcome{}, emulate.ErrUnsupported
	}
	if err != nil {
		return outcome{}, err
	}
	if r.Errno != 0 {
		return outcome{dec: d, errno: r.Errno, emulated: true}, nil
	}
	return outcome{dec: d, emulated: true, val: r.Val}, nil
}

// revet evaluates the policy again on exactly the objects emulation will act
// on (p, and p2 for a second path) and, when they are allowed, checks the
// notification is still this task's before vigil acts for it. refused
// reports an outcome (deny or kill) to answer instead.
func (s *Supervisor) revet(l *notify.Listener, n *notify.Notif, c *call, p, p2 *emulate.Prepared) (d policy.Decision, o outcome, refused bool, err error) {
	c.pc.Path, c.objs[0].Path = p.Path, p.Path
	if p2 != nil {
		c.pc.Path2, c.objs[1].Path = p2.Path, p2.Path
	}
	d = s.pol.Evaluate(&c.pc)
	switch d.Action {
	case policy.ActionDeny:
		e := d.Errno
		if e == 0 {
			e = unix.EPERM
		}
		return d, outcome{dec: d, errno: e}, true, nil
	case policy.ActionKill:
		return d, outcome{dec: d}, true, nil
	}
	// The watchee's memory was read and /proc consulted: make sure it is
	// still this task before acting for it.
	if err := l.Valid(n.ID); err != nil {
		return d, outcome{}, true, err
	}
	return d, outcome{}, false, nil
}

// errnoOf returns the errno a preparation failed with when it is the
// kernel's answer for the lookup (ENOENT, ENOTDIR, ELOOP, EACCES, ...).
func errnoOf(err error) (unix.Errno, bool) {
	var e unix.Errno
	if errors.As(err, &e) && e != 0 && !errors.Is(err, emulate.ErrUnsupported) && !errors.Is(err, emulate.ErrRaced) {
		return e, true
	}
	return 0, false
}
