package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// WorkerRole is the emulation worker, for reexec.Run in main (and in TestMain
// of tests that emulate). A worker — vigil re-executed with argv[0]
// "vigil:emulate", already inside the watchee's user and mount namespaces
// (nsenter.c) — serves requests until the supervisor hangs up.
func WorkerRole() reexec.Role { return reexec.Role{Name: workerRole, Main: workerMain} }

// workerMain serves as a worker; its arguments (the namespaces joined and
// the supplementary groups) were consumed by nsenter.c.
func workerMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "vigil: emulation worker started with arguments %q\n", args)
		return 2
	}
	// Every request runs on this thread, which takes on each watchee's
	// credentials, root and umask in turn.
	runtime.LockOSThread()
	return serveWorker()
}

// maxSymlinks is the kernel's MAXSYMLINKS (include/linux/namei.h).
const maxSymlinks = 40

// oTmpfile is the kernel's __O_TMPFILE bit (unix.O_TMPFILE includes
// O_DIRECTORY).
const oTmpfile = unix.O_TMPFILE &^ unix.O_DIRECTORY

type workerState struct {
	ctl, proc int
	// perm is the permitted capability set, regained before changing ids
	// or root: the previous request may have left a watchee's smaller
	// effective set.
	perm [2]uint32
	// cur is what the thread has taken on, so that a request for the same
	// watchee as the previous one costs no credential syscalls.
	cur  threadState
	recv []byte
	send []byte
	oob  []byte
	link []byte
	// inline: a thread of vigil itself (inline.go), whose root and umask
	// are the process's and the watchee's already.
	inline bool
}

// threadState is the credential state of the serving thread.
type threadState struct {
	valid        bool
	root         rootID
	fsuid, fsgid uint32
	umask        uint32
	capEff       uint64
	groups       string
}

// rootID identifies a directory as a path, not just an inode: the same
// directory reached through another mount is another root (mounts beneath it
// differ). A mount id cannot be reused while this thread's root holds it.
type rootID struct {
	mnt uint64
	dev uint64
	ino uint64
}

func statRoot(fd int) (rootID, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return rootID{}, err
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		// Before Linux 5.8: no mount id, never trust the cache.
		return rootID{}, nil
	}
	return rootID{mnt: stx.Mnt_id, dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), ino: stx.Ino}, nil
}

func serveWorker() int {
	// A truncate past the watchee's RLIMIT_FSIZE signals the caller; the
	// supervisor forwards SIGXFSZ to the watchee instead.
	signal.Ignore(syscall.SIGXFSZ, syscall.SIGPIPE)
	w := &workerState{
		ctl: fdCtl, proc: fdProc,
		recv: make([]byte, maxMessage), send: make([]byte, 0, 8192),
		oob: make([]byte, unix.CmsgSpace(4*maxFds)), link: make([]byte, unix.PathMax),
	}
	if err := w.setup(); err != nil {
		_, _ = unix.Write(w.ctl, []byte("E"+err.Error()))
		return 125
	}
	// The greeting names the serving thread, which the supervisor keeps on
	// its own CPU (worker.follow).
	greeting := binary.LittleEndian.AppendUint32([]byte("R"), uint32(unix.Gettid()))
	if _, err := unix.Write(w.ctl, greeting); err != nil {
		return 1
	}
	for {
		n, oobn, flags, _, err := unix.Recvmsg(w.ctl, w.recv, w.oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 1
		}
		fds, ferr := parseRights(w.oob[:oobn])
		if n == 0 && oobn == 0 {
			// The supervisor hung up.
			return 0
		}
		in := emptyFdSet()
		var req request
		var resp response
		out := emptyFdSet()
		switch {
		case ferr != nil:
			resp = internal(ferr)
		case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
			closeAll(fds)
			resp = internal(errors.New("request truncated"))
		default:
			if err := req.decode(w.recv[:n]); err != nil {
				closeAll(fds)
				resp = internal(err)
			} else if fdCount(req.FdMask) != len(fds) {
				closeAll(fds)
				resp = internal(fmt.Errorf("request announces %d fds but carries %d", fdCount(req.FdMask), len(fds)))
			} else {
				in.assign(req.FdMask, fds)
				resp = w.handle(&req, &in, &out)
			}
		}
		in.closeAll()
		ofds, mask := out.list()
		resp.FdMask = mask
		w.send = resp.encode(w.send)
		var oob []byte
		if len(ofds) > 0 {
			oob = unix.UnixRights(ofds...)
		}
		err = unix.Sendmsg(w.ctl, w.send, oob, nil, 0)
		for err == unix.EINTR {
			err = unix.Sendmsg(w.ctl, w.send, oob, nil, 0)
		}
		out.closeAll()
		if err != nil {
			return 1
		}
	}
}

