// Package resolve finds the object a watchee's path argument names, in the
// watchee's own view: its root (/proc/<tid>/root, which also carries its mount
// namespace), its cwd or dirfd, and symlinks followed exactly where the
// syscall would follow them. Policy is matched on the result, never on the
// spelling (DESIGN.md §2).
//
// Vetting must not have side effects, so every open is O_PATH. The fast path
// is one openat2(2) from the watchee's root or cwd with RESOLVE_NO_MAGICLINKS
// (vigil's /proc/self is not the watchee's); whatever it cannot settle
// (magic links, /proc/self, dangling symlinks under O_CREAT, relative paths of
// chrooted watchees) goes to a component-by-component walk.
package resolve

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's MAXSYMLINKS (include/linux/namei.h).
const maxSymlinks = 40

// Request is one path lookup.
type Request struct {
	Tid, Tgid int
	// Dirfd is the watchee's directory fd for a relative Path, or
	// unix.AT_FDCWD.
	Dirfd int
	Path  string
	// Follow says whether a final symlink is followed.
	Follow bool
	// MayCreate allows the final component to be missing (O_CREAT, mkdir,
	// mknod, rename targets...): the object is then the parent plus name.
	MayCreate bool
	// Identity asks for Dev, Ino and Mode even on the fast path (one more
	// fstat): a kernel binding pins the object by identity.
	Identity bool
	// OwnRoot is the caller's guarantee that the watchee's root directory
	// and mount namespace are vigil's own (see enforcer's root tracking).
	// Absolute paths then resolve without opening /proc/<tid>/root.
	OwnRoot bool
}

// Object is what a path names in the watchee's view.
type Object struct {
	// Path is the absolute path in the watchee's view.
	Path string
	// Exists is false when the final component is missing; Dev and Ino then
	// identify the parent directory. Dev, Ino and Mode are zero when the
	// fast path settled the lookup and Request.Identity was not set.
	Exists   bool
	Dev, Ino uint64
	// Mode is the object's st_mode (0 when missing).
	Mode uint32
}

// Resolver resolves paths for one supervisor. It is not safe for concurrent
// use; each notify loop owns one.
type Resolver struct {
	selfDev, selfIno uint64
	selfProc         string // "/proc/<vigil pid>": readlink results inside it mean /proc/self leaked
	// pidNSDev and pidNSIno identify vigil's pid namespace.
	pidNSDev, pidNSIno uint64
	fdPath             []byte
	link               []byte
	// forceWalk makes tests take the component walk for every lookup.
	forceWalk bool
}

// New returns a Resolver.
func New() (*Resolver, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return nil, fmt.Errorf("stat of vigil's root: %w", err)
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &ns); err != nil {
		return nil, fmt.Errorf("stat of vigil's pid namespace: %w", err)
	}
	return &Resolver{
		selfDev:  st.Dev,
		selfIno:  st.Ino,
		pidNSDev: ns.Dev,
		pidNSIno: ns.Ino,
		selfProc: "/proc/" + strconv.Itoa(os.Getpid()),
		fdPath:   make([]byte, 0, 64),
		link:     make([]byte, unix.PathMax),
	}, nil
}

