package enforcer

import (
	"path"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/resolve"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// bindingFor fills s.bind with the kernel binding that pins c's object, and
// reports whether c's syscall has one:
//
//   - the open family: the file the returned fd must refer to, or for
//     O_CREAT of a missing name its parent directory and name;
//   - execve/execveat: the file the kernel will map (for a #! script, the
//     interpreter it names; the script itself is reopened by name by the
//     interpreter, which no binding can pin);
//   - connect: the peer the socket must end up connected to;
//   - clone/clone3: the namespaces the child must (and must only) get.
//
// The argument bytes vigil read are the sys_enter tripwire.
//
// bindNone means no binding exists for this kind of call (the caller may
// continue it unverified, and says so); bindFailed means one should exist
// but could not be made, and the caller must deny with errno.
func (s *receiver) bindingFor(n *notify.Notif, c *call, tgid int) (bindResult, unix.Errno) {
	if c.sc == nil || !Bindable(c.sc.Name) {
		return bindNone, 0
	}
	s.bind = loader.Binding{Nr: c.pc.Nr}
	switch {
	case c.sc.Flags == sysinfo.FlagsOpen:
		if c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE {
			// O_TMPFILE's inode is new and nameless: nothing to compare.
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
	case c.sc.Name == "execve" || c.sc.Name == "execveat":
		obj := &c.objs[0]
		if !s.pathBinding(c, obj) || !obj.Exists {
			return bindFailed, unix.EPERM
		}
		req := resolve.Request{Tid: int(n.Pid), Tgid: tgid, Dirfd: unix.AT_FDCWD, OwnRoot: s.ownRoot.Load(), Identity: true}
		target, err := s.resolver.ExecTarget(req, *obj)
		if err != nil || (target.Dev == 0 && target.Ino == 0) {
			// Replaced between resolution and reading its #! line, or an
			// interpreter that cannot be found: refuse rather than guess.
			if e, ok := err.(unix.Errno); ok && e != unix.EAGAIN {
				return bindFailed, e
			}
			return bindFailed, unix.EPERM
		}
		s.bind.Kind, s.bind.Dev, s.bind.Ino = loader.BindExec, target.Dev, target.Ino
		s.byName(&target)
		return bindOK, 0
	case c.sc.Name == "connect":
		return s.connectBinding(n, c, tgid)
	case c.sc.Name == "clone" || c.sc.Name == "clone3":
		s.bind.Kind, s.bind.CloneFlags = loader.BindClone, c.pc.Flags
		if c.sc.Name == "clone3" {
			s.bind.ArgIndex = 0
			s.bindArg = append(s.bindArg[:0], s.scratch.Struct[:c.cloneLen]...)
			s.bind.Arg = s.bindArg
		}
		return bindOK, 0
	}
	return bindNone, 0
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
	s.bind.ArgIndex, s.bind.Arg = c.sc.PathArgs()[0], s.bindArg
	s.bind.Dev, s.bind.Ino = obj.Dev, obj.Ino
	return true
}

// connectBinding pins the peer of a connect. A sockaddr of a family the
// binding does not know is refused: a racing thread could turn it into an
// AF_INET address the policy would have denied.
func (s *receiver) connectBinding(n *notify.Notif, c *call, tgid int) (bindResult, unix.Errno) {
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
			obj, err = s.resolver.Resolve(resolve.Request{Tid: int(n.Pid), Tgid: tgid, Dirfd: unix.AT_FDCWD,
				Path: a.UnixPath, Follow: true, OwnRoot: s.ownRoot.Load(), Identity: true})
			if e, ok := err.(unix.Errno); ok && e != 0 {
				return bindFailed, e // what the kernel's lookup gives (ENOENT...)
			}
			if err != nil {
				return bindFailed, unix.EACCES
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

// Bindable reports whether vigil can bind a content-dependent allow of the
// named syscall to the kernel's object.
func Bindable(name string) bool {
	sc, ok := sysinfo.Lookup(name)
	if !ok {
		return false
	}
	switch name {
	case "execve", "execveat", "connect", "clone", "clone3":
		return true
	}
	return sc.Flags == sysinfo.FlagsOpen
}

// NeedsBinding lists the syscalls for which the policy can allow a call
// depending on its pointer arguments: those need a kernel binding (or
// emulation) to be safe.
func NeedsBinding(p *policy.Policy) []string {
	var out []string
	for _, name := range p.Syscalls() {
		nr, ok := sysinfo.Number(name)
		if !ok || !p.ContentDependent(nr) {
			continue
		}
		if mayAllow(p, name) {
			out = append(out, name)
		}
	}
	return out
}

// mayAllow reports whether some rule naming syscall, or the default, allows.
func mayAllow(p *policy.Policy, syscall string) bool {
	for _, r := range p.Rules {
		for _, sc := range r.Syscalls {
			if sc != syscall {
				continue
			}
			if r.Action == policy.ActionAllow || r.Action == policy.ActionLog {
				return true
			}
			if r.Keys() == 0 {
				// A rule without match ends the search for this syscall.
				return false
			}
		}
	}
	return p.Default == policy.ActionAllow || p.Default == policy.ActionLog
}
