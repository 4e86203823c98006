package enforcer

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/resolve"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// kernelSays is what the running kernel does where the kernels vigil
// supports differ in a way vigil's answers must follow (the kernel matrix
// found both on Linux 6.1): syscalls newer than the kernel, which it answers
// ENOSYS whatever their arguments, and the xattr calls' order of checks.
// Each is probed once with arguments no kernel can act on.
type kernelSays struct {
	// absent holds trapped syscalls the kernel does not implement.
	absent map[int]bool
	// xattrLookupFirst: setxattr and removexattr look the path up before
	// they check flags, name and value (Linux 6.1); later kernels check
	// those first (Debian's 6.12 already does).
	xattrLookupFirst bool
	// fxattrFdFirst: fsetxattr and fremovexattr look the descriptor up
	// first (6.1 and 6.12; 6.18 checks the name first).
	fxattrFdFirst bool
}

var (
	kernelOnce sync.Once
	kernelInfo kernelSays
)

// runningKernel probes the running kernel once.
func runningKernel() *kernelSays {
	kernelOnce.Do(func() { kernelInfo = probeKernel() })
	return &kernelInfo
}

// newerSyscalls are the decoded syscalls younger than the oldest kernel vigil
// supports, each with arguments that fail before anything happens where the
// syscall exists: a negative descriptor, a NULL path and flags no kernel
// accepts.
var newerSyscalls = []string{"fchmodat2"}

func probeKernel() kernelSays {
	k := kernelSays{absent: map[int]bool{}}
	for _, name := range newerSyscalls {
		nr, ok := sysinfo.Number(name)
		if !ok {
			continue
		}
		_, _, e := unix.Syscall6(uintptr(nr), ^uintptr(0), 0, 0, ^uintptr(0), 0, 0)
		if e == unix.ENOSYS {
			k.absent[nr] = true
		}
	}
	// setxattr(NULL, NULL, NULL, 0, all flags): EINVAL where the flags
	// come first, EFAULT where the path is copied and looked up first.
	_, _, e := unix.Syscall6(unix.SYS_SETXATTR, 0, 0, 0, 0, ^uintptr(0), 0)
	k.xattrLookupFirst = e == unix.EFAULT
	// fsetxattr(-1, NULL, NULL, 0, 0): EFAULT where the name comes
	// first, EBADF where the descriptor does.
	_, _, e = unix.Syscall6(unix.SYS_FSETXATTR, ^uintptr(0), 0, 0, 0, 0, 0)
	k.fxattrFdFirst = e == unix.EBADF
	return k
}

// lacks reports whether the running kernel lacks syscall nr.
func (k *kernelSays) lacks(nr int) bool { return k.absent[nr] }

// xattrOrder answers an xattr call whose flags, name or value check failed
// with e: on kernels that look the path or descriptor up first, that
// lookup's error comes before e.
func (s *receiver) xattrOrder(n *notify.Notif, c *call, e unix.Errno) unix.Errno {
	if e == 0 || c.sc == nil || len(c.sc.Args) == 0 {
		return e
	}
	k := runningKernel()
	lookupFirst := k.xattrLookupFirst
	if c.sc.Args[0] == sysinfo.ArgFd {
		lookupFirst = k.fxattrFdFirst
	}
	if !lookupFirst {
		return e
	}
	if le := s.lookupError(n, c); le != 0 {
		return le
	}
	return e
}

// lookupError is the error the kernel's lookup of the call's first argument
// — a descriptor or a path from the cwd — gives, 0 if it finds an object.
func (s *receiver) lookupError(n *notify.Notif, c *call) unix.Errno {
	a0 := n.Data.Args[0]
	if c.sc.Args[0] == sysinfo.ArgFd {
		obj, err := s.resolver.ResolveFd(c.tid, int(int32(a0)), false)
		if err != nil {
			return errnoFor(err)
		}
		obj.Close()
		return 0
	}
	m, err := args.ReadPath(c.tid, a0, s.scratch.Path[:])
	if err != nil {
		return errnoFor(err)
	}
	obj, err := s.resolver.Resolve(resolve.Request{Tid: c.tid, Tgid: c.tgid, Dirfd: unix.AT_FDCWD,
		Path: string(s.scratch.Path[:m]), Follow: c.follows(c.sc.Follow), OwnRoot: s.ownRoot.Load()})
	if err != nil {
		return errnoFor(err)
	}
	obj.Close()
	return 0
}
