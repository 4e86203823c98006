package enforcer

import (
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/procinfo"
)

// Flags the path calls accept (fs/namei.c, fs/open.c, fs/xattr.c, fs/exec.c
// of Linux 6.18); any other bit is EINVAL.
const (
	linkatFlags    = unix.AT_SYMLINK_FOLLOW | unix.AT_EMPTY_PATH
	renameat2Flags = unix.RENAME_NOREPLACE | unix.RENAME_EXCHANGE | unix.RENAME_WHITEOUT
	fchownatFlags  = unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH
	fchmodat2Flags = unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH
	execveatFlags  = unix.AT_SYMLINK_NOFOLLOW | unix.AT_EMPTY_PATH
	setxattrFlags  = unix.XATTR_CREATE | unix.XATTR_REPLACE
)

// The checks below answer what the kernel answers before it reads any
// pointer argument of the call (handling.before): vigil must not report
// EFAULT or ENOENT for a path the kernel never looked at. They run before
// decode reads anything; 0 means the call passes them.

// checkLinkat: do_linkat refuses flags beyond AT_SYMLINK_FOLLOW|AT_EMPTY_PATH
// (the names were copied, but their errors surface only after this). Before
// Linux 6.10 it then refuses AT_EMPTY_PATH, whatever the name, with ENOENT
// unless the caller has CAP_DAC_READ_SEARCH in the initial user namespace.
func checkLinkat(_ *receiver, n *notify.Notif, c *call) unix.Errno {
	flags := uint32(n.Data.Args[4])
	if flags&^linkatFlags != 0 {
		return unix.EINVAL
	}
	if flags&unix.AT_EMPTY_PATH != 0 && emulate.LinkatEmptyPathNeedsCapability() &&
		!procinfo.CapableInitially(c.tid, unix.CAP_DAC_READ_SEARCH) {
		return unix.ENOENT
	}
	return 0
}

// checkRenameat2: do_renameat2 refuses unknown RENAME_* bits, and NOREPLACE
// or WHITEOUT together with EXCHANGE.
func checkRenameat2(_ *receiver, n *notify.Notif, _ *call) unix.Errno {
	f := uint32(n.Data.Args[4])
	return einvalUnless(f&^renameat2Flags == 0 &&
		(f&(unix.RENAME_NOREPLACE|unix.RENAME_WHITEOUT) == 0 || f&unix.RENAME_EXCHANGE == 0))
}

// checkUnlinkat: the syscall itself refuses flags beyond AT_REMOVEDIR, before
// getname.
func checkUnlinkat(_ *receiver, n *notify.Notif, _ *call) unix.Errno {
	return einvalUnless(uint32(n.Data.Args[2])&^unix.AT_REMOVEDIR == 0)
}

// checkFchownat: do_fchownat refuses flags beyond
// AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH.
func checkFchownat(_ *receiver, n *notify.Notif, _ *call) unix.Errno {
	return einvalUnless(uint32(n.Data.Args[4])&^fchownatFlags == 0)
}

// checkFchmodat2: do_fchmodat refuses flags beyond
// AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH.
func checkFchmodat2(_ *receiver, n *notify.Notif, _ *call) unix.Errno {
	return einvalUnless(uint32(n.Data.Args[3])&^fchmodat2Flags == 0)
}

// checkTruncate: do_sys_truncate refuses a negative length.
func checkTruncate(_ *receiver, n *notify.Notif, _ *call) unix.Errno {
	return einvalUnless(int64(n.Data.Args[1]) >= 0)
}

// checkSetxattr: path_setxattrat (6.13+) runs setxattr_copy's flags, name,
// size and value checks before it looks at the path; older kernels look the
// path up first (xattrOrder).
func checkSetxattr(s *receiver, n *notify.Notif, c *call) unix.Errno {
	return s.xattrOrder(n, c, setxattrArgs(s, n))
}

func setxattrArgs(s *receiver, n *notify.Notif) unix.Errno {
	a := &n.Data.Args
	if uint32(a[4])&^setxattrFlags != 0 {
		return unix.EINVAL
	}
	tid := int(n.Pid)
	if _, err := args.ReadXattrName(tid, a[1], s.scratch.XattrName[:]); err != nil {
		return errnoFor(err)
	}
	if _, err := args.ReadXattrValue(tid, a[2], a[3], s.scratch.XattrValue[:]); err != nil {
		return errnoFor(err)
	}
	return 0
}

// checkRemovexattr answers what the kernel answers before it looks the
// path or descriptor up: removexattr copies the attribute name first
// (EFAULT, or ERANGE for an empty or overlong name) — on 6.13 and later;
// older kernels look the path up first (xattrOrder).
func checkRemovexattr(s *receiver, n *notify.Notif, c *call) unix.Errno {
	if _, err := args.ReadXattrName(int(n.Pid), n.Data.Args[1], s.scratch.XattrName[:]); err != nil {
		return s.xattrOrder(n, c, errnoFor(err))
	}
	return 0
}

func einvalUnless(ok bool) unix.Errno {
	if ok {
		return 0
	}
	return unix.EINVAL
}

// checkExecveat answers what the kernel answers after it copied the path
// but before it looks it up (handling.afterNames): execveat copies its name
// first (getname_uflags: an empty name is ENOENT unless AT_EMPTY_PATH), then
// do_open_execat refuses unknown flags.
func checkExecveat(n *notify.Notif, c *call) unix.Errno {
	flags := uint32(n.Data.Args[4])
	if c.nPaths > 0 && c.paths[0] == "" && flags&unix.AT_EMPTY_PATH == 0 {
		return unix.ENOENT
	}
	if flags&^execveatFlags != 0 {
		return unix.EINVAL
	}
	return 0
}
