package emulate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/procinfo"
	"github.com/vigilsec/vigil/enforcer/resolve"
)

// Lookup says what a path argument names for the call being emulated, which
// decides what is resolved once and then acted on.
type Lookup uint8

const (
	// LookupParent: the call acts on a name in a directory and never follows
	// a final symlink (mkdir, mknod, unlink, rmdir, rename, symlink, the new
	// name of link, the old name of link without AT_SYMLINK_FOLLOW). The
	// parent is resolved once; the call then runs on (ParentFd, Name).
	LookupParent Lookup = iota + 1
	// LookupFollow: the call acts on the object, following a final symlink
	// (chmod, chown, truncate, setxattr, link with AT_SYMLINK_FOLLOW). The
	// object is resolved once; the call then runs on ObjectFd.
	LookupFollow
	// LookupNoFollow: the call acts on the object, a final symlink itself
	// (lchown, lsetxattr, fchownat/fchmodat with AT_SYMLINK_NOFOLLOW).
	LookupNoFollow

	lookupFd     // PrepareFd: the watchee's own descriptor (AT_EMPTY_PATH, fsetxattr)
	lookupOpen   // PrepareOpen
	lookupSocket // PrepareSocket
)

// Prepared is the object of a call, resolved once in the watchee's view and
// held open, so that what the caller vets is exactly what the call acts on: a
// racing thread that swaps a path component for a symlink afterwards changes
// nothing, because no path is looked up again (only a single final name in
// the held directory, or the held object itself).
//
// The caller evaluates its policy on Path (and may fstat or readlink the
// descriptors, which are vigil's), checks the notification is still valid
// (the snapshot of /proc was read while it was pending), then calls one of
// the Emulator's operations with it, and closes it.
type Prepared struct {
	// Path is the absolute path in the watchee's view of the object the
	// call acts on: the parent's path joined with Name for LookupParent.
	// Policy is matched on it.
	Path string
	// Exists reports whether the object exists. Dev, Ino and Mode identify
	// it (not following a final symlink for LookupParent); for an object
	// that does not exist yet they are zero.
	Exists   bool
	Dev, Ino uint64
	Mode     uint32
	// ParentDev and ParentIno identify the directory ParentFd holds.
	ParentDev, ParentIno uint64
	// ParentFd is an O_PATH descriptor of the directory the call acts in
	// (LookupParent, and opens that create), -1 otherwise.
	ParentFd int
	// Name is the final component as spelled, trailing slashes kept, that
	// the call passes relative to ParentFd.
	Name string
	// ObjectFd is an O_PATH descriptor of the object (LookupFollow,
	// LookupNoFollow, an existing open target), or the watchee's own file
	// (PrepareFd); -1 otherwise.
	ObjectFd int
	// Domain is, for PrepareSocket and PrepareBindSocket, the socket's
	// address family.
	Domain int

	// watcheeFd is, for PrepareFd, the descriptor's number in the
	// watchee's table.
	watcheeFd int

	e      *Emulator
	c      Caller
	lookup Lookup
	cred   creds
	wcred  wireCred
	w      executor
	wkey   workerKey   // the worker that serves the watchee, if w is not one
	tidfd  int         // /proc/<tid>, during preparation only (snap's)
	root   int         // the caller's root (snap's, or p's own when snap is nil)
	snap   *snapshot   // what begin read of the caller, held until Close
	st     unix.Stat_t // the object's, when Exists
	how    unix.OpenHow
	openFd int
}

