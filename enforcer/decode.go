package enforcer

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/view"
)

// call is one notification decoded: the requested spelling for the audit
// record, the resolved objects and the policy's view. One call value lives in
// each Supervisor and is reset per notification.
type call struct {
	sc *sysinfo.Syscall
	// h is the syscall's entry in the per-syscall table (calls.go).
	h         *handling
	tid, tgid int
	pc        policy.Call
	paths     [2]string // requested spellings
	dirfds    [2]int
	nPaths    int
	objs      [2]resolve.Object
	// sock is the socket file an AF_UNIX pathname address names, resolved
	// (hasSock) like any path: policy matches its reference name.
	sock    resolve.Object
	hasSock bool
	target  string // symlink target (not resolved)
	mode    uint32
	atFlags uint64
	fd      int
	hasFd   bool
	how     args.OpenHow
	hasHow  bool
	clone   args.CloneArgs
	addr    args.Sockaddr
	// saLen and cloneLen are how many bytes of s.scratch.Sockaddr and
	// s.scratch.Struct hold the argument, for the binding's tripwire.
	saLen, cloneLen int
	// err is the first decoding failure, as the errno the kernel would give.
	err unix.Errno
	// sharedFiles: another process shares the caller's descriptor table.
	sharedFiles bool
	// pathsResolved: resolvePaths resolved every path into objs (without
	// descriptors), which an emulated open may start from (openTarget).
	pathsResolved bool
	// replayed: the call restarted one vigil had carried out, and got its
	// first result.
	replayed bool
	// spelledSock is an AF_UNIX address's path as the watchee spelled it.
	spelledSock string
	// reason says why vigil refused a call it could not vet or carry out
	// (for the audit record); "" when err is the kernel's own answer.
	reason string
}

func (c *call) reset(sc *sysinfo.Syscall, nr int) {
	*c = call{sc: sc, h: handlingOf(nr), dirfds: [2]int{unix.AT_FDCWD, unix.AT_FDCWD}}
	c.pc.Nr = nr
	for i := range c.objs {
		c.objs[i].Fd, c.objs[i].ParentFd = -1, -1
	}
	c.sock.Fd, c.sock.ParentFd = -1, -1
}

// resolveSocketPath resolves an AF_UNIX pathname address in the watchee's
// view — relative to its cwd, symlinks followed as connect(2) follows them
// (bind(2) creates the final name and follows nothing there) — and puts its
// reference name in the policy's view of the address, so that a symlink,
// "//", "./" or /proc/self/cwd spelling names the same socket (issue 9,
// bypass 4).
func (s *receiver) resolveSocketPath(n *notify.Notif, c *call) {
	a := &c.pc.Addr
	if !c.pc.HasAddr || a.Family != unix.AF_UNIX || a.Abstract || a.UnixPath == "" {
		return
	}
	creates := c.h.socketCreates
	obj, err := s.resolver.Resolve(resolve.Request{Tid: c.tid, Tgid: c.tgid, Dirfd: unix.AT_FDCWD,
		Path: a.UnixPath, Follow: !creates, MayCreate: creates, Entry: creates, Parent: creates,
		OwnRoot: s.ownRoot.Load(), Identity: true})
	if err != nil {
		c.fail(err)
		return
	}
	c.sock, c.hasSock = obj, true
	c.spelledSock = a.UnixPath
	a.UnixPath = obj.Path
}

func (c *call) fail(err error) {
	if c.err != 0 {
		return
	}
	if refused(err) {
		// No reference name for the object, or vigil's own /proc entries:
		// nothing a rule could allow, so refuse as permissions would.
		c.reason = err.Error()
	}
	c.err = errnoFor(err)
}

// decode reads every argument the catalog describes, in the kernel's order.
// Failures are recorded in c.err and decoding stops at the first one, as the
// kernel would.
func (s *receiver) decode(n *notify.Notif, c *call) {
	if c.h.before != nil {
		if e := c.h.before(s, n, c); e != 0 {
			c.err = e
			return
		}
	}
	if !s.decodeChecked(n, c) {
		return
	}
	for i, kind := range c.sc.Args {
		if c.err != 0 {
			return
		}
		switch kind {
		case sysinfo.ArgDirfd:
			// The kernel takes dirfds as int: only the low 32 bits count.
			if c.nPaths < 2 {
				c.dirfds[c.nPaths] = int(int32(n.Data.Args[i]))
			}
		case sysinfo.ArgOpenFlags:
			c.pc.Flags, c.pc.HasFlags = uint64(uint32(n.Data.Args[i])), true
		case sysinfo.ArgMode:
			c.mode = uint32(n.Data.Args[i])
		case sysinfo.ArgAtFlags:
			c.atFlags = uint64(uint32(n.Data.Args[i]))
		case sysinfo.ArgFd:
			c.fd, c.hasFd = int(int32(n.Data.Args[i])), true
		case sysinfo.ArgCloneFlags:
			c.pc.Flags, c.pc.HasFlags = n.Data.Args[i], true
		default:
			s.decodePointer(n, c, i, kind)
		}
	}
	if f := c.h.impliedFlags; f != 0 {
		// creat(p, m) is open(p, O_CREAT|O_WRONLY|O_TRUNC, m).
		c.pc.Flags, c.pc.HasFlags = f, true
	}
	if c.err == 0 && c.h.afterNames != nil {
		c.err = c.h.afterNames(n, c)
	}
}