func (w *workerState) setup() error {
	// A private fs_struct: this thread's chroot, cwd and umask change per
	// request, and must not be the Go runtime's other threads' business.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	w.perm = [2]uint32{data[0].Permitted, data[1].Permitted}
	// The thread starts at its own root, so a watchee with the same root
	// needs no chroot (nor CAP_SYS_CHROOT).
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /: %w", err)
	}
	w.cur.root, err = statRoot(root)
	unix.Close(root)
	if err != nil {
		return fmt.Errorf("identifying the worker's root: %w", err)
	}
	if err := unix.Fchdir(w.proc); err != nil {
		return fmt.Errorf("entering /proc: %w", err)
	}
	return nil
}

func internal(err error) response { return response{Status: statusInternal, Msg: err.Error()} }

func unsupported(why string) response { return response{Status: statusUnsupported, Msg: why} }

func errnoResp(err error) response {
	if err == nil {
		return response{}
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return response{Status: statusOK, Errno: int32(e)}
	}
	return internal(err)
}

// setCaps sets the effective set (within the permitted one, which is kept).
func (w *workerState) setCaps(eff uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff) & w.perm[0], Permitted: w.perm[0]},
		{Effective: uint32(eff>>32) & w.perm[1], Permitted: w.perm[1]},
	}
	return unix.Capset(&hdr, &data[0])
}

// enter takes on the watchee's root and credentials for one request,
// changing only what differs from the previous request. The order matters:
// chroot needs CAP_SYS_CHROOT and setgroups/setfs[ug]id CAP_SET[UG]ID, which
// the watchee's effective set may lack, so those come first and the watchee's
// capabilities last (setfsuid itself may change the effective set: the
// kernel's fixup around fsuid 0). The cwd stays at vigil's /proc, so that
// "thread-self/fd/N" names this thread's descriptors for the path-only
// syscalls (truncate, setxattr). A failure invalidates the cached state.
func (w *workerState) enter(root int, c *wireCred) (err error) {
	defer func() {
		if err != nil {
			w.cur.valid = false
		}
	}()
	full := uint64(w.perm[0]) | uint64(w.perm[1])<<32
	var want rootID
	chroot := false
	if root >= 0 && !w.inline {
		if want, err = statRoot(root); err != nil {
			return fmt.Errorf("identifying the watchee's root: %w", err)
		}
		chroot = want == (rootID{}) || want != w.cur.root
	}
	groups := ""
	if c.SetGroups {
		groups = groupsKey32(c.Groups)
	}
	ids := !w.cur.valid || c.Fsuid != w.cur.fsuid || c.Fsgid != w.cur.fsgid || (c.SetGroups && groups != w.cur.groups)
	if chroot || ids {
		if err := w.setCaps(full); err != nil {
			return fmt.Errorf("regaining capabilities: %w", err)
		}
		w.cur.capEff = full
	}
	if chroot {
		w.cur.root = rootID{} // unknown until it succeeded
		if err := unix.Fchdir(root); err != nil {
			return fmt.Errorf("entering the watchee's root: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot to the watchee's root: %w", err)
		}
		if err := unix.Fchdir(w.proc); err != nil {
			return fmt.Errorf("entering /proc: %w", err)
		}
		w.cur.root = want
	}
	if ids {
		if c.SetGroups {
			if err := unix.Setgroups(c.Groups); err != nil {
				return fmt.Errorf("setgroups: %w", err)
			}
			w.cur.groups = groups
		}
		if err := setFsIDs(c.Fsuid, c.Fsgid); err != nil {
			return err
		}
		w.cur.fsuid, w.cur.fsgid = c.Fsuid, c.Fsgid
		w.cur.capEff = ^uint64(0) // the fsuid fixup may have changed it
	}
	if w.inline && c.Umask != w.cur.umask {
		return errInlineUmask
	}
	if !w.cur.valid || c.Umask != w.cur.umask {
		unix.Umask(int(c.Umask))
		w.cur.umask = c.Umask
	}
	if eff := c.CapEff & full; eff != w.cur.capEff {
		if err := w.setCaps(eff); err != nil {
			return fmt.Errorf("taking on the watchee's capabilities: %w", err)
		}
		w.cur.capEff = eff
	}
	w.cur.valid = true
	return nil
}

