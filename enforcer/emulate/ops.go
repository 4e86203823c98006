package emulate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errMisuse reports a Prepared of the wrong kind for an operation.
var errMisuse = errors.New("prepared with the wrong lookup for this call")

func (p *Prepared) check(kinds ...Lookup) error {
	if p == nil || (p.root < 0 && p.ObjectFd < 0) {
		return errors.New("emulating with a closed or nil Prepared")
	}
	for _, k := range kinds {
		if p.lookup == k {
			return nil
		}
	}
	return errMisuse
}

// do runs one operation in p's worker and turns the answer into a Result.
func (e *Emulator) do(p *Prepared, req *request, in fdSet) (Result, error) {
	resp, out, err := e.roundTrip(p, req, in)
	if err != nil {
		return errnoResult(0), err
	}
	r := Result{Val: resp.Val, Errno: unix.Errno(resp.Errno), Fd: -1}
	if out.open >= 0 {
		r.Fd, out.open = out.open, -1
	}
	out.closeAll()
	return r, nil
}

// parentIn is the descriptor set of a call on (ParentFd, Name).
func parentIn(p *Prepared) fdSet {
	in := emptyFdSet()
	in.parent = p.ParentFd
	return in
}

func objectIn(p *Prepared) fdSet {
	in := emptyFdSet()
	in.obj = p.ObjectFd
	return in
}

// Mkdirat performs mkdirat(2) on p (LookupParent) as the watchee: the new
// directory's owner, group (setgid parents included) and mode after the
// watchee's umask or the parent's default ACL are the kernel's doing.
func (e *Emulator) Mkdirat(p *Prepared, mode uint32) (Result, error) {
	if err := p.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("mkdirat: %w", err)
	}
	return e.do(p, &request{Op: opMkdir, Path: p.Name, Mode: uint64(mode)}, parentIn(p))
}

// Unlinkat performs unlinkat(2) on p (LookupParent); flags is 0 for unlink
// and AT_REMOVEDIR for rmdir.
func (e *Emulator) Unlinkat(p *Prepared, flags int) (Result, error) {
	if err := p.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("unlinkat: %w", err)
	}
	return e.do(p, &request{Op: opUnlink, Path: p.Name, Flags: uint64(uint32(flags))}, parentIn(p))
}

// Renameat2 performs renameat2(2) from oldp to newp (both LookupParent, for
// the same caller) with RENAME_* flags.
func (e *Emulator) Renameat2(oldp, newp *Prepared, flags uint) (Result, error) {
	if err := oldp.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("renameat2: %w", err)
	}
	if err := newp.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("renameat2: %w", err)
	}
	in := parentIn(oldp)
	in.parent2 = newp.ParentFd
	return e.do(oldp, &request{Op: opRename, Path: oldp.Name, Name2: newp.Name, Flags: uint64(flags)}, in)
}

// Linkat performs linkat(2) creating newp (LookupParent) for oldp: prepared
// with LookupParent when the watchee did not pass AT_SYMLINK_FOLLOW (the
// name itself is linked), LookupFollow when it did (the resolved object is
// linked), or PrepareFd for AT_EMPTY_PATH.
func (e *Emulator) Linkat(oldp, newp *Prepared) (Result, error) {
	if err := oldp.check(LookupParent, LookupFollow, lookupFd); err != nil {
		return errnoResult(0), fmt.Errorf("linkat: %w", err)
	}
	if err := newp.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("linkat: %w", err)
	}
	in := emptyFdSet()
	in.parent2 = newp.ParentFd
	req := request{Op: opLink, Lookup: oldp.lookup, Name2: newp.Name}
	if oldp.lookup == LookupParent {
		in.parent = oldp.ParentFd
		req.Path = oldp.Name
	} else {
		in.obj2 = oldp.ObjectFd
	}
	r, err := e.do(oldp, &req, in)
	if err != nil || oldp.lookup != lookupFd || r.Errno != unix.ENOENT {
		return r, err
	}
	return e.linkOwnFile(oldp, newp, r)
}

// Symlinkat performs symlinkat(2) creating p (LookupParent) with target,
// which is stored as is and never resolved.
func (e *Emulator) Symlinkat(target string, p *Prepared) (Result, error) {
	if err := p.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("symlinkat: %w", err)
	}
	return e.do(p, &request{Op: opSymlink, Path: p.Name, Str: target}, parentIn(p))
}

// Fchmodat performs chmod(2)/fchmodat(2)/fchmodat2(2) on p (LookupFollow,
// LookupNoFollow, or PrepareFd for AT_EMPTY_PATH). A symlink itself gets
// EOPNOTSUPP, as from fchmodat2 with AT_SYMLINK_NOFOLLOW.
func (e *Emulator) Fchmodat(p *Prepared, mode uint32) (Result, error) {
	if err := p.check(LookupFollow, LookupNoFollow, lookupFd); err != nil {
		return errnoResult(0), fmt.Errorf("fchmodat: %w", err)
	}
	return e.do(p, &request{Op: opChmod, Mode: uint64(mode)}, objectIn(p))
}