// decodeChecked decodes the arguments the kernel copies and checks before
// it reads any path, so that their errors come first: openat2's open_how
// (fs/open.c) and mknod's file type (may_mknod). It reports false when one
// failed (c.err).
func (s *receiver) decodeChecked(n *notify.Notif, c *call) bool {
	a := &n.Data.Args
	if i := c.sc.ArgIndex(sysinfo.ArgOpenHow); i >= 0 {
		how, err := args.ReadOpenHow(c.tid, a[i], a[i+1], s.scratch.Struct[:])
		if err != nil {
			c.fail(err)
			return false
		}
		c.how, c.hasHow = how, true
		c.pc.Flags, c.pc.HasFlags, c.pc.Resolve = how.Flags, true, how.Resolve
	}
	if i := c.sc.ArgIndex(sysinfo.ArgDev); i > 0 {
		c.mode = uint32(a[i-1])
		d, err := args.DecodeDev(uint64(c.mode), a[i])
		if err != nil {
			c.fail(err)
			return false
		}
		c.pc.Dev, c.pc.HasDev = policy.Dev{Kind: devKind(d.Kind), Major: d.Major, Minor: d.Minor}, true
	}
	return true
}

// decodePointer reads pointer argument i of the given kind from the
// watchee's memory into c.
func (s *receiver) decodePointer(n *notify.Notif, c *call, i int, kind sysinfo.ArgKind) {
	tid, a := c.tid, &n.Data.Args
	switch kind {
	case sysinfo.ArgPath:
		if c.nPaths >= 2 {
			return
		}
		// Each path has its own buffer, which the string aliases until
		// the next notification (transient): the hot path copies nothing.
		buf := s.scratch.Path[:]
		if c.nPaths == 1 {
			buf = s.secondPath[:]
		}
		m, err := args.ReadPath(tid, a[i], buf)
		if err != nil {
			c.fail(err)
			return
		}
		c.paths[c.nPaths] = transient(buf[:m])
		c.nPaths++
	case sysinfo.ArgString:
		m, err := args.ReadPath(tid, a[i], s.scratch.Path2[:])
		if err != nil {
			c.fail(err)
			return
		}
		c.target = string(s.scratch.Path2[:m])
	case sysinfo.ArgCloneArgs:
		ca, err := args.ReadCloneArgs(tid, a[i], a[i+1], s.scratch.Struct[:])
		if err != nil {
			c.fail(err)
			return
		}
		c.clone = ca
		c.cloneLen = int(min(a[i+1], uint64(args.CloneArgsSizeLatest)))
		c.pc.Flags, c.pc.HasFlags = ca.Flags, true
	case sysinfo.ArgXattrName:
		m, err := args.ReadXattrName(tid, a[i], s.scratch.XattrName[:])
		if err != nil {
			c.fail(err)
			return
		}
		c.pc.Xattr, c.pc.HasXattr = string(s.scratch.XattrName[:m]), true
	case sysinfo.ArgSockaddr:
		s.decodeSockaddr(c, a[i], a[i+1])
	}
}

// decodeSockaddr reads and decodes a struct sockaddr argument.
func (s *receiver) decodeSockaddr(c *call, addr, size uint64) {
	m, err := args.ReadSockaddr(c.tid, addr, size, s.scratch.Sockaddr[:])
	if err != nil {
		c.fail(err)
		return
	}
	c.saLen = m
	sa, err := args.DecodeSockaddr(s.scratch.Sockaddr[:m])
	if err != nil {
		c.fail(err)
		return
	}
	c.addr = sa
	c.pc.Addr = policy.Sockaddr{Family: sa.Family, IP: sa.IP, Port: sa.Port, UnixPath: sa.UnixPath, Abstract: sa.Abstract}
	c.pc.HasAddr = true
}