// setFsIDs sets the calling thread's fsgid, then fsuid, and checks that
// they took: setfs[ug]id reports failure only by leaving the old id.
func setFsIDs(uid, gid uint32) error {
	if _, err := unix.SetfsgidRetGid(int(gid)); err != nil {
		return fmt.Errorf("setfsgid: %w", err)
	}
	if cur, _ := unix.SetfsgidRetGid(-1); uint32(cur) != gid {
		return fmt.Errorf("setfsgid(%d) left fsgid %d", gid, cur)
	}
	if _, err := unix.SetfsuidRetUid(int(uid)); err != nil {
		return fmt.Errorf("setfsuid: %w", err)
	}
	if cur, _ := unix.SetfsuidRetUid(-1); uint32(cur) != uid {
		return fmt.Errorf("setfsuid(%d) left fsuid %d", uid, cur)
	}
	return nil
}

func groupsKey32(g []int) string {
	u := make([]uint32, len(g))
	for i, v := range g {
		u[i] = uint32(v)
	}
	return groupsKey(u)
}

// magic names descriptor fd of this thread relative to /proc. Opening or
// following it lands on exactly the file the descriptor holds (a procfs
// "magic link"), without another lookup by name.
func magic(fd int) string { return "thread-self/fd/" + strconv.Itoa(fd) }