// Fchownat performs chown(2)/lchown(2)/fchownat(2) on p. uid and gid are as
// the watchee passed them (ids of its user namespace, -1 for unchanged).
func (e *Emulator) Fchownat(p *Prepared, uid, gid int) (Result, error) {
	if err := p.check(LookupFollow, LookupNoFollow, lookupFd); err != nil {
		return errnoResult(0), fmt.Errorf("fchownat: %w", err)
	}
	return e.do(p, &request{Op: opChown, Uid: int64(int32(uid)), Gid: int64(int32(gid))}, objectIn(p))
}

// Truncate performs truncate(2) on p (LookupFollow) under the watchee's
// RLIMIT_FSIZE; when the new length exceeds it, the watchee thread gets the
// SIGXFSZ the kernel would have sent it along with EFBIG.
func (e *Emulator) Truncate(p *Prepared, length int64) (Result, error) {
	if err := p.check(LookupFollow); err != nil {
		return errnoResult(0), fmt.Errorf("truncate: %w", err)
	}
	lim, err := rlimit(e.procfd, p.c.Pid, unix.RLIMIT_FSIZE)
	if err != nil {
		return errnoResult(0), err
	}
	r, err := e.do(p, &request{Op: opTruncate, Length: length, Dev: lim.Cur}, objectIn(p))
	if err == nil && r.Errno == unix.EFBIG && lim.Cur != unix.RLIM_INFINITY && length >= 0 && uint64(length) > lim.Cur {
		_ = unix.Tgkill(p.c.Pid, p.c.Tid, unix.SIGXFSZ)
	}
	return r, err
}