// firstPathArg returns the register index of the first path argument, or
// -1 (sysinfo.Syscall.PathArgs without the allocation).
func (c *call) firstPathArg() int {
	if c.sc == nil {
		return -1
	}
	return c.sc.ArgIndex(sysinfo.ArgPath)
}

// release closes the descriptors the call's resolution kept.
func (c *call) release() {
	for i := range c.objs {
		c.objs[i].Close()
	}
	c.sock.Close()
}

// refused reports errors of resolution that are vigil's refusal rather
// than the kernel's answer.
func refused(err error) bool {
	return errors.Is(err, view.ErrNoName) || errors.Is(err, view.ErrStacked) ||
		errors.Is(err, view.ErrNeedParent) || errors.Is(err, resolve.ErrProtected)
}

func devKind(k args.DevKind) policy.DevKind {
	switch k {
	case args.DevChar:
		return policy.DevChar
	case args.DevBlock:
		return policy.DevBlock
	}
	return policy.DevOther
}

// resolvePaths resolves every decoded path (and fsetxattr's fd) in the
// watchee's view. The first error becomes c.err.
func (s *receiver) resolvePaths(n *notify.Notif, c *call) {
	tid, tgid := c.tid, c.tgid
	sc := c.sc
	if c.hasFd && c.nPaths == 0 {
		obj, err := s.resolver.ResolveFd(tid, c.fd, false)
		if err != nil {
			c.fail(err)
			return
		}
		c.objs[0] = obj
		c.pc.Path = obj.Path
		return
	}
	for i := 0; i < c.nPaths; i++ {
		follow := sc.Follow
		if i == 1 {
			follow = sc.Follow2
		}
		req := resolve.Request{
			Tid: tid, Tgid: tgid, Dirfd: c.dirfds[i], Path: c.paths[i],
			Follow:    c.follows(follow),
			MayCreate: c.mayCreate(i),
			Entry:     c.entry(i),
			OwnRoot:   s.ownRoot.Load(),
			Identity:  s.cfg.Kernel != nil,
			// An exec's binding reads the #! line through the vetted file.
			Keep: s.cfg.Kernel != nil && c.h.exec || i == 0 && s.keepsOpenTarget(c),
		}
		var obj resolve.Object
		var err error
		if req.Path == "" && c.atFlags&unix.AT_EMPTY_PATH != 0 && req.Dirfd != unix.AT_FDCWD {
			obj, err = s.resolver.ResolveFd(tid, req.Dirfd, req.Keep)
		} else {
			obj, err = s.resolver.Resolve(req)
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.objs[i] = obj
		if i == 0 {
			c.pc.Path = obj.Path
		} else {
			c.pc.Path2 = obj.Path
		}
	}
	c.pathsResolved = true
}

func (c *call) follows(f sysinfo.Follow) bool {
	switch f {
	case sysinfo.FollowNever:
		return false
	case sysinfo.FollowUnlessONofol:
		fl := c.pc.Flags
		if fl&unix.O_NOFOLLOW != 0 {
			return false
		}
		// O_CREAT|O_EXCL never follows a final symlink (it fails EEXIST).
		return !(fl&unix.O_CREAT != 0 && fl&unix.O_EXCL != 0)
	case sysinfo.FollowUnlessAtNofo:
		return c.atFlags&unix.AT_SYMLINK_NOFOLLOW == 0
	case sysinfo.FollowIfAtFollow:
		return c.atFlags&unix.AT_SYMLINK_FOLLOW != 0
	}
	return true
}

// entry reports whether path argument i names the entry the call acts on
// rather than the object it leads to (resolve.Request.Entry): the names
// emulation prepares as such (emulate.LookupParent: created, removed,
// renamed, or linked without AT_SYMLINK_FOLLOW) and an open's with O_CREAT.
func (c *call) entry(i int) bool {
	if c.sc.Flags == sysinfo.FlagsOpen {
		return c.pc.Flags&unix.O_CREAT != 0
	}
	if c.h.emulation == nil {
		return false
	}
	lks := c.h.emulation.lookups(c)
	return i < len(lks) && lks[i] == emulate.LookupParent
}

// mayCreate reports whether path argument i may name a missing object.
func (c *call) mayCreate(i int) bool {
	if !c.sc.Creates {
		return false
	}
	if c.sc.Flags == sysinfo.FlagsOpen {
		return c.pc.Flags&unix.O_CREAT != 0
	}
	// rename/link: the source must exist, the destination may not.
	if c.nPaths == 2 {
		return i == 1
	}
	return true
}