// Resolve looks req.Path up. Errors are the errno the kernel would give the
// watchee for the lookup (ENOENT, ENOTDIR, ELOOP, EBADF, ENAMETOOLONG...),
// or ESRCH when the thread is gone.
func (r *Resolver) Resolve(req Request) (Object, error) {
	if req.Path == "" {
		return Object{}, unix.ENOENT
	}
	if len(req.Path) >= unix.PathMax {
		return Object{}, unix.ENAMETOOLONG
	}
	if req.OwnRoot && req.Path[0] == '/' && !r.forceWalk {
		if obj, err, settled := r.lexical(req); settled {
			return obj, err
		}
	}
	rootfd, err := r.openProc(req.Tid, "root")
	if err != nil {
		return Object{}, err
	}
	defer unix.Close(rootfd)
	var rst unix.Stat_t
	if err := unix.Fstat(rootfd, &rst); err != nil {
		return Object{}, unix.ESRCH
	}
	sameRoot := rst.Dev == r.selfDev && rst.Ino == r.selfIno
	ctx := walkCtx{r: r, req: req, rootfd: rootfd, rootDev: rst.Dev, rootIno: rst.Ino, sameRoot: sameRoot}

	abs := req.Path[0] == '/'
	basefd := rootfd
	if !abs {
		basefd, err = r.openBase(req.Tid, req.Dirfd)
		if err != nil {
			return Object{}, err
		}
		defer unix.Close(basefd)
	}
	if (abs || sameRoot) && !r.forceWalk {
		obj, err, settled := ctx.fast(basefd, abs)
		if settled {
			return obj, err
		}
	}
	return ctx.walk(basefd, req.Path, req.Follow, req.MayCreate)
}

// lexical is the fast path for an absolute path in vigil's own root: one
// openat2 with RESOLVE_NO_SYMLINKS. When it succeeds no symlink (magic or
// not) was traversed, so ".." and "." resolved exactly as path.Clean says and
// the cleaned spelling is the object's path: no readlink is needed. Whatever
// involves a symlink (ELOOP) is not settled here.
func (r *Resolver) lexical(req Request) (Object, error, bool) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
	if !req.Follow {
		// With O_PATH|O_NOFOLLOW a final symlink is returned, not refused.
		how.Flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, req.Path, &how)
	switch err {
	case nil:
		obj := Object{Path: path.Clean(req.Path), Exists: true}
		if req.Identity {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				unix.Close(fd)
				return Object{}, nil, false
			}
			obj.Dev, obj.Ino, obj.Mode = st.Dev, st.Ino, st.Mode
		}
		unix.Close(fd)
		return obj, nil, true
	case unix.ENOENT:
		if !req.MayCreate {
			return Object{}, unix.ENOENT, true
		}
		dir, name := splitLast(req.Path)
		if name == "" {
			return Object{}, nil, false
		}
		dfd, derr := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_NO_SYMLINKS})
		if derr != nil {
			// A symlink in the parent, or the kernel's own error: let the
			// full resolution decide.
			return Object{}, nil, false
		}
		// The parent exists and holds no symlink; the final name does not
		// exist (a dangling symlink there would have given ELOOP).
		obj := Object{Path: path.Join(path.Clean(dir), name)}
		if req.Identity {
			var st unix.Stat_t
			if err := unix.Fstat(dfd, &st); err != nil {
				unix.Close(dfd)
				return Object{}, nil, false
			}
			obj.Dev, obj.Ino = st.Dev, st.Ino
		}
		unix.Close(dfd)
		return obj, nil, true
	case unix.ELOOP, unix.EAGAIN, unix.ENOSYS, unix.E2BIG, unix.EXDEV:
		return Object{}, nil, false
	}
	return Object{}, err, true
}

// splitLast splits p into its parent directory and final component, ignoring
// trailing slashes. name is "" when p has no final name ("/", "/..", ".").
func splitLast(p string) (dir, name string) {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	i := strings.LastIndexByte(p, '/')
	dir, name = p[:i+1], p[i+1:]
	if dir == "" {
		dir = "."
	}
	if name == "." || name == ".." {
		return dir, ""
	}
	return dir, name
}

// openProc opens /proc/<tid>/<name> with O_PATH, following the magic link.
func (r *Resolver) openProc(tid int, name string) (int, error) {
	r.fdPath = append(r.fdPath[:0], "/proc/"...)
	r.fdPath = strconv.AppendInt(r.fdPath, int64(tid), 10)
	r.fdPath = append(r.fdPath, '/')
	r.fdPath = append(r.fdPath, name...)
	fd, err := unix.Open(string(r.fdPath), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.ESRCH
	}
	return fd, nil
}