func (w *workerState) handle(req *request, in, out *fdSet) response {
	if err := w.enter(in.root, &req.Cred); err != nil {
		return internal(err)
	}
	switch req.Op {
	case opPrepare:
		return w.prepare(req, in, out)
	case opPrepareOpen:
		return w.prepareOpen(req, in, out)
	case opOpen:
		return w.open(req, in, out)
	case opMknod:
		return errnoResp(unix.Mknodat(in.parent, req.Path, uint32(req.Mode), int(req.Dev)))
	case opMkdir:
		return errnoResp(unix.Mkdirat(in.parent, req.Path, uint32(req.Mode)))
	case opUnlink:
		return errnoResp(unix.Unlinkat(in.parent, req.Path, int(req.Flags)))
	case opRename:
		return errnoResp(unix.Renameat2(in.parent, req.Path, in.parent2, req.Name2, uint(req.Flags)))
	case opSymlink:
		return errnoResp(unix.Symlinkat(req.Str, in.parent, req.Path))
	case opLink:
		switch {
		case req.Lookup == lookupFd:
			// linkat(fd, "", ..., AT_EMPTY_PATH) on the watchee's own file:
			// the kernel's CAP_DAC_READ_SEARCH rule applies as to the watchee.
			return errnoResp(unix.Linkat(in.obj2, "", in.parent2, req.Name2, unix.AT_EMPTY_PATH))
		case in.obj2 >= 0:
			// AT_SYMLINK_FOLLOW: link the resolved object itself.
			return errnoResp(unix.Linkat(w.proc, magic(in.obj2), in.parent2, req.Name2, unix.AT_SYMLINK_FOLLOW))
		}
		return errnoResp(unix.Linkat(in.parent, req.Path, in.parent2, req.Name2, 0))
	case opChmod:
		return errnoResp(unix.Fchmodat(w.proc, magic(in.obj), uint32(req.Mode), 0))
	case opChown:
		return errnoResp(unix.Fchownat(w.proc, magic(in.obj), int(req.Uid), int(req.Gid), 0))
	case opTruncate:
		lim := unix.Rlimit{Cur: req.Dev, Max: unix.RLIM_INFINITY}
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
			return internal(fmt.Errorf("setting RLIMIT_FSIZE: %w", err))
		}
		return errnoResp(unix.Truncate(magic(in.obj), req.Length))
	case opSetxattr:
		if req.Lookup == lookupFd {
			// fsetxattr on the watchee's own file (EBADF for O_PATH).
			return errnoResp(unix.Fsetxattr(in.obj, req.Str, req.Value, int(req.Flags)))
		}
		return errnoResp(unix.Setxattr(magic(in.obj), req.Str, req.Value, int(req.Flags)))
	case opRemovexattr:
		if req.Lookup == lookupFd {
			return errnoResp(unix.Fremovexattr(in.obj, req.Str))
		}
		return errnoResp(unix.Removexattr(magic(in.obj), req.Str))
	case opAccess:
		return errnoResp(unix.Faccessat2(w.proc, magic(in.obj), uint32(req.Mode), unix.AT_EACCESS))
	case opBind:
		if in.parent < 0 {
			// No file to create: the thread's credentials are the
			// watchee's (CAP_NET_BIND_SERVICE, netlink groups).
			return errnoResp(rawBind(in.obj, req.Value))
		}
		return bindInPrivateView(in.obj, in.parent, req.Path, req.Value, &req.Cred, viewMounts{clone: in.obj2, proc: in.parent2})
	}
	return internal(fmt.Errorf("unknown op %d", req.Op))
}

// openPath resolves p from base with O_PATH (no side effects) and the
// watchee's credentials, so search permissions, protected_symlinks and
// RESOLVE_* behave as for the watchee. RESOLVE_NO_MAGICLINKS is always added:
// a /proc magic link followed here would name the worker's objects, not the
// watchee's.
func (w *workerState) openPath(base int, p string, flags uint64, resolve uint64) (int, *response) {
	var st unix.Stat_t
	return w.openPathStat(base, p, flags, resolve, &st)
}

// openPathStat is openPath that also leaves the object's stat in st (zero
// when fstat failed).
func (w *workerState) openPathStat(base int, p string, flags uint64, resolve uint64, st *unix.Stat_t) (int, *response) {
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | flags, Resolve: resolve | unix.RESOLVE_NO_MAGICLINKS}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(base, p, &how)
		if err == nil {
			if unix.Fstat(fd, st) != nil {
				*st = unix.Stat_t{}
			}
			if isProcfs(fd, st) {
				unix.Close(fd)
				r := unsupported("the object is on procfs, whose contents depend on the opener")
				return -1, &r
			}
			return fd, nil
		}
		// RESOLVE_IN_ROOT and RESOLVE_BENEATH fail with EAGAIN when a
		// rename raced the ".." checks; the kernel expects a retry.
		if err == unix.EAGAIN && resolve&resolveCached == 0 && tries < 16 {
			continue
		}
		if err == unix.ELOOP && resolve&unix.RESOLVE_NO_MAGICLINKS == 0 {
			h := how
			h.Resolve &^= unix.RESOLVE_NO_MAGICLINKS
			fd2, err2 := unix.Openat2(base, p, &h)
			if err2 == nil {
				unix.Close(fd2)
			}
			if err2 != unix.ELOOP {
				r := unsupported("the path crosses a /proc magic link")
				return -1, &r
			}
		}
		r := errnoResp(err)
		return -1, &r
	}
}

