package enforcer

import (
	"path"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/resolve"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// The bindings (handling.bind) fill s.bind, which bound() reset for the
// call, with the kernel binding that pins c's object; the argument bytes
// vigil read are the sys_enter tripwire. bindNone means this call has no
// binding (the caller continues it unverified, and says so); bindFailed
// means one should exist but could not be made, and the caller denies with
// the errno.

// bindOpen pins the file the returned fd must refer to, or for O_CREAT of a
// missing name its parent directory and name.
func (s *receiver) bindOpen(_ *notify.Notif, c *call) (bindResult, unix.Errno) {
	if c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE {
		// O_TMPFILE's inode is new and nameless: nothing to compare.
		// The emulator performs such opens (emulatesOpen); only the
		// bound-only mode gets here.
		return bindNone, 0
	}
	obj := &c.objs[0]
	if !s.pathBinding(c, obj) {
		return bindFailed, unix.EPERM
	}
	s.bind.Kind = loader.BindFile
	if !obj.Exists {
		s.bind.Kind = loader.BindCreate
		s.bind.Name = path.Base(obj.Path)
	} else {
		s.byName(obj)
	}
	return bindOK, 0
}

// bindExec pins the file the kernel will map: for a #! script, the
// interpreter it names (the script itself is reopened by name by the
// interpreter, which no binding can pin).
func (s *receiver) bindExec(n *notify.Notif, c *call) (bindResult, unix.Errno) {
	obj := &c.objs[0]
	if !s.pathBinding(c, obj) || !obj.Exists {
		return bindFailed, unix.EPERM
	}
	req := resolve.Request{Tid: c.tid, Tgid: c.tgid, Dirfd: unix.AT_FDCWD, OwnRoot: s.ownRoot.Load(), Identity: true}
	target, err := s.resolver.ExecTarget(req, *obj)
	if err != nil || (target.Dev == 0 && target.Ino == 0) {
		// Replaced between resolution and reading its #! line, or an
		// interpreter that cannot be found: refuse rather than guess.
		if e := errnoFor(err); err != nil && e != unix.EAGAIN {
			return bindFailed, e
		}
		return bindFailed, unix.EPERM
	}
	s.bind.Kind, s.bind.Dev, s.bind.Ino = loader.BindExec, target.Dev, target.Ino
	s.byName(&target)
	return bindOK, 0
}

// bindClone pins the namespaces the child must (and must only) get.
func (s *receiver) bindClone(_ *notify.Notif, c *call) (bindResult, unix.Errno) {
	s.bind.Kind, s.bind.CloneFlags = loader.BindClone, c.pc.Flags
	if i := c.sc.ArgIndex(sysinfo.ArgCloneArgs); i >= 0 {
		// clone3's flags live in user memory: its clone_args are the
		// tripwire.
		s.bind.ArgIndex = i
		s.bindArg = append(s.bindArg[:0], s.scratch.Struct[:c.cloneLen]...)
		s.bind.Arg = s.bindArg
	}
	return bindOK, 0
}

// bindResult says whether a call got a kernel binding.
type bindResult uint8

const (
	bindNone   bindResult = iota // no binding exists for this kind of call
	bindOK                       // s.bind holds it
	bindFailed                   // one should exist but could not be made: deny
)

// byName lets a FILE or EXEC binding also stand for another object found
// under obj's path in the reference view (a rename replaced it: no path
// rule's verdict can differ), when that path is the kernel's own path of the
// object from the reference root; otherwise only obj itself holds.
func (s *receiver) byName(obj *resolve.Object) {
	if !obj.FastName || s.rootID.Mnt == 0 {
		return
	}
	s.bind.Path, s.bind.MntID, s.bind.View = obj.Path, obj.MntID, s.rootID
}

// pathBinding sets the tripwire (path bytes) and identity of obj.
func (s *receiver) pathBinding(c *call, obj *resolve.Object) bool {
	if obj.Path == "" || (obj.Dev == 0 && obj.Ino == 0) {
		return false
	}
	s.bindArg = append(s.bindArg[:0], c.paths[0]...)
	s.bind.ArgIndex, s.bind.Arg = c.firstPathArg(), s.bindArg
	s.bind.Dev, s.bind.Ino = obj.Dev, obj.Ino
	return true
}

// bindConnect pins the peer of a connect. A sockaddr of a family the
// binding does not know is refused: a racing thread could turn it into an
// AF_INET address the policy would have denied.
func (s *receiver) bindConnect(_ *notify.Notif, c *call) (bindResult, unix.Errno) {
	if !c.pc.HasAddr {
		return bindFailed, unix.EPERM
	}
	a := &c.pc.Addr
	s.bindArg = append(s.bindArg[:0], s.scratch.Sockaddr[:c.saLen]...)
	s.bind.Kind, s.bind.ArgIndex, s.bind.Arg = loader.BindConnect, c.sc.ArgIndex(sysinfo.ArgSockaddr), s.bindArg
	s.bind.Family = a.Family
	switch a.Family {
	case unix.AF_INET, unix.AF_INET6:
		s.bind.Addr, s.bind.Port = a.IP, a.Port
	case unix.AF_UNIX:
		if a.Abstract {
			s.bind.UnixName = "\x00" + a.UnixPath
			return bindOK, 0
		}
		if a.UnixPath == "" {
			return bindFailed, unix.EINVAL
		}
		// A path peer is the socket file it names in the watchee's view:
		// resolved for the policy already, or now.
		obj := c.sock
		if !c.hasSock {
			var err error
			obj, err = s.resolver.Resolve(resolve.Request{Tid: c.tid, Tgid: c.tgid, Dirfd: unix.AT_FDCWD,
				Path: a.UnixPath, Follow: true, OwnRoot: s.ownRoot.Load(), Identity: true})
			if err != nil {
				return bindFailed, errnoFor(err) // what the kernel's lookup gives (ENOENT...)
			}
		}
		if !obj.Exists {
			return bindFailed, unix.ENOENT
		}
		s.bind.UnixName, s.bind.Dev, s.bind.Ino = a.UnixPath, obj.Dev, obj.Ino
	case unix.AF_UNSPEC:
	default:
		return bindFailed, unix.EPERM
	}
	return bindOK, 0
}