// openBase opens the directory a relative path starts from.
func (r *Resolver) openBase(tid, dirfd int) (int, error) {
	tidfd, err := r.openProc(tid, "")
	if err != nil {
		return -1, err
	}
	defer unix.Close(tidfd)
	return OpenDirfd(tidfd, dirfd)
}

// OpenDirfd opens, with O_PATH through the magic link (the same directory,
// no side effects), the directory a watchee's dirfd names, given an fd of
// its /proc/<tid> directory: its cwd for AT_FDCWD. Errors are what the
// kernel gives a relative path (EBADF for a closed or negative fd, ENOTDIR
// for a non-directory), or ESRCH when the thread is gone. Holding /proc/<tid>
// open means a recycled tid cannot stand in for the watchee.
func OpenDirfd(tidfd, dirfd int) (int, error) {
	if dirfd == unix.AT_FDCWD {
		fd, err := unix.Openat(tidfd, "cwd", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, unix.ESRCH
		}
		return fd, nil
	}
	if dirfd < 0 {
		return -1, unix.EBADF
	}
	fd, err := unix.Openat(tidfd, "fd/"+strconv.Itoa(dirfd), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(tidfd, "fd", &st, 0) != nil {
			return -1, unix.ESRCH
		}
		return -1, unix.EBADF
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, unix.ESRCH
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, unix.ENOTDIR
	}
	return fd, nil
}

type walkCtx struct {
	r                *Resolver
	req              Request
	rootfd           int
	rootDev, rootIno uint64
	sameRoot         bool
}

// fast tries one openat2. settled is false when the walk must decide.
func (c *walkCtx) fast(basefd int, abs bool) (obj Object, err error, settled bool) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS}
	if !c.req.Follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	if abs {
		how.Resolve |= unix.RESOLVE_IN_ROOT
	}
	fd, err := unix.Openat2(basefd, c.req.Path, &how)
	switch err {
	case nil:
		defer unix.Close(fd)
		obj, err := c.describe(fd)
		if err != nil || c.leaksSelf(obj.Path) {
			return Object{}, nil, false
		}
		return obj, nil, true
	case unix.ENOENT:
		if c.req.MayCreate || c.r.foreignPidNS(c.req.Tid) {
			// In another pid namespace (a container), its procfs's "self"
			// is ENOENT for vigil, which has no pid there: any ENOENT may
			// come from /proc/self (or /dev/fd -> /proc/self/fd), which
			// only the walk resolves as the watchee's.
			return Object{}, nil, false
		}
		return Object{}, unix.ENOENT, true
	case unix.ELOOP, unix.EXDEV, unix.EAGAIN, unix.ENOSYS, unix.E2BIG:
		return Object{}, nil, false
	}
	return Object{}, err, true
}

// foreignPidNS reports whether thread tid lives in another pid namespace
// than vigil. Unknown counts as foreign: the walk is always correct.
func (r *Resolver) foreignPidNS(tid int) bool {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(tid)+"/ns/pid", &st); err != nil {
		return true
	}
	return st.Dev != r.pidNSDev || st.Ino != r.pidNSIno
}

// leaksSelf reports whether a result passed through vigil's own /proc/self,
// which names a different process than the watchee's.
func (c *walkCtx) leaksSelf(p string) bool {
	s := c.r.selfProc
	return strings.HasPrefix(p, s) && (len(p) == len(s) || p[len(s)] == '/')
}

// describe turns an O_PATH fd into an Object with the path in the watchee's
// view.
func (c *walkCtx) describe(fd int) (Object, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Object{}, err
	}
	p, err := c.fdLink(fd)
	if err != nil {
		return Object{}, err
	}
	return Object{Path: c.inRoot(p), Exists: true, Dev: st.Dev, Ino: st.Ino, Mode: st.Mode}, nil
}

