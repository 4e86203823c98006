package enforcer

import (
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/notify"
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

// checkBeforeReads answers what the kernel answers before it reads any
// pointer argument of the call: vigil must not report EFAULT or ENOENT for a
// path the kernel never looked at. It runs before decode reads anything; 0
// means the call passes these checks.
//
//	linkat     do_linkat: flags beyond AT_SYMLINK_FOLLOW|AT_EMPTY_PATH (the
//	           names were copied, but their errors surface only after this)
//	renameat2  do_renameat2: unknown RENAME_* bits, and NOREPLACE or
//	           WHITEOUT together with EXCHANGE
//	unlinkat   the syscall itself: flags beyond AT_REMOVEDIR, before getname
//	fchownat   do_fchownat, fchmodat2 do_fchmodat: flags beyond
//	           AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH
//	truncate   do_sys_truncate: a negative length
//	*setxattr  path_setxattrat (6.13+): setxattr_copy's flags, name, size and
//	           value checks all come before the path
func (s *receiver) checkBeforeReads(n *notify.Notif, c *call) unix.Errno {
	a := &n.Data.Args
	switch c.sc.Name {
	case "linkat":
		if uint32(a[4])&^linkatFlags != 0 {
			return unix.EINVAL
		}
	case "renameat2":
		f := uint32(a[4])
		if f&^renameat2Flags != 0 ||
			f&(unix.RENAME_NOREPLACE|unix.RENAME_WHITEOUT) != 0 && f&unix.RENAME_EXCHANGE != 0 {
			return unix.EINVAL
		}
	case "unlinkat":
		if uint32(a[2])&^unix.AT_REMOVEDIR != 0 {
			return unix.EINVAL
		}
	case "fchownat":
		if uint32(a[4])&^fchownatFlags != 0 {
			return unix.EINVAL
		}
	case "fchmodat2":
		if uint32(a[3])&^fchmodat2Flags != 0 {
			return unix.EINVAL
		}
	case "truncate":
		if int64(a[1]) < 0 {
			return unix.EINVAL
		}
	case "setxattr", "lsetxattr", "fsetxattr":
		if uint32(a[4])&^setxattrFlags != 0 {
			return unix.EINVAL
		}
		tid := int(n.Pid)
		if _, err := args.ReadXattrName(tid, a[1], s.scratch.XattrName[:]); err != nil {
			return args.Errno(err)
		}
		if _, err := args.ReadXattrValue(tid, a[2], a[3], s.scratch.XattrValue[:]); err != nil {
			return args.Errno(err)
		}
	}
	return 0
}

// checkAfterNames answers what the kernel answers after it copied the path
// arguments but before it looks any of them up. execveat copies its name
// first (getname_uflags: an empty name is ENOENT unless AT_EMPTY_PATH),
// then do_open_execat refuses unknown flags.
func checkAfterNames(n *notify.Notif, c *call) unix.Errno {
	if c.sc.Name != "execveat" {
		return 0
	}
	flags := uint32(n.Data.Args[4])
	if c.nPaths > 0 && c.paths[0] == "" && flags&unix.AT_EMPTY_PATH == 0 {
		return unix.ENOENT
	}
	if flags&^execveatFlags != 0 {
		return unix.EINVAL
	}
	return 0
}