// isProcfs reports whether fd, whose stat is st, is on a procfs. procfs
// superblocks take an anonymous device (major 0, set_anon_super), so an
// object on a block device's file system needs no statfs to tell.
func isProcfs(fd int, st *unix.Stat_t) bool {
	if st.Ino != 0 && unix.Major(st.Dev) != 0 {
		return false
	}
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC
}

// fdPath is the path of fd in the watchee's view: procfs prints it relative
// to the reading thread's root, which enter set to the watchee's.
func (w *workerState) fdPath(fd int) string {
	n, err := unix.Readlinkat(w.proc, magic(fd), w.link)
	if err != nil {
		return ""
	}
	return string(w.link[:n])
}

func (w *workerState) joinPath(parent int, name string) string {
	dir := w.fdPath(parent)
	clean := strings.TrimRight(name, "/")
	if clean == "" {
		return "/"
	}
	if !strings.HasPrefix(dir, "/") {
		// Outside the watchee's root: keep procfs's spelling.
		return dir + "/" + clean
	}
	return path.Join(dir, clean)
}

// splitLast splits p into the directory to resolve and the final component.
// Trailing slashes stay on the component: the kernel treats "x/" unlike "x"
// (it must be a directory), and the *at() call given "x/" does the same.
func splitLast(p string) (dir, name string) {
	end := len(p)
	for end > 0 && p[end-1] == '/' {
		end--
	}
	if end == 0 {
		// "/" (or "///"): handed to the *at() call as is, it is the
		// watchee's root (LAST_ROOT), which the worker is chrooted to.
		return "/", "/"
	}
	i := strings.LastIndexByte(p[:end], '/')
	if i < 0 {
		return "", p
	}
	return p[:i+1], p[i+1:]
}