// Mknodat performs mknodat(2) on p (LookupParent) as the watchee. With lend,
// a character or block device node that the watchee's own mknod refuses with
// EPERM — it lacks CAP_MKNOD in the initial user namespace, which no user
// namespace grants — is created with vigil's privilege instead, but with the
// watchee's fsuid, fsgid, groups and umask, so the node is owned and moded as
// the watchee's own would be. Everything the kernel checks before CAP_MKNOD
// (lookup, EEXIST, EROFS, write permission on the directory) was already
// decided by the watchee's attempt. Filesystems mounted nodev are refused with
// EPERM: a node there would be unusable. Only the caller's policy decides
// which devices may be lent.
func (e *Emulator) Mknodat(p *Prepared, mode uint32, dev uint64, lend bool) (Result, error) {
	if err := p.check(LookupParent); err != nil {
		return errnoResult(0), fmt.Errorf("mknodat: %w", err)
	}
	r, err := e.do(p, &request{Op: opMknod, Path: p.Name, Mode: uint64(mode), Dev: dev}, parentIn(p))
	if err != nil || !lend || r.Errno != unix.EPERM {
		return r, err
	}
	typ := mode & unix.S_IFMT
	if typ != unix.S_IFCHR && typ != unix.S_IFBLK || typ == unix.S_IFCHR && dev == 0 {
		// Not a device, or a whiteout (c 0:0), which needs no CAP_MKNOD:
		// the EPERM has another cause.
		return r, nil
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(p.ParentFd, &sfs); err != nil {
		return errnoResult(0), fmt.Errorf("statfs of mknod parent: %w", err)
	}
	if sfs.Flags&unix.ST_NODEV != 0 {
		return r, nil
	}
	return e.lendMknod(p, mode, dev)
}

// lendCaps is the effective set of a lent mknod: CAP_MKNOD is the privilege
// lent; CAP_DAC_OVERRIDE keeps the directory check from failing again under
// host ids where the watchee's attempt, with its user namespace
// capabilities, already passed it.
const lendCaps = 1<<unix.CAP_MKNOD | 1<<unix.CAP_DAC_OVERRIDE

// lendMknod creates the node on vigil's local thread, in the initial user
// namespace, with the watchee's host fsuid, fsgid, groups and umask, so the
// kernel assigns owner, group (setgid directories included) and mode as for
// the watchee's own node. Only a single name in the held directory is looked
// up, so no root is needed.
func (e *Emulator) lendMknod(p *Prepared, mode uint32, dev uint64) (Result, error) {
	l, err := e.localExecutor()
	if err != nil {
		return errnoResult(0), err
	}
	req := request{Op: opMknod, Path: p.Name, Mode: uint64(mode), Dev: dev, Cred: wireCred{
		Fsuid: p.cred.Fsuid, Fsgid: p.cred.Fsgid, Umask: p.cred.Umask, CapEff: lendCaps,
		Groups: hostGroups(p.cred.Groups), SetGroups: true,
	}}
	in := emptyFdSet()
	in.parent = p.ParentFd
	resp, out, err := l.call(&req, in)
	out.closeAll()
	if err != nil {
		return errnoResult(0), err
	}
	if resp.Status != statusOK {
		return errnoResult(0), fmt.Errorf("lending mknod: %s", resp.Msg)
	}
	return errnoResult(unix.Errno(resp.Errno)), nil
}

// Setxattr performs setxattr(2) (p from LookupFollow), lsetxattr(2)
// (LookupNoFollow) or fsetxattr(2) (PrepareFd) as the watchee. With lend, a
// trusted.* name that the watchee's own call refuses with EPERM — trusted.*
// needs CAP_SYS_ADMIN in the initial user namespace — is set with vigil's
// privilege, but only on a regular file or directory that the watchee may
// write (the permission a user.* attribute needs, checked with its
// credentials). Only the caller's policy decides which names may be lent.
func (e *Emulator) Setxattr(p *Prepared, name string, value []byte, flags int, lend bool) (Result, error) {
	if err := p.check(LookupFollow, LookupNoFollow, lookupFd); err != nil {
		return errnoResult(0), fmt.Errorf("setxattr: %w", err)
	}
	req := request{Op: opSetxattr, Lookup: p.lookup, Str: name, Value: value, Flags: uint64(uint32(flags))}
	r, err := e.do(p, &req, objectIn(p))
	if err != nil || !lend || r.Errno != unix.EPERM || !strings.HasPrefix(name, "trusted.") {
		return r, err
	}
	if typ := p.st.Mode & unix.S_IFMT; typ != unix.S_IFREG && typ != unix.S_IFDIR {
		return r, nil
	}
	acc, err := e.do(p, &request{Op: opAccess, Mode: unix.W_OK}, objectIn(p))
	if err != nil {
		return errnoResult(0), err
	}
	if acc.Errno != 0 {
		return r, nil
	}
	// vigil's own CAP_SYS_ADMIN; no other credential enters a trusted.*
	// check (xattr_permission returns after capable()).
	if p.lookup == lookupFd {
		err = unix.Fsetxattr(p.ObjectFd, name, value, flags)
	} else {
		err = unix.Setxattr("/proc/self/fd/"+strconv.Itoa(p.ObjectFd), name, value, flags)
	}
	var errno unix.Errno
	if err != nil && !errors.As(err, &errno) {
		return errnoResult(0), fmt.Errorf("lending setxattr: %w", err)
	}
	return errnoResult(errno), nil
}

// Removexattr performs removexattr(2) (p from LookupFollow), lremovexattr(2)
// (LookupNoFollow) or fremovexattr(2) (PrepareFd) as the watchee. Nothing
// is lent: removing an attribute the watchee may not remove stays refused.
func (e *Emulator) Removexattr(p *Prepared, name string) (Result, error) {
	if err := p.check(LookupFollow, LookupNoFollow, lookupFd); err != nil {
		return errnoResult(0), fmt.Errorf("removexattr: %w", err)
	}
	return e.do(p, &request{Op: opRemovexattr, Lookup: p.lookup, Str: name}, objectIn(p))
}

// Open is phase B of an emulated open: it opens exactly what PrepareOpen
// found, as the watchee, and returns the file in Result.Fd for the caller to
// install (InstallFd). An existing file is reopened through the descriptor
// held since phase A, so a name swapped meanwhile is never opened; a file to
// create is created with O_EXCL in the held directory. ErrRaced means the
// name to create appeared meanwhile (the watchee's own open would have opened
// it): prepare and vet again.
func (e *Emulator) Open(p *Prepared) (Result, error) {
	if err := p.check(lookupOpen); err != nil {
		return errnoResult(0), fmt.Errorf("open: %w", err)
	}
	if p.Blocking() {
		return errnoResult(0), fmt.Errorf("%w: a blocking FIFO open would wait in the worker (use OpenFIFO)", ErrUnsupported)
	}
	flags := p.how.Flags
	var fdFlags uint32
	if flags&unix.O_CLOEXEC != 0 {
		fdFlags = unix.O_CLOEXEC
	}
	if p.Exists && flags&unix.O_CREAT != 0 {
		// do_open's checks for O_CREAT on an existing object, in order.
		if p.Mode&unix.S_IFMT == unix.S_IFDIR {
			return errnoResult(unix.EISDIR), nil
		}
		if errno := e.stickyCheck(p); errno != 0 {
			return errnoResult(errno), nil
		}
	}
	if p.openFd >= 0 {
		fd := p.openFd
		p.openFd = -1
		return Result{Fd: fd, FdFlags: fdFlags}, nil
	}
	in := emptyFdSet()
	req := request{Op: opOpen, Flags: flags, Mode: p.how.Mode}
	if p.Exists {
		in.obj = p.ObjectFd
	} else {
		in.parent = p.ParentFd
		req.Path = p.Name
	}
	r, err := e.do(p, &req, in)
	if err != nil {
		return r, err
	}
	r.FdFlags = fdFlags
	return r, nil
}