// Close releases the descriptors. It is safe to call more than once.
func (p *Prepared) Close() error {
	if p == nil {
		return nil
	}
	if p.snap != nil {
		// The snapshot's descriptors are the snapshot's to close.
		p.tidfd, p.root = -1, -1
		p.e.snaps.release(p.snap)
		p.snap = nil
	}
	for _, fd := range []*int{&p.tidfd, &p.root, &p.ParentFd, &p.ObjectFd, &p.openFd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	return nil
}

// begin takes (or reuses, snapshotOf) the caller's credentials and root
// and picks its executor.
func (e *Emulator) begin(c Caller, lookup Lookup) (*Prepared, error) {
	s, err := e.snapshotOf(c)
	if err != nil {
		return nil, err
	}
	p := &Prepared{e: e, c: c, lookup: lookup, ParentFd: -1, ObjectFd: -1, tidfd: s.tidfd, root: s.root, openFd: -1,
		snap: s, cred: s.cred}
	if p.w, p.wkey, err = e.executorFor(c, s); err == nil {
		err = p.translate()
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// translate expresses the credentials in the executor's user namespace.
func (p *Prepared) translate() error {
	um, gm := p.w.maps()
	uid, ok := um.toInner(p.cred.Fsuid)
	if !ok {
		return fmt.Errorf("%w: the watchee's fsuid %d has no id in its own user namespace", ErrUnsupported, p.cred.Fsuid)
	}
	gid, ok := gm.toInner(p.cred.Fsgid)
	if !ok {
		return fmt.Errorf("%w: the watchee's fsgid %d has no id in its own user namespace", ErrUnsupported, p.cred.Fsgid)
	}
	p.wcred = wireCred{Fsuid: uid, Fsgid: gid, Umask: p.cred.Umask, CapEff: p.cred.CapEff}
	if p.w.setsGroups() {
		p.wcred.Groups, p.wcred.SetGroups = hostGroups(p.cred.Groups), true
	}
	return nil
}

func hostGroups(g []uint32) []int {
	out := make([]int, len(g))
	for i, v := range g {
		out[i] = int(v)
	}
	return out
}

// endPrepare closes what only preparation needed.
func (p *Prepared) endPrepare() {
	switch {
	case p.snap == nil:
		if p.tidfd >= 0 {
			unix.Close(p.tidfd)
		}
	case p.c.Changes.Source == 0:
		// An uncached snapshot is p's alone: its /proc/<tid> goes now.
		p.snap.closeTid()
	}
	p.tidfd = -1
}

// roundTrip sends one request to p's executor. A request that never reached
// a dead worker is retried once with a fresh one; nothing had happened.
func (e *Emulator) roundTrip(p *Prepared, req *request, in fdSet) (response, fdSet, error) {
	if _, ok := p.w.(*inline); ok && !inlineOp(req) {
		if err := e.useWorker(p); err != nil {
			return response{}, emptyFdSet(), err
		}
	}
	in.root = p.root
	req.Cred = p.wcred
	for attempt := 0; ; attempt++ {
		resp, out, err := p.w.call(req, in)
		if err != nil {
			e.forget(p.w, err)
			if errors.Is(err, errNotSent) && attempt == 0 {
				if werr := e.replaceWorker(p); werr != nil {
					return response{}, emptyFdSet(), werr
				}
				req.Cred = p.wcred
				continue
			}
			if errors.Is(err, errNotSent) {
				err = fmt.Errorf("%w: worker unavailable", ErrWorker)
			}
			return response{}, emptyFdSet(), err
		}
		switch resp.Status {
		case statusOK:
			return resp, out, nil
		case statusUnsupported:
			out.closeAll()
			return resp, emptyFdSet(), fmt.Errorf("%w: %s", ErrUnsupported, resp.Msg)
		case statusRaced:
			out.closeAll()
			return resp, emptyFdSet(), ErrRaced
		}
		out.closeAll()
		return resp, emptyFdSet(), fmt.Errorf("emulation worker: %s", resp.Msg)
	}
}

// replaceWorker starts a new worker for p's watchee after the old one died.
func (e *Emulator) replaceWorker(p *Prepared) error {
	if _, ok := p.w.(*worker); !ok {
		return fmt.Errorf("%w: executor unavailable", ErrWorker)
	}
	return e.useWorker(p)
}

// useWorker hands p to the worker for its watchee's namespaces and groups:
// after a worker died, or for a request the inline executor cannot run.
func (e *Emulator) useWorker(p *Prepared) error {
	w, err := e.workerFor(p.c, p.wkey)
	if err != nil {
		return err
	}
	p.w = w
	return p.translate()
}

// PrepareAt resolves path, relative to the watchee's dirfd (or cwd for
// AT_FDCWD, or its root when absolute), for a call that acts as lookup says.
// The error is a unix.Errno when the watchee's own lookup would fail the same
// way (answer it), ESRCH when the thread is gone, or one of the package's
// errors.
func (e *Emulator) PrepareAt(c Caller, dirfd int, path string, lookup Lookup) (*Prepared, error) {
	if lookup < LookupParent || lookup > LookupNoFollow {
		return nil, fmt.Errorf("preparing %q: invalid lookup %d", path, lookup)
	}
	if path == "" {
		// Without AT_EMPTY_PATH (PrepareFd) an empty path is ENOENT.
		return nil, unix.ENOENT
	}
	if len(path) >= unix.PathMax {
		return nil, unix.ENAMETOOLONG
	}
	p, err := e.begin(c, lookup)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	in := emptyFdSet()
	if path[0] != '/' {
		if in.base, err = resolve.OpenDirfd(p.tidfd, dirfd); err != nil {
			p.Close()
			return nil, err
		}
	}
	resp, out, err := e.roundTrip(p, &request{Op: opPrepare, Lookup: lookup, Path: path}, in)
	if in.base >= 0 {
		unix.Close(in.base)
	}
	if err == nil && resp.Errno != 0 {
		out.closeAll()
		err = unix.Errno(resp.Errno)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Path = resp.Path
	p.ParentFd, p.ObjectFd = out.parent, out.obj
	if err := p.identify(resp.Name); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// PrepareFd prepares a call on the watchee's descriptor fd itself: fsetxattr,
// and *at() calls with AT_EMPTY_PATH and an empty path (AT_FDCWD names the
// cwd). The watchee's file is fetched with pidfd_getfd, so the call acts on
// the same open file description.
func (e *Emulator) PrepareFd(c Caller, fd int) (*Prepared, error) {
	p, err := e.begin(c, lookupFd)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	p.watcheeFd = fd
	if fd == unix.AT_FDCWD {
		if p.ObjectFd, err = unix.Openat(p.tidfd, "cwd", unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			err = unix.ESRCH
		}
	} else {
		p.ObjectFd, err = e.getFd(c, fd)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	in := emptyFdSet()
	in.obj = p.ObjectFd
	resp, out, err := e.roundTrip(p, &request{Op: opPrepare, Lookup: lookupFd}, in)
	out.closeAll()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Path = resp.Path
	if err := p.identify(""); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// getFd duplicates the watchee thread's descriptor into vigil. PIDFD_THREAD
// (Linux 6.9) makes the pidfd name the thread, whose fd table may differ from
// the leader's; older kernels fall back to the process. It runs before the
// caller's ID_VALID check, which is what proves the pidfd named the watchee
// and not a process that recycled its id. With a change counter the pidfd is
// kept for the thread's next calls (snapshots.pidfd).
func (e *Emulator) getFd(c Caller, fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	h := e.pidfds.get(c)
	if h == nil {
		pidfd, _, err := OpenPidfd(c.Pid, c.Tid, 0)
		if err != nil {
			return -1, unix.ESRCH
		}
		h = &heldPidfd{held: held{epoch: c.Changes, refs: 1}, fd: pidfd}
		e.pidfds.put(c, h)
	}
	defer e.pidfds.release(h)
	nfd, err := unix.PidfdGetfd(h.fd, fd, 0)
	if err != nil {
		if err == unix.EBADF {
			return -1, unix.EBADF
		}
		return -1, unix.ESRCH
	}
	return nfd, nil
}

// pidfdThread is PIDFD_THREAD (include/uapi/linux/pidfd.h), which equals
// O_EXCL; kernels before 6.9 refuse it with EINVAL.
const pidfdThread = unix.O_EXCL

// OpenPidfd opens a pidfd of thread tid (PIDFD_THREAD, Linux 6.9), or of
// its process tgid on older kernels, with flags (PIDFD_NONBLOCK); thread
// says which it names. A thread's pidfd names its own descriptor table and
// becomes readable when that thread exits; a process's when it all exits.
func OpenPidfd(tgid, tid, flags int) (fd int, thread bool, err error) {
	fd, err = unix.PidfdOpen(tid, pidfdThread|flags)
	if err == unix.EINVAL && tgid > 0 {
		fd, err = unix.PidfdOpen(tgid, flags)
		return fd, false, err
	}
	return fd, err == nil, err
}

// identify fills the identity fields from the descriptors vigil holds.
func (p *Prepared) identify(name string) error {
	var st unix.Stat_t
	if p.ParentFd >= 0 {
		if err := unix.Fstat(p.ParentFd, &st); err != nil {
			return fmt.Errorf("stat of prepared parent: %w", err)
		}
		p.ParentDev, p.ParentIno = st.Dev, st.Ino
	}
	switch {
	case p.openFd >= 0:
		if err := unix.Fstat(p.openFd, &p.st); err != nil {
			return fmt.Errorf("stat of prepared file: %w", err)
		}
		p.Exists = true
	case p.ObjectFd >= 0:
		if err := unix.Fstat(p.ObjectFd, &p.st); err != nil {
			return fmt.Errorf("stat of prepared object: %w", err)
		}
		p.Exists = true
	case p.ParentFd >= 0 && name != "":
		p.Name = name
		trimmed := strings.TrimRight(name, "/")
		// The entry itself, not followed: what unlink or rename would act
		// on. vigil is root, so this sees entries the watchee may not.
		p.Exists = trimmed != "" && unix.Fstatat(p.ParentFd, trimmed, &p.st, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	if p.Name == "" {
		p.Name = name
	}
	if p.Exists {
		p.Dev, p.Ino, p.Mode = p.st.Dev, p.st.Ino, p.st.Mode
	}
	return nil
}

// validOpenFlags is the kernel's VALID_OPEN_FLAGS; oLargefile is its
// O_LARGEFILE (0 in x/sys on 64-bit, where glibc defines it away).
const (
	oLargefile      = 0o100000
	validOpenFlags  = unix.O_RDONLY | unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC | unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC | unix.O_ASYNC | unix.O_DIRECT | oLargefile | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_CLOEXEC | unix.O_PATH | unix.O_TMPFILE
	openPathFlags   = unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_PATH | unix.O_CLOEXEC
	sIALLUGO        = 0o7777
	emulatedResolve = unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_IN_ROOT | resolveCached
)

// OpenHowFromFlags turns the flags and mode of open(2), openat(2) or
// creat(2) into the open_how the kernel builds for them (build_open_how in
// fs/open.c): unknown flags are dropped rather than refused, O_PATH keeps only
// the flags it honours, and the mode counts only for O_CREAT and O_TMPFILE.
// creat(p, m) is open(p, O_CREAT|O_WRONLY|O_TRUNC, m).
func OpenHowFromFlags(flags int, mode uint32) unix.OpenHow {
	f := (uint64(uint32(flags)) | oLargefile) & validOpenFlags
	how := unix.OpenHow{Flags: f, Mode: uint64(mode) & sIALLUGO}
	if f&unix.O_PATH != 0 {
		how.Flags &= openPathFlags
	}
	if how.Flags&(unix.O_CREAT|oTmpfile) == 0 {
		how.Mode = 0
	}
	return how
}

// PrepareOpen is phase A of an emulated open(2)/openat(2)/openat2(2): it finds
// what the open would act on, without side effects, in the watchee's view and
// with its credentials and RESOLVE_* flags. Path, Exists and the identity
// fields describe the file that Open will open (an existing one, or the name
// O_CREAT will create in ParentFd, after following a dangling final symlink as
// the kernel does).
//
// Errors come in the kernel's order: invalid flags (EINVAL, checked by the
// kernel itself), the path (ENOENT, ENAMETOOLONG), EMFILE when the watchee has
// no descriptor slot below its RLIMIT_NOFILE (checked here, before any lookup,
// because ADDFD would fail only after an O_CREAT or O_TRUNC took effect),
// then the lookup. ErrUnsupported marks opens whose effect depends on the
// opener (terminals, /proc) or that would block the worker (a FIFO without
// O_NONBLOCK); pass those to the kernel with a binding.
func (e *Emulator) PrepareOpen(c Caller, dirfd int, path string, how unix.OpenHow) (*Prepared, error) {
	return e.prepareOpen(c, dirfd, path, how, true)
}

// PrepareOpenUnnamed is PrepareOpen without Path, for a caller that judged
// the object already and compares its identity (Dev and Ino, or ParentDev,
// ParentIno and Name): it saves reading the name back.
func (e *Emulator) PrepareOpenUnnamed(c Caller, dirfd int, path string, how unix.OpenHow) (*Prepared, error) {
	return e.prepareOpen(c, dirfd, path, how, false)
}

// slotFree fails with EMFILE when p's caller has no descriptor slot left.
func (e *Emulator) slotFree(p *Prepared) error {
	free, err := fdSlotFree(e.procfd, p.tidfd, p.c.Pid)
	if err == nil && !free {
		err = unix.EMFILE
	}
	return err
}

func (e *Emulator) prepareOpen(c Caller, dirfd int, path string, how unix.OpenHow, named bool) (*Prepared, error) {
	if err := e.checkOpenFlags(how); err != nil {
		return nil, err
	}
	if how.Resolve&^emulatedResolve != 0 {
		return nil, fmt.Errorf("%w: unknown RESOLVE_ flags %#x", ErrUnsupported, how.Resolve&^emulatedResolve)
	}
	if path == "" {
		return nil, unix.ENOENT
	}
	if len(path) >= unix.PathMax {
		return nil, unix.ENAMETOOLONG
	}
	p, err := e.begin(c, lookupOpen)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	// The kernel takes the slot before it looks anything up. An open that
	// may create or truncate is refused EMFILE before the lookup; one that
	// cannot (no O_CREAT, O_TRUNC or O_TMPFILE on a regular file or a
	// directory, opened during the lookup below) needs no check, since
	// ADDFD fails with EMFILE itself; every other outcome checks before it
	// is answered or acted on.
	slotChecked := how.Flags&(unix.O_CREAT|unix.O_TRUNC|oTmpfile) != 0
	if slotChecked {
		if err := e.slotFree(p); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.how = how
	resp, out, err := e.lookUpOpen(p, dirfd, path, named)
	if err != nil {
		if _, lookupFailed := err.(unix.Errno); lookupFailed && !slotChecked {
			if serr := e.slotFree(p); serr != nil {
				err = serr
			}
		}
		p.Close()
		return nil, err
	}
	p.Path = resp.Path
	p.ParentFd, p.ObjectFd, p.openFd = out.parent, out.obj, out.open
	if !slotChecked && p.openFd < 0 {
		if err := e.slotFree(p); err != nil {
			p.Close()
			return nil, err
		}
	}
	if err := p.identify(resp.Name); err != nil {
		p.Close()
		return nil, err
	}
	return p.finishOpen(resp.Exists)
}

// finishOpen settles a prepared open: a target that does not exist has no
// identity, and an open whose effect depends on the opener is refused.
func (p *Prepared) finishOpen(exists bool) (*Prepared, error) {
	if !exists {
		p.Exists = false
		p.Dev, p.Ino, p.Mode = 0, 0, 0
	}
	if why := p.opensAsOpener(); why != "" {
		p.Close()
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, why)
	}
	return p, nil
}

// lookUpOpen is phase A of an emulated open in p's executor: what path
// names from dirfd (or the root), as the watchee's open would find it. The
// lookup's own failure comes back as a unix.Errno.
func (e *Emulator) lookUpOpen(p *Prepared, dirfd int, path string, named bool) (response, fdSet, error) {
	how := p.how
	in := emptyFdSet()
	if path[0] != '/' || how.Resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		// RESOLVE_BENEATH and RESOLVE_IN_ROOT anchor even absolute paths
		// at the dirfd.
		var err error
		if in.base, err = resolve.OpenDirfd(p.tidfd, dirfd); err != nil {
			return response{}, emptyFdSet(), err
		}
	}
	req := request{Op: opPrepareOpen, Flags: how.Flags, Mode: how.Mode, Resolve: how.Resolve, Path: path, Unnamed: !named}
	resp, out, err := e.roundTrip(p, &req, in)
	if in.base >= 0 {
		unix.Close(in.base)
	}
	if err == nil && resp.Errno != 0 {
		out.closeAll()
		return resp, emptyFdSet(), unix.Errno(resp.Errno)
	}
	return resp, out, err
}

// PrepareOpenResolved is PrepareOpen for an object the caller found the way
// the watchee's own open would: obj is an O_PATH descriptor of an existing
// regular file or directory, reached from the watchee's root (which must be
// vigil's) without a symlink, and identified by dev, ino and mode. It
// applies when the watchee shares vigil's namespaces, root and credentials
// (the inline executor with no credential to change: the same walk passes
// the same access checks) and the open neither creates, truncates nor asks
// for O_PATH or RESOLVE_ flags; ok is false otherwise, or on any error, and
// obj stays the caller's. With ok, obj is p's and the lookup is saved.
func (e *Emulator) PrepareOpenResolved(c Caller, obj int, dev, ino uint64, mode uint32, how unix.OpenHow) (p *Prepared, ok bool) {
	if typ := mode & unix.S_IFMT; typ != unix.S_IFREG && typ != unix.S_IFDIR {
		return nil, false
	}
	if how.Flags&(unix.O_CREAT|unix.O_TRUNC|oTmpfile|unix.O_PATH) != 0 || how.Resolve != 0 || obj < 0 || e.inline == nil {
		return nil, false
	}
	if e.checkOpenFlags(how) != nil {
		return nil, false
	}
	if st := (unix.Stat_t{Dev: dev, Ino: ino}); isProcfs(obj, &st) {
		return nil, false // the opener decides what a procfs file holds
	}
	p, err := e.begin(c, lookupOpen)
	if err != nil {
		return nil, false
	}
	defer p.endPrepare()
	if p.w != executor(e.inline) || !e.inline.isSelf(&p.cred) {
		p.Close()
		return nil, false
	}
	p.how = how
	p.ObjectFd = obj
	p.Exists = true
	p.Dev, p.Ino, p.Mode = dev, ino, mode
	p.st = unix.Stat_t{Dev: dev, Ino: ino, Mode: mode}
	if fd, err := reopenIn(e.selfFds, obj, how.Flags, how.Mode); err == nil {
		p.openFd = fd
	} else if err := e.slotFree(p); err != nil {
		// Phase B reports the reopen's error, unless the table is full:
		// the kernel takes the slot first.
		p.ObjectFd = -1
		p.Close()
		return nil, false
	}
	return p, true
}

// PrepareOpenHeld is PrepareOpen for an object vigil has already resolved
// and holds — reached through a /proc magic link, which the worker cannot
// follow for the watchee: obj is an O_PATH descriptor of the existing object
// (or -1), parent one of the directory name is in (or -1 when unknown; it
// must be known for a name to create). The descriptors stay the caller's.
func (e *Emulator) PrepareOpenHeld(c Caller, obj, parent int, name string, how unix.OpenHow) (*Prepared, error) {
	if err := e.checkOpenFlags(how); err != nil {
		return nil, err
	}
	if obj < 0 && (parent < 0 || name == "" || strings.Contains(name, "/")) {
		return nil, fmt.Errorf("preparing a held open: no object and no directory to create %q in", name)
	}
	p, err := e.begin(c, lookupOpen)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	free, err := fdSlotFree(e.procfd, p.tidfd, c.Pid)
	if err == nil && !free {
		err = unix.EMFILE
	}
	if err == nil {
		err = p.hold(obj, parent, name)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	p.how = how
	return p.finishOpen(obj >= 0)
}

// PrepareHeld is PrepareAt for an object vigil already holds (see
// PrepareOpenHeld): obj for LookupFollow and LookupNoFollow, parent and name
// for LookupParent. The descriptors stay the caller's.
func (e *Emulator) PrepareHeld(c Caller, obj, parent int, name string, lookup Lookup) (*Prepared, error) {
	switch {
	case lookup == LookupParent && (parent < 0 || name == "" || strings.Contains(strings.TrimRight(name, "/"), "/")):
		return nil, fmt.Errorf("%w: the call acts on a name, and the path ends in a /proc magic link", ErrUnsupported)
	case (lookup == LookupFollow || lookup == LookupNoFollow) && obj < 0:
		return nil, fmt.Errorf("preparing a held object: none given")
	case lookup < LookupParent || lookup > LookupNoFollow:
		return nil, fmt.Errorf("preparing a held object: invalid lookup %d", lookup)
	}
	p, err := e.begin(c, lookup)
	if err != nil {
		return nil, err
	}
	defer p.endPrepare()
	if lookup == LookupParent {
		obj = -1
	} else {
		parent, name = -1, ""
	}
	if err := p.hold(obj, parent, name); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// hold takes copies of the given descriptors and identifies them.
func (p *Prepared) hold(obj, parent int, name string) error {
	var err error
	if obj >= 0 {
		if p.ObjectFd, err = unix.Dup(obj); err != nil {
			return fmt.Errorf("holding the object: %w", err)
		}
	}
	if parent >= 0 {
		if p.ParentFd, err = unix.Dup(parent); err != nil {
			return fmt.Errorf("holding the parent: %w", err)
		}
	}
	return p.identify(name)
}

// Opened reports that the open was performed while preparing, which happens
// only when it has no effect of its own: a regular file or a directory,
// opened without O_CREAT, O_TRUNC or O_TMPFILE. What remains is installing
// the descriptor (ADDFD), which reaches the very call that waits or fails.
func (p *Prepared) Opened() bool { return p.openFd >= 0 }

// Blocking reports whether opening the prepared object would wait for
// another process: a FIFO opened read-only or write-only without
// O_NONBLOCK waits for the other end (O_RDWR never does). Open refuses it;
// OpenFIFO performs it off the worker.
func (p *Prepared) Blocking() bool {
	f := p.how.Flags
	return p.Exists && p.Mode&unix.S_IFMT == unix.S_IFIFO && f&unix.O_PATH == 0 &&
		f&unix.O_NONBLOCK == 0 && f&unix.O_ACCMODE != unix.O_RDWR
}

// opensAsOpener explains why opening the existing object from the worker
// would not be what the watchee's open does, or returns "".
func (p *Prepared) opensAsOpener() string {
	flags := p.how.Flags
	if !p.Exists || flags&unix.O_PATH != 0 || p.Mode&unix.S_IFMT != unix.S_IFCHR {
		return ""
	}
	maj, min := unix.Major(p.st.Rdev), unix.Minor(p.st.Rdev)
	if maj == 5 && min == 0 {
		// The caller substitutes the watchee's controlling terminal.
		return "/dev/tty names the opener's controlling terminal"
	}
	// tty_open makes a terminal the controlling terminal of a session
	// leader that has none, unless O_NOCTTY. The worker reopens with
	// O_NOCTTY, which is exact unless the watchee is such a leader.
	if flags&unix.O_NOCTTY == 0 && isTerminal(maj, min) && p.acquiresTTY() {
		return "the watchee is a session leader without a controlling terminal: opening a terminal would make it its own"
	}
	return ""
}

// acquiresTTY reports whether the watchee is a session leader without a
// controlling terminal (/proc/<tid>/stat: session == pid, tty_nr == 0), whose
// open of a terminal without O_NOCTTY would make it its own. Unknown counts
// as yes: refuse rather than differ. Called while preparing (tidfd open).
func (p *Prepared) acquiresTTY() bool {
	var buf [512]byte
	b, err := readProcFile(p.tidfd, "stat", buf[:])
	if err != nil {
		return true
	}
	session, tty, ok := statSessionTTY(b)
	return !ok || session == p.c.Pid && tty == 0
}

// statSessionTTY parses the session and tty_nr fields of /proc/<pid>/stat.
func statSessionTTY(b []byte) (session, tty int, ok bool) {
	sf, ok1 := procinfo.StatField(b, 6)
	tf, ok2 := procinfo.StatField(b, 7)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(string(sf))
	t, err2 := strconv.Atoi(string(tf))
	return s, t, err1 == nil && err2 == nil
}

// isTerminal reports tty majors: the tty and vc devices (4), the console
// and ptmx (5:1, 5:2) and the Unix98 pseudo-terminal slaves (136-143).
func isTerminal(maj, min uint32) bool {
	return maj == 4 || maj == 5 && (min == 1 || min == 2) || maj >= 136 && maj <= 143
}

// stickyCheck is the kernel's may_create_in_sticky (fs/namei.c) for an
// O_CREAT open of an existing object, which the magic-link reopen of phase B
// cannot perform itself: it would see /proc as the directory. Ids are host
// ids, as vigil stats them; idmapped mounts are not considered.
func (e *Emulator) stickyCheck(p *Prepared) unix.Errno {
	if p.ParentFd < 0 {
		return 0
	}
	var dir unix.Stat_t
	if err := unix.Fstat(p.ParentFd, &dir); err != nil || dir.Mode&unix.S_ISVTX == 0 {
		return 0
	}
	typ := p.st.Mode & unix.S_IFMT
	protReg, protFifo := e.sysctl("sys/fs/protected_regular"), e.sysctl("sys/fs/protected_fifos")
	if typ == unix.S_IFREG && protReg == 0 || typ == unix.S_IFIFO && protFifo == 0 {
		return 0
	}
	if p.st.Uid == dir.Uid || p.st.Uid == p.cred.Fsuid {
		return 0
	}
	if dir.Mode&0o002 != 0 {
		return unix.EACCES
	}
	if dir.Mode&0o020 != 0 && (protFifo >= 2 && typ == unix.S_IFIFO || protReg >= 2 && typ == unix.S_IFREG) {
		return unix.EACCES
	}
	return 0
}

func (e *Emulator) sysctl(name string) int {
	var buf [32]byte
	b, err := readProcFile(e.procfd, name, buf[:])
	if err != nil {
		return 0
	}
	v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return v
}

// resolveCached is RESOLVE_CACHED (Linux 5.12), which x/sys lacks.
const resolveCached = 0x20

// checkOpenFlags returns the error the kernel gives for how's flags, mode
// and resolve bits before it looks at the path. build_open_flags runs before
// the path is copied, so an openat2 of an empty path reports exactly the flag
// errors and otherwise ENOENT. It depends on nothing but how, so the few
// combinations a watchee uses are probed once (openFlagsSeen).
func (e *Emulator) checkOpenFlags(how unix.OpenHow) error {
	if e.openFlags.seen(how) {
		return nil
	}
	fd, err := unix.Openat2(-1, "", &how)
	switch err {
	case unix.ENOENT:
		e.openFlags.add(how)
		return nil
	case nil:
		unix.Close(fd)
		return fmt.Errorf("%w: probing open flags unexpectedly opened a file", ErrUnsupported)
	}
	return err
}

// openFlagsSeen remembers the last few open flag combinations the kernel
// accepted.
type openFlagsSeen struct {
	mu   sync.Mutex
	ok   [8]unix.OpenHow
	n    int
	next int
}

func (s *openFlagsSeen) seen(how unix.OpenHow) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.ok[:s.n] {
		if h == how {
			return true
		}
	}
	return false
}

func (s *openFlagsSeen) add(how unix.OpenHow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok[s.next] = how
	s.next = (s.next + 1) % len(s.ok)
	if s.n < len(s.ok) {
		s.n++
	}
}