func (w *workerState) prepare(req *request, in, out *fdSet) response {
	base := in.base
	if base < 0 {
		base = in.root
	}
	var resp response
	switch req.Lookup {
	case LookupParent:
		dir, name := splitLast(req.Path)
		parent, r := w.openPath(base, dir, unix.O_DIRECTORY, 0)
		if r != nil {
			return *r
		}
		out.parent = parent
		resp.Name = name
		resp.Path = w.joinPath(parent, name)
		var st unix.Stat_t
		resp.Exists = unix.Fstatat(parent, strings.TrimRight(name, "/"), &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	case LookupFollow, LookupNoFollow:
		var flags uint64
		if req.Lookup == LookupNoFollow {
			flags = unix.O_NOFOLLOW
		}
		obj, r := w.openPath(base, req.Path, flags, 0)
		if r != nil {
			return *r
		}
		out.obj = obj
		resp.Exists = true
		resp.Path = w.fdPath(obj)
	case lookupFd:
		var st unix.Stat_t
		if unix.Fstat(in.obj, &st) != nil {
			st = unix.Stat_t{}
		}
		if isProcfs(in.obj, &st) {
			return unsupported("the object is on procfs, whose contents depend on the opener")
		}
		resp.Exists = true
		resp.Path = w.fdPath(in.obj)
	default:
		return internal(fmt.Errorf("unknown lookup %d", req.Lookup))
	}
	return resp
}

// reopen opens the object an O_PATH descriptor holds with the watchee's
// flags, through its magic link: the file opened is the one vetted, whatever
// happened to its name since. O_CREAT, O_EXCL (but O_TMPFILE's) and O_NOFOLLOW
// were settled by the lookup (and O_NOFOLLOW would stop at the magic link itself); O_NOCTTY
// keeps a terminal from becoming the worker's (terminals are refused anyway).
// None of them is stored in the file's f_flags, which therefore equal the
// watchee's.
func (w *workerState) reopen(obj int, flags, mode uint64) (int, error) {
	return reopenAt(w.proc, obj, flags, mode)
}

// reopenAt opens the object O_PATH descriptor obj names with the open's
// flags, through procfs proc's thread-self/fd link: exactly that object,
// with the access checks of the calling thread's credentials.
func reopenAt(proc, obj int, flags, mode uint64) (int, error) {
	return unix.Openat(proc, magic(obj), reopenFlags(flags), uint32(mode))
}

// reopenIn is reopenAt through fds, a held /proc/<pid>/fd directory of the
// calling process: one name to look up instead of four, for a caller whose
// threads all share one descriptor table (vigil's).
func reopenIn(fds, obj int, flags, mode uint64) (int, error) {
	return unix.Openat(fds, strconv.Itoa(obj), reopenFlags(flags), uint32(mode))
}

func reopenFlags(flags uint64) int {
	drop := uint64(unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW)
	if flags&oTmpfile != 0 {
		// With O_TMPFILE, O_EXCL is no lookup's business: it makes the
		// new file one that linkat can never give a name.
		drop &^= unix.O_EXCL
	}
	return int((flags &^ drop) | unix.O_CLOEXEC | unix.O_NOCTTY)
}

// prepareOpen is phase A of an emulated open: find what the open would act on
// without side effects. An existing target comes back as an O_PATH object
// (and, for opens without side effects on regular files and directories,
// already opened); a target O_CREAT would create comes back as its parent
// directory and final name, after following a dangling final symlink as the
// kernel does.
func (w *workerState) prepareOpen(req *request, in, out *fdSet) response {
	base := in.base
	if base < 0 {
		base = in.root
	}
	flags := req.Flags
	var resp response
	if flags&unix.O_PATH != 0 {
		fd, r := w.openPath(base, req.Path, flags&(unix.O_NOFOLLOW|unix.O_DIRECTORY), req.Resolve)
		if r != nil {
			return *r
		}
		out.open = fd
		resp.Exists = true
		resp.Path = w.fdPath(fd)
		return resp
	}
	if flags&unix.O_CREAT == 0 {
		var st unix.Stat_t
		obj, r := w.openPathStat(base, req.Path, flags&(unix.O_NOFOLLOW|unix.O_DIRECTORY), req.Resolve, &st)
		if r != nil {
			return *r
		}
		out.obj = obj
		resp.Exists = true
		if !req.Unnamed {
			resp.Path = w.fdPath(obj)
		}
		if flags&(unix.O_TRUNC|oTmpfile) == 0 && st.Ino != 0 &&
			(st.Mode&unix.S_IFMT == unix.S_IFREG || st.Mode&unix.S_IFMT == unix.S_IFDIR) {
			// No side effects: open now and save a round trip. A failure
			// is not reported here but by phase B, after the policy.
			if fd, err := w.reopen(obj, flags, req.Mode); err == nil {
				out.open = fd
			}
		}
		return resp
	}
	return w.prepareCreate(base, req, out)
}

// prepareCreate is phase A of an open with O_CREAT: it follows final
// symlinks to the name the open would create or open, and returns that name
// with its directory (out.parent), and the object when it exists (out.obj).
func (w *workerState) prepareCreate(base int, req *request, out *fdSet) response {
	excl := req.Flags&unix.O_EXCL != 0
	nofollow := req.Flags&unix.O_NOFOLLOW != 0
	cur := req.Path
	for links := 0; ; links++ {
		if links > maxSymlinks {
			return response{Errno: int32(unix.ELOOP)}
		}
		dir, name := splitLast(cur)
		parent, r := w.openPath(base, dir, unix.O_DIRECTORY, req.Resolve)
		if r != nil {
			return *r
		}
		if last := strings.TrimRight(name, "/"); last == "" || last == "." || last == ".." {
			// "."/".." and the root, trailing slashes or not: open_last_lookups
			// leaves them to do_open, where O_CREAT|O_EXCL on what exists is
			// EEXIST before a directory is EISDIR.
			unix.Close(parent)
			if excl {
				return response{Errno: int32(unix.EEXIST)}
			}
			return response{Errno: int32(unix.EISDIR)}
		}
		if strings.HasSuffix(name, "/") {
			// open_last_lookups: O_CREAT with a trailing slash on a name is
			// EISDIR once the parent resolved, O_EXCL or not.
			unix.Close(parent)
			return response{Errno: int32(unix.EISDIR)}
		}
		var st unix.Stat_t
		err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == unix.ENOENT:
			out.parent = parent
			if req.Unnamed {
				return response{Name: name}
			}
			return response{Name: name, Path: w.joinPath(parent, name)}
		case err != nil:
			unix.Close(parent)
			return errnoResp(err)
		case st.Mode&unix.S_IFMT == unix.S_IFLNK && !nofollow:
			next, r := w.followCreateLink(base, req, parent, cur, dir, name)
			if r != nil {
				return *r
			}
			cur = next
		default:
			return w.prepareExisting(parent, name, excl, !req.Unnamed, out)
		}
	}
}

