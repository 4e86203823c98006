package enforcer

import (
	"path"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/loader"
)

// bindingFor fills s.bind with the kernel binding that pins c's object, and
// reports whether c's syscall has one. The open family binds the file the
// returned fd must refer to (or, for O_CREAT of a missing name, the parent
// directory and the name); the path bytes vigil read are the sys_enter
// tripwire.
func (s *Supervisor) bindingFor(c *call) bool {
	if c.sc == nil || c.sc.Flags != sysinfo.FlagsOpen || c.nPaths == 0 {
		return false
	}
	if c.pc.Flags&unix.O_TMPFILE == unix.O_TMPFILE {
		// The returned inode is new and nameless: nothing to compare yet.
		return false
	}
	obj := &c.objs[0]
	if obj.Path == "" || (obj.Dev == 0 && obj.Ino == 0) {
		return false
	}
	idx := c.sc.PathArgs()
	s.bindArg = append(s.bindArg[:0], c.paths[0]...)
	s.bind = loader.Binding{
		Nr: c.pc.Nr, ArgIndex: idx[0], Arg: s.bindArg,
		Dev: obj.Dev, Ino: obj.Ino, Kind: loader.BindFile,
	}
	if !obj.Exists {
		s.bind.Kind = loader.BindCreate
		s.bind.Name = path.Base(obj.Path)
	}
	return true
}

// Bindable reports whether vigil can bind a content-dependent allow of the
// named syscall to the kernel's object.
func Bindable(name string) bool {
	sc, ok := sysinfo.Lookup(name)
	return ok && sc.Flags == sysinfo.FlagsOpen
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
