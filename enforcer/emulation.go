package enforcer

import (
	"errors"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// emulable lists the syscalls vigil can perform in lieu of the watchee:
// those whose allow no kernel binding can pin (docs/design.md §2: the kernel
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
// emulate rule, a content-dependent allow of a call vigil emulates (the
// path calls, opens for writing, connect), or sends it governs.
func NeedsEmulator(p *policy.Policy) bool {
	if sendsNeedEmulator(p) {
		return true
	}
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

// writeFlags are the open flags of opens vigil emulates when a path rule
// allowed them: ADDFD then installs exactly the vetted object.
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND

// actsBeforeReturn reports open flags whose effect the kernel carries out
// before any sys_exit check could kill the caller: creating or truncating
// a file. A racer could aim that effect at another object than the one
// vetted, so such an open is emulated or refused — never continued, not
// even with a binding (issue 9, bypass 2).
func actsBeforeReturn(flags uint64) bool { return flags&(unix.O_CREAT|unix.O_TRUNC) != 0 }

// emulatesOpen reports whether a content-dependent allow of an open is
// performed by vigil (and its fd installed with ADDFD): opens for writing,
// creating or truncating, opens of FIFOs and devices (whose open acts), and
// openat2 calls whose open_how a rule looked at.
func (s *receiver) emulatesOpen(c *call, d policy.Decision) bool {
	if s.cfg.Emulator == nil || s.cfg.Unverified || c.sc == nil || c.sc.Flags != sysinfo.FlagsOpen ||
		(d.Action != policy.ActionAllow && d.Action != policy.ActionLog) ||
		c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE || !s.pol.ContentDependent(c.pc.Nr) {
		return false
	}
	if c.pc.Flags&unix.O_PATH != 0 && c.sc.Name != "openat2" {
		// An O_PATH open acts on nothing (not even a FIFO or a device),
		// and ADDFD cannot install an O_PATH file: bind it. What an
		// O_PATH descriptor is used for later is vetted again by object
		// (reopens through /proc, execveat, linkat).
		return false
	}
	// openat2 keeps its flags and resolve mode in user memory (open_how),
	// which no binding re-checks: when a rule looked at them, emulate.
	how := c.sc.Name == "openat2" && s.pol.Needs(c.pc.Nr)&(sysinfo.KeyFlags|sysinfo.KeyResolve) != 0
	switch c.objs[0].Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		return true
	}
	if s.cfg.Kernel != nil && s.cfg.Kernel.SharesFiles(c.tgid) {
		// Another process shares the caller's descriptor table: a bound
		// open that the kernel turned to another object would leave that
		// process the descriptor (issue 9, bypass 3). ADDFD installs the
		// vetted object only.
		c.sharedFiles = true
		return true
	}
	return how || c.pc.Flags&writeFlags != 0
}

// refuse is the outcome of an allowed call vigil cannot carry out safely:
// the rule that allowed it stays in the record, with why it was refused.
func refuse(c *call, d policy.Decision, why string) outcome {
	c.reason = why
	return outcome{dec: d, errno: unix.EPERM}
}

// emulateOpen opens the file vigil vetted, as the watchee, and installs it
// in the watchee with SECCOMP_ADDFD_FLAG_SEND, which answers the call. It
// reports handled false when the open cannot be emulated faithfully and
// creates and truncates nothing (a terminal a session leader would take as
// its own): the caller binds it instead.
func (s *receiver) emulateOpen(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	how := emulate.OpenHowFromFlags(int(c.pc.Flags), c.mode)
	if c.sc.Name == "openat2" {
		how = unix.OpenHow{Flags: c.how.Flags, Mode: c.how.Mode, Resolve: c.how.Resolve}
	}
	var err error
	for try := 0; try < maxPrepareRetries; try++ {
		var o outcome
		o, err = s.emulateOpenOnce(l, n, c, d, how)
		if err == nil {
			return o, true
		}
		if !errors.Is(err, emulate.ErrRaced) {
			break
		}
	}
	switch {
	case errors.Is(err, emulate.ErrRaced):
		return outcome{dec: d, errno: unix.EAGAIN}, true
	case errors.Is(err, notify.ErrGone):
		return outcome{dec: d, errno: unix.ESRCH}, true
	case errors.Is(err, emulate.ErrUnsupported):
		if actsBeforeReturn(how.Flags) {
			return refuse(c, d, "cannot emulate faithfully, and the open creates or truncates before any check: "+err.Error()), true
		}
		if c.sharedFiles {
			return refuse(c, d, "cannot emulate faithfully, and another process shares the caller's descriptor table: "+err.Error()), true
		}
		return outcome{}, false
	}
	if e, ok := errnoOf(err); ok {
		// The emulated lookup's own answer (ENOENT, ENXIO for /dev/tty
		// without a controlling terminal...), as the kernel's would be.
		return outcome{dec: d, errno: e, emulated: true}, true
	}
	s.log.Error().Err(err).Msg("denying: emulated open failed")
	s.cfg.Metrics.EmulationFailed(c.sc.Name)
	return refuse(c, d, "emulated open failed: "+err.Error()), true
}

func (s *receiver) emulateOpenOnce(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision, how unix.OpenHow) (outcome, error) {
	em := s.cfg.Emulator
	caller := emulate.Caller{Pid: c.tgid, Tid: int(n.Pid)}
	obj, err := s.resolveHeld(n, c, 0, c.follows(c.sc.Follow), c.mayCreate(0), how.Resolve)
	if err != nil {
		return outcome{}, err
	}
	defer obj.Close()
	var p *emulate.Prepared
	switch {
	case obj.ForeignMagic:
		return refuse(c, d, "the path follows another process's /proc magic link, which emulation cannot check access to"), nil
	case obj.Exists && obj.Mode&unix.S_IFMT == unix.S_IFCHR && obj.Rdev == unix.Mkdev(5, 0) && how.Flags&unix.O_PATH == 0:
		// /dev/tty names the opener's controlling terminal.
		tty, terr := em.ControllingTerminal(caller)
		if terr != nil {
			return outcome{}, terr
		}
		p, err = em.PrepareOpenHeld(caller, tty, -1, "", how)
		unix.Close(tty)
	case obj.Magic:
		p, err = s.prepareOpenHeld(caller, &obj, how)
	default:
		p, err = em.PrepareOpen(caller, c.dirfds[0], c.paths[0], how)
		if errors.Is(err, emulate.ErrUnsupported) && obj.Exists {
			// procfs objects: the worker will not look them up by name
			// (through vigil's /proc/self the walk made them explicit).
			p, err = s.prepareOpenHeld(caller, &obj, how)
		} else if err == nil && !sameOpen(p, &obj) {
			p.Close()
			return outcome{}, emulate.ErrRaced
		}
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
	d, o, refused, err := s.revet(l, n, c)
	if refused || err != nil {
		return o, err
	}
	if p.Blocking() {
		// A FIFO waiting for its other end: off the notify loop, answered
		// when it opens or when the watchee stops waiting.
		q := p
		p = nil
		return outcome{dec: d, emulated: true, deferred: s.fifoOpener(l, n.ID, q)}, nil
	}
	r, err := em.Open(p)
	if err != nil {
		return outcome{}, err
	}
	if r.Errno != 0 {
		return outcome{dec: d, errno: r.Errno, emulated: true, performed: true, keptFd: -1}, nil
	}
	fd, err := emulate.InstallFdOrKeep(l, n.ID, &r)
	if err != nil {
		if errors.Is(err, notify.ErrGone) {
			// The open took effect (it may have created the file); the
			// watchee may restart it and must get this very file.
			return outcome{dec: d, errno: unix.ESRCH, emulated: true, performed: true, keptFd: r.Fd, keptFlags: r.FdFlags}, nil
		}
		var e unix.Errno
		if errors.As(err, &e) {
			// ADDFD refused (EMFILE): the call is still pending.
			return outcome{dec: d, errno: e, emulated: true, performed: true, keptFd: -1}, nil
		}
		return outcome{}, err
	}
	return outcome{dec: d, emulated: true, answered: true, val: int64(fd), keptFd: -1}, nil
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
// longer waits (its notification is no longer valid).
func (s *receiver) fifoOpener(l *notify.Listener, id uint64, p *emulate.Prepared) func() (int64, unix.Errno, bool) {
	em := s.cfg.Emulator
	return func() (int64, unix.Errno, bool) {
		defer p.Close()
		cancel := make(chan struct{})
		stop := whileValid(l, id, func() { close(cancel) })
		defer stop()
		r, err := em.OpenFIFO(p, cancel)
		if err != nil {
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

// whileValid calls gone once notification id stops being valid (the
// watchee no longer waits: killed, or the listener hung up), checking every
// 50ms until stop is called.
func whileValid(l *notify.Listener, id uint64, gone func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if l.Valid(id) != nil {
					gone()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
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
func (s *receiver) resolveHeld(n *notify.Notif, c *call, i int, follow, mayCreate bool, res uint64) (resolve.Object, error) {
	obj, err := s.resolver.Resolve(resolve.Request{
		Tid: int(n.Pid), Tgid: c.tgid, Dirfd: c.dirfds[i], Path: c.paths[i], Follow: follow, MayCreate: mayCreate,
		OwnRoot: s.ownRoot.Load(), Resolve: res, Keep: true, Parent: true,
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
	o := *obj
	o.Fd, o.ParentFd = -1, -1
	c.objs[i] = o
	if i == 0 {
		c.pc.Path = o.Path
	} else {
		c.pc.Path2 = o.Path
	}
}

// emulateConnect connects the watchee's own socket (pidfd_getfd) from vigil
// with the sockaddr vigil read and vetted, so the kernel never reads the
// watchee's memory again. A blocking connect takes as long as the watchee's
// would, so the connect runs on its own goroutine, which answers and records
// the call; the notify loop goes on. handled is false for sockets
// emulation cannot connect faithfully (AF_UNIX: the server would see vigil
// as its peer): the caller binds those instead.
func (s *receiver) emulateConnect(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, bool) {
	p, err := s.cfg.Emulator.PrepareSocket(emulate.Caller{Pid: c.tgid, Tid: int(n.Pid)}, c.fd)
	if errors.Is(err, emulate.ErrUnsupported) {
		return outcome{}, false
	}
	if err != nil {
		if e, ok := errnoOf(err); ok {
			return outcome{dec: d, errno: e}, true
		}
		s.log.Error().Err(err).Msg("denying: preparing an emulated connect failed")
		s.cfg.Metrics.EmulationFailed(c.sc.Name)
		return outcome{dec: d, errno: unix.EPERM}, true
	}
	if err := l.Valid(n.ID); err != nil {
		p.Close()
		return outcome{dec: d, errno: unix.ESRCH}, true
	}
	addr := append([]byte(nil), s.scratch.Sockaddr[:c.saLen]...)
	em := s.cfg.Emulator
	id := n.ID
	return outcome{dec: d, emulated: true, deferred: func() (int64, unix.Errno, bool) {
		defer p.Close()
		// A blocking connect waits as long as the watchee's would, but
		// no longer than the watchee waits: shutting vigil's copy of the
		// socket down ends the handshake it would no longer see.
		stop := whileValid(l, id, func() { _ = unix.Shutdown(p.ObjectFd, unix.SHUT_RDWR) })
		defer stop()
		r, err := em.Connect(p, addr)
		if err != nil {
			return 0, unix.EPERM, false
		}
		return r.Val, r.Errno, false
	}}, true
}

// mustEmulate reports whether a decision must be carried out by vigil: the
// policy says emulate, or it allows a content-dependent side-effecting call
// that no kernel binding could pin.
func (s *receiver) mustEmulate(c *call, d policy.Decision) bool {
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
func (s *receiver) emulateCall(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) outcome {
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
		c.reason = "cannot emulate faithfully: " + err.Error()
		s.log.Warn().Err(err).Str("syscall", c.sc.Name).Msg("denying: the call cannot be emulated faithfully")
	case errors.Is(err, emulate.ErrRaced):
		c.reason = "the object kept changing while vigil vetted it"
	default:
		c.reason = "emulation failed: " + err.Error()
		s.log.Error().Err(err).Str("syscall", c.sc.Name).Msg("denying: emulation failed")
		s.cfg.Metrics.EmulationFailed(c.sc.Name)
	}
	// Fail closed, with the errno emulation reports when it has one.
	if e := emulate.Errno(err); e != 0 {
		return outcome{dec: d, errno: e}
	}
	return outcome{dec: d, errno: unix.EPERM}
}

func (s *receiver) emulateOnce(l *notify.Listener, n *notify.Notif, c *call, d policy.Decision) (outcome, error) {
	em := s.cfg.Emulator
	caller := emulate.Caller{Pid: int(c.tgid), Tid: int(n.Pid)}
	a := &n.Data.Args
	name := c.sc.Name
	var ps [2]*emulate.Prepared
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.Close()
			}
		}
	}()
	lookups := c.emulationLookups()
	if name == "fsetxattr" {
		p, err := em.PrepareFd(caller, c.fd)
		if err != nil {
			if e, ok := errnoOf(err); ok {
				return outcome{dec: d, errno: e}, nil
			}
			return outcome{}, err
		}
		ps[0] = p
		obj, err := s.resolver.ResolveFd(int(n.Pid), c.fd, false)
		if err != nil {
			if refused(err) {
				return refuse(c, d, err.Error()), nil
			}
			return outcome{dec: d, errno: args.Errno(err)}, nil
		}
		if obj.Dev != p.Dev || obj.Ino != p.Ino {
			return outcome{}, emulate.ErrRaced
		}
		s.vetted(c, 0, &obj)
	}
	for i, lk := range lookups {
		p, err := s.prepareArg(n, c, caller, i, lk)
		if err != nil {
			if e, ok := errnoOf(err); ok {
				// The lookup itself failed as the kernel's would.
				return outcome{dec: d, errno: e, emulated: true}, nil
			}
			if errors.Is(err, errRefused) {
				return refuse(c, d, c.reason), nil
			}
			return outcome{}, err
		}
		ps[i] = p
	}
	p, p2 := ps[0], ps[1]
	d, o, refused, err := s.revet(l, n, c)
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
		return outcome{dec: d, errno: r.Errno, emulated: true, performed: true, keptFd: -1}, nil
	}
	return outcome{dec: d, emulated: true, performed: true, val: r.Val, keptFd: -1}, nil
}

// emulationLookups says, for each path argument of an emulated call, what
// the call acts on: a name in a directory, or the object (following a final
// symlink or not).
func (c *call) emulationLookups() []emulate.Lookup {
	switch c.sc.Name {
	case "fsetxattr":
		return nil
	case "mknod", "mknodat", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "symlink", "symlinkat":
		return []emulate.Lookup{emulate.LookupParent}
	case "rename", "renameat", "renameat2":
		return []emulate.Lookup{emulate.LookupParent, emulate.LookupParent}
	case "link", "linkat":
		// Without AT_SYMLINK_FOLLOW the name itself is linked.
		if c.follows(c.sc.Follow) {
			return []emulate.Lookup{emulate.LookupFollow, emulate.LookupParent}
		}
		return []emulate.Lookup{emulate.LookupParent, emulate.LookupParent}
	}
	if c.follows(c.sc.Follow) {
		return []emulate.Lookup{emulate.LookupFollow}
	}
	return []emulate.Lookup{emulate.LookupNoFollow}
}

// errRefused marks a preparation vigil refuses (c.reason says why).
var errRefused = errors.New("refused")

// prepareArg resolves path argument i in the watchee's view and names it in
// the reference view, then prepares exactly that object for the call: the
// worker looks the path up again with the watchee's credentials (search
// permissions and all) and must find the same object, or the resolver's own
// descriptors are used when the path goes through a /proc magic link, which
// the worker cannot follow as the watchee.
func (s *receiver) prepareArg(n *notify.Notif, c *call, caller emulate.Caller, i int, lk emulate.Lookup) (*emulate.Prepared, error) {
	em := s.cfg.Emulator
	if c.paths[i] == "" && c.atFlags&unix.AT_EMPTY_PATH != 0 {
		p, err := em.PrepareFd(caller, c.dirfds[i])
		if err != nil {
			return nil, err
		}
		obj, err := s.resolver.ResolveFd(int(n.Pid), c.dirfds[i], false)
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
	obj, err := s.resolveHeld(n, c, i, lk == emulate.LookupFollow, lk == emulate.LookupParent, 0)
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
		} else if err == nil && !samePrepared(p, &obj, lk) {
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
// named: for a call on a name, the same entry (directory and name, and the
// same object under it if any); otherwise the same object — any name of an
// object is as good as another for what is done to the object itself.
func samePrepared(p *emulate.Prepared, obj *resolve.Object, lk emulate.Lookup) bool {
	if lk != emulate.LookupParent {
		return p.Exists && obj.Exists && p.Dev == obj.Dev && p.Ino == obj.Ino
	}
	pdev, pino := obj.ParentDev, obj.ParentIno
	if p.Exists != obj.Exists || p.ParentDev != pdev || p.ParentIno != pino ||
		strings.TrimRight(p.Name, "/") != obj.Name {
		return false
	}
	return !p.Exists || p.Dev == obj.Dev && p.Ino == obj.Ino
}

// revet evaluates the policy again on the objects emulation will act on,
// named in the reference view (c.pc, set by vetted), and, when they are
// allowed, checks the notification is still this task's before vigil acts
// for it. refused reports an outcome (deny or kill) to answer instead.
func (s *receiver) revet(l *notify.Listener, n *notify.Notif, c *call) (d policy.Decision, o outcome, refused bool, err error) {
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

// replayed answers a restart of an emulated call whose first answer never
// reached the watchee with that call's result, so that it takes effect once
// (issue 10, item 2): the kernel withdraws a notification whose wait a signal
// interrupted just before vigil's RECV completed, and the watchee, under
// SA_RESTART, makes the same call again with a new notification id. A
// restart comes from the same thread with the same registers and the same
// argument bytes; any other call drops the record.
func (s *receiver) replayed(l *notify.Listener, n *notify.Notif, c *call) (outcome, bool) {
	res, tag, ok := s.replay.Take(int(n.Pid), &n.Data, c.argKey())
	if !ok {
		return outcome{}, false
	}
	d, _ := tag.(policy.Decision)
	c.replayed = true
	if res.Fd < 0 {
		return outcome{dec: d, emulated: true, val: res.Val, errno: res.Errno, keptFd: -1}, true
	}
	fd, err := emulate.InstallFdOrKeep(l, n.ID, &res)
	if err != nil {
		if errors.Is(err, notify.ErrGone) {
			// Gone again: keep it for the next restart.
			return outcome{dec: d, emulated: true, performed: true, errno: unix.ESRCH, keptFd: res.Fd, keptFlags: res.FdFlags}, true
		}
		var e unix.Errno
		if errors.As(err, &e) {
			return outcome{dec: d, emulated: true, errno: e, keptFd: -1}, true
		}
		return outcome{dec: d, errno: unix.EPERM, keptFd: -1}, true
	}
	return outcome{dec: d, emulated: true, answered: true, val: int64(fd), keptFd: -1}, true
}

// argKey is the call's copy of its pointer arguments, which a restart must
// repeat byte for byte.
func (c *call) argKey() string {
	return c.paths[0] + "\x00" + c.paths[1] + "\x00" + c.target
}