// followCreateLink follows symlink name, found in directory parent (dir in
// the path cur), for an open with O_CREAT, and returns the path the open
// goes on with. It closes parent.
func (w *workerState) followCreateLink(base int, req *request, parent int, cur, dir, name string) (string, *response) {
	if req.Flags&unix.O_EXCL != 0 {
		// O_CREAT|O_EXCL never follows: the symlink exists.
		unix.Close(parent)
		return "", &response{Errno: int32(unix.EEXIST)}
	}
	if req.Resolve&unix.RESOLVE_NO_SYMLINKS != 0 {
		unix.Close(parent)
		return "", &response{Errno: int32(unix.ELOOP)}
	}
	// Let the kernel follow it once from the original base, so
	// protected_symlinks, RESOLVE_BENEATH/IN_ROOT and NO_XDEV judge as for
	// the watchee; only a dangling link needs the manual step below.
	if fd, r := w.openPath(base, cur, 0, req.Resolve); r != nil {
		if r.Status != statusOK || unix.Errno(r.Errno) != unix.ENOENT {
			unix.Close(parent)
			return "", r
		}
	} else {
		unix.Close(fd)
	}
	n, err := unix.Readlinkat(parent, name, w.link)
	unix.Close(parent)
	if err != nil {
		r := errnoResp(err)
		return "", &r
	}
	target := string(w.link[:n])
	if target == "" {
		return "", &response{Errno: int32(unix.ENOENT)}
	}
	// Resolving dir+target from the same base is following the link: ".."
	// in the target applies to the resolved dir.
	if strings.HasPrefix(target, "/") {
		return target, nil
	}
	return dir + target, nil
}

// prepareExisting returns name, which exists in directory parent, as the
// object an O_CREAT open would open (EEXIST under O_EXCL). It closes parent
// or hands it to out.
func (w *workerState) prepareExisting(parent int, name string, excl, named bool, out *fdSet) response {
	if excl {
		unix.Close(parent)
		return response{Errno: int32(unix.EEXIST)}
	}
	// An existing name (a symlink itself under O_NOFOLLOW, which phase B
	// turns into ELOOP after the sticky check, as the kernel orders them).
	obj, err := unix.Openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(parent)
		return errnoResp(err)
	}
	out.obj = obj
	out.parent = parent
	if !named {
		return response{Exists: true, Name: name}
	}
	return response{Exists: true, Name: name, Path: w.fdPath(obj)}
}

// open is phase B: the open proper, on exactly what phase A returned.
func (w *workerState) open(req *request, in, out *fdSet) response {
	if in.obj >= 0 {
		fd, err := w.reopen(in.obj, req.Flags, req.Mode)
		if err != nil {
			return errnoResp(err)
		}
		out.open = fd
		return response{}
	}
	// Create in the vetted directory. O_EXCL makes sure the file is new
	// and that no symlink planted since phase A is followed; if the name
	// appeared meanwhile the watchee's own open would have opened it, which
	// must be vetted first.
	fd, err := unix.Openat(in.parent, req.Path, int(req.Flags|unix.O_EXCL|unix.O_CLOEXEC), uint32(req.Mode))
	if err == unix.EEXIST && req.Flags&unix.O_EXCL == 0 {
		return response{Status: statusRaced}
	}
	if err != nil {
		return errnoResp(err)
	}
	out.open = fd
	return response{}
}