func (c *walkCtx) fdLink(fd int) (string, error) {
	r := c.r
	r.fdPath = append(r.fdPath[:0], "/proc/self/fd/"...)
	r.fdPath = strconv.AppendInt(r.fdPath, int64(fd), 10)
	n, err := unix.Readlink(string(r.fdPath), r.link)
	if err != nil {
		return "", fmt.Errorf("reading path of fd %d: %w", fd, err)
	}
	return string(r.link[:n]), nil
}

// inRoot converts a path seen from vigil's root into the watchee's view.
func (c *walkCtx) inRoot(p string) string {
	if c.sameRoot {
		return p
	}
	rp, err := c.fdLink(c.rootfd)
	if err != nil || rp == "/" {
		return p
	}
	if p == rp {
		return "/"
	}
	if strings.HasPrefix(p, rp) && p[len(rp)] == '/' {
		return p[len(rp):]
	}
	// Outside what vigil can name from its root (another mount namespace):
	// the kernel printed the path from that namespace's root already.
	return p
}

// ResolveFd describes the object behind the watchee's fd (fsetxattr, or
// AT_EMPTY_PATH with a dirfd).
func (r *Resolver) ResolveFd(tid, fd int) (Object, error) {
	if fd < 0 {
		return Object{}, unix.EBADF
	}
	rootfd, err := r.openProc(tid, "root")
	if err != nil {
		return Object{}, err
	}
	defer unix.Close(rootfd)
	var rst unix.Stat_t
	if err := unix.Fstat(rootfd, &rst); err != nil {
		return Object{}, unix.ESRCH
	}
	ofd, err := r.openProc(tid, "fd/"+strconv.Itoa(fd))
	if err != nil {
		return Object{}, unix.EBADF
	}
	defer unix.Close(ofd)
	c := walkCtx{r: r, rootfd: rootfd, rootDev: rst.Dev, rootIno: rst.Ino,
		sameRoot: rst.Dev == r.selfDev && rst.Ino == r.selfIno}
	return c.describe(ofd)
}

// maxInterpreterDepth is the kernel's BINPRM_MAX_RECURSION: how many "#!"
// levels an exec may go through.
const maxInterpreterDepth = 4

// ExecTarget returns the object the kernel will map when the watchee execs
// obj: obj itself for a binary, or for a "#!" script the interpreter its
// first line names, resolved in the watchee's view (following nested
// scripts as binfmt_script does). The file is read through an O_RDONLY
// open that must be obj, so a swapped file is noticed, not read.
func (r *Resolver) ExecTarget(req Request, obj Object) (Object, error) {
	for depth := 0; depth < maxInterpreterDepth; depth++ {
		interp, err := r.interpreter(req, obj)
		if err != nil || interp == "" {
			return obj, err
		}
		next := req
		next.Path, next.Dirfd, next.Follow, next.MayCreate, next.Identity = interp, unix.AT_FDCWD, true, false, true
		if obj, err = r.Resolve(next); err != nil {
			return Object{}, err
		}
	}
	return Object{}, unix.ELOOP
}

// interpreter reads the "#!" line of obj, or returns "" for other files.
func (r *Resolver) interpreter(req Request, obj Object) (string, error) {
	p := obj.Path
	if !req.OwnRoot {
		p = "/proc/" + strconv.Itoa(req.Tid) + "/root" + obj.Path
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		// Not readable by vigil (or not there any more): the kernel will
		// map this very file if it can, so bind it as it is.
		return "", nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Dev != obj.Dev || st.Ino != obj.Ino {
		// Replaced since it was resolved: refuse rather than guess.
		return "", unix.EAGAIN
	}
	buf := r.link[:256]
	n, _ := unix.Pread(fd, buf, 0)
	if n < 3 || buf[0] != '#' || buf[1] != '!' {
		return "", nil
	}
	line := buf[2:n]
	if i := strings.IndexByte(string(line), '\n'); i >= 0 {
		line = line[:i]
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return "", nil
	}
	return f[0], nil
}
