// Package resolve finds the object a watchee's path argument names, in the
// watchee's own view — its root (/proc/<tid>/root, which also carries its
// mount namespace), its cwd or dirfd, symlinks followed exactly where the
// syscall would follow them, /proc magic links followed to the object the
// watchee's descriptor holds, openat2's RESOLVE_* flags honoured — and names
// that object in the reference view (package view): policy is matched on the
// object's reference name, never on the spelling (docs/reference-view.md).
//
// Vetting must not have side effects, so every open is O_PATH. The fast path
// is one openat2(2) from the watchee's root or cwd with RESOLVE_NO_MAGICLINKS
// (vigil's /proc/self is not the watchee's); whatever it cannot settle
// (magic links, /proc/self, dangling symlinks under O_CREAT, relative paths of
// chrooted watchees, objects whose name needs their directory) goes to a
// component-by-component walk.
package resolve

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/view"
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
	// Entry says the call acts on the final name itself: it creates,
	// removes or renames it (the kernel's LOOKUP_PARENT calls), or opens
	// it with O_CREAT. The kernel then looks the name up without letting a
	// trailing slash follow a final symlink or require a directory; the
	// call decides what the slash means (mkdir("file/") is EEXIST,
	// unlink("link/") ENOTDIR, open("x/", O_CREAT) EISDIR).
	Entry bool
	// Identity is kept for callers that asked for Dev, Ino and Mode; every
	// lookup reports them now (naming needs the same statx).
	Identity bool
	// OwnRoot is the caller's guarantee that the watchee's root directory
	// and mount namespace are vigil's own (see enforcer's root tracking).
	// Absolute paths then resolve without opening /proc/<tid>/root.
	OwnRoot bool
	// Resolve holds openat2's RESOLVE_* flags, honoured as the kernel does.
	Resolve uint64
	// Keep asks for a descriptor of the result in Object.Fd (and of the
	// directory it was found in, in Object.ParentFd).
	Keep bool
	// Parent asks for the identity of the directory the final component
	// was found in (Object.ParentDev, ParentIno), which only the walk knows.
	Parent bool
}

// Object is what a path names.
type Object struct {
	// Path is the object's name in the reference view (package view); for
	// a missing final component, its parent's name plus the final name.
	Path string
	// Exists is false when the final component is missing; Dev and Ino then
	// identify the parent directory.
	Exists   bool
	Dev, Ino uint64
	// Mode is the object's st_mode (0 when missing).
	Mode uint32
	// Name is the final component the lookup ended on ("" for a magic link,
	// "/" for the root).
	Name string
	// Rdev is the device a device node stands for.
	Rdev uint64
	// MntID is the mount the object was found on (its parent's for a
	// missing name), and FastName reports that Path is also the kernel's
	// path of the object from the reference root (view.Reference.Fast).
	MntID    int
	FastName bool
	// Magic reports that a /proc magic link led to the object, and
	// ForeignMagic that one of them belonged to another process than the
	// watchee (following it takes the ptrace access the kernel checks).
	Magic, ForeignMagic bool
	// Fd is, with Request.Keep, an O_PATH descriptor of the object (of its
	// parent directory when it does not exist); the caller closes it.
	// -1 otherwise.
	Fd int
	// ParentFd is, with Request.Keep, an O_PATH descriptor of the directory
	// the final component Name was found in, when the walk knows it (not
	// after a magic link as the last step, nor on the fast paths); -1
	// otherwise. The caller closes it.
	ParentFd int
	// ParentDev and ParentIno identify that directory (0 when unknown).
	ParentDev, ParentIno uint64
}

// Close closes Fd and ParentFd, if any.
func (o *Object) Close() {
	if o.Fd >= 0 {
		unix.Close(o.Fd)
		o.Fd = -1
	}
	if o.ParentFd >= 0 {
		unix.Close(o.ParentFd)
		o.ParentFd = -1
	}
}

// ErrProtected refuses a lookup through vigil's own /proc entries (or those
// of its helpers): a watchee with CAP_SYS_PTRACE could write vigil's memory
// or take its descriptors.
var ErrProtected = errors.New("path names vigil's own process in /proc")

// Resolver resolves paths for one notify loop. It is not safe for concurrent
// use; each loop owns one.
type Resolver struct {
	ref              *view.Reference
	selfDev, selfIno uint64
	selfProc         string // "/proc/<vigil pid>": results inside it mean /proc/self leaked
	selfPid          int
	// pidNSDev and pidNSIno identify vigil's pid namespace.
	pidNSDev, pidNSIno uint64
	// Protected reports pids (besides vigil's own) whose /proc entries
	// watchees may not use: vigil's helper processes.
	Protected func(pid int) bool
	fdPath    []byte
	link      []byte
	// cpath holds the NUL-terminated path of the last openat2.
	cpath []byte
	// forceWalk makes tests take the component walk for every lookup.
	forceWalk bool
}

// New returns a Resolver naming objects in vigil's own view.
func New() (*Resolver, error) {
	ref, err := view.Own()
	if err != nil {
		return nil, fmt.Errorf("capturing vigil's own view: %w", err)
	}
	return NewIn(ref)
}

// NewIn returns a Resolver naming objects in the reference view ref.
func NewIn(ref *view.Reference) (*Resolver, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return nil, fmt.Errorf("stat of vigil's root: %w", err)
	}
	var ns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &ns); err != nil {
		return nil, fmt.Errorf("stat of vigil's pid namespace: %w", err)
	}
	return &Resolver{
		ref:      ref,
		selfDev:  st.Dev,
		selfIno:  st.Ino,
		pidNSDev: ns.Dev,
		pidNSIno: ns.Ino,
		selfPid:  os.Getpid(),
		selfProc: "/proc/" + strconv.Itoa(os.Getpid()),
		fdPath:   make([]byte, 0, 64),
		link:     make([]byte, unix.PathMax),
	}, nil
}

// Reference returns the view objects are named in.
func (r *Resolver) Reference() *view.Reference { return r.ref }

// Resolve looks req.Path up. Errors are the errno the kernel would give the
// watchee for the lookup (ENOENT, ENOTDIR, ELOOP, EBADF, EXDEV,
// ENAMETOOLONG...), ESRCH when the thread is gone, ErrProtected, or a view
// error when the object has no reference name (the caller fails closed).
func (r *Resolver) Resolve(req Request) (Object, error) {
	if req.Path == "" {
		return Object{Fd: -1, ParentFd: -1}, unix.ENOENT
	}
	if len(req.Path) >= unix.PathMax {
		return Object{Fd: -1, ParentFd: -1}, unix.ENAMETOOLONG
	}
	scoped := req.Resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0
	// openat2 would read an entry's trailing slash as "a directory,
	// followed": only the walk leaves it to the call.
	walkOnly := req.Parent || r.forceWalk || req.Entry && strings.HasSuffix(req.Path, "/")
	if req.Resolve&unix.RESOLVE_BENEATH != 0 && req.Path[0] == '/' {
		return Object{Fd: -1, ParentFd: -1}, unix.EXDEV
	}
	if req.OwnRoot && req.Path[0] == '/' && !scoped && req.Resolve == 0 && !walkOnly {
		if obj, err, settled := r.lexical(req); settled {
			return obj, err
		}
	}
	rootfd, err := r.openProc(req.Tid, "root")
	if err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	defer unix.Close(rootfd)
	var rst unix.Stat_t
	if err := unix.Fstat(rootfd, &rst); err != nil {
		return Object{Fd: -1, ParentFd: -1}, unix.ESRCH
	}
	sameRoot := rst.Dev == r.selfDev && rst.Ino == r.selfIno
	ctx := walkCtx{r: r, req: req, rootfd: rootfd, sameRoot: sameRoot}

	abs := req.Path[0] == '/'
	basefd := rootfd
	if !abs || scoped {
		basefd, err = r.openBase(req.Tid, req.Dirfd)
		if err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		defer unix.Close(basefd)
	}
	if scoped {
		// The lookup's root is the dirfd: absolute paths, absolute
		// symlinks and ".." stay beneath it (RESOLVE_IN_ROOT) or fail
		// with EXDEV (RESOLVE_BENEATH).
		ctx.rootfd = basefd
		ctx.sameRoot = false
	}
	if (abs || sameRoot || scoped) && !walkOnly {
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
// the cleaned spelling is the object's path — in the reference view too, as
// long as the object's mount is one the reference view captured and no
// watchee changed a mount topology since (view.Reference.Fast). Whatever
// involves a symlink (ELOOP) or another mount is not settled here.
func (r *Resolver) lexical(req Request) (Object, error, bool) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
	if !req.Follow {
		// With O_PATH|O_NOFOLLOW a final symlink is returned, not refused.
		how.Flags |= unix.O_NOFOLLOW
	}
	fd, err := r.openat2(unix.AT_FDCWD, req.Path, &how)
	switch err {
	case nil:
		obj, ok := r.fastObject(fd, path.Clean(req.Path), req.Keep)
		if !ok {
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		obj.Exists = true
		return obj, nil, true
	case unix.ENOENT:
		if !req.MayCreate {
			return Object{Fd: -1, ParentFd: -1}, unix.ENOENT, true
		}
		dir, name := splitLast(req.Path)
		if name == "" {
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		dfd, derr := r.openat2(unix.AT_FDCWD, dir, &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_NO_SYMLINKS})
		if derr != nil {
			// A symlink in the parent, or the kernel's own error: let the
			// full resolution decide.
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		// The parent exists and holds no symlink; the final name does not
		// exist (a dangling symlink there would have given ELOOP).
		obj, ok := r.fastObject(dfd, path.Clean(dir), req.Keep)
		if !ok {
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		obj.Path, obj.Name, obj.Mode = path.Join(obj.Path, name), name, 0
		return obj, nil, true
	case unix.ELOOP, unix.EAGAIN, unix.ENOSYS, unix.E2BIG, unix.EXDEV, unix.EACCES:
		// EACCES: vigil's credentials were judged, not the watchee's —
		// fs.protected_symlinks refuses root a symlink another user
		// owns in a sticky directory before RESOLVE_NO_SYMLINKS says
		// ELOOP (fast, below).
		return Object{Fd: -1, ParentFd: -1}, nil, false
	}
	return Object{Fd: -1, ParentFd: -1}, err, true
}

// fastObject describes fd, found by the lexical path under the name p, when
// p is its reference name. It takes fd over.
func (r *Resolver) fastObject(fd int, p string, keep bool) (Object, bool) {
	var stx unix.Statx_t
	if statxFd(fd, unix.AT_SYMLINK_NOFOLLOW, view.StatxMask, &stx) != nil ||
		!r.ref.Own() || !r.ref.Fast(int(stx.Mnt_id)) || r.leaksSelf(p) || procPid(p) {
		unix.Close(fd)
		return Object{Fd: -1, ParentFd: -1}, false
	}
	obj := Object{Path: p, Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino, Mode: uint32(stx.Mode),
		Rdev: unix.Mkdev(stx.Rdev_major, stx.Rdev_minor), Name: path.Base(p), Fd: -1, ParentFd: -1,
		MntID: int(stx.Mnt_id), FastName: true}
	if keep {
		obj.Fd = fd
	} else {
		unix.Close(fd)
	}
	return obj, true
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
	r        *Resolver
	req      Request
	rootfd   int
	sameRoot bool
	// rootPath caches how vigil reads the watchee's root ("" until asked).
	rootPath string
	// ids caches the watchee's ids in the procfs of device idsDev: a walk
	// through /proc/self asks for them again at the pid directory.
	idsDev          uint64
	idsTgid, idsTid string
}

// fast tries one openat2. settled is false when the walk must decide.
func (c *walkCtx) fast(basefd int, abs bool) (obj Object, err error, settled bool) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS | c.req.Resolve&^0x20}
	if !c.req.Follow {
		how.Flags |= unix.O_NOFOLLOW
	}
	if abs {
		how.Resolve |= unix.RESOLVE_IN_ROOT
	}
	fd, err := c.r.openat2(basefd, c.req.Path, &how)
	switch err {
	case nil:
		obj, err := c.describe(fd, -1, "", true)
		if err != nil {
			unix.Close(fd)
			if errors.Is(err, view.ErrNeedParent) || errors.Is(err, errLeak) {
				return Object{Fd: -1, ParentFd: -1}, nil, false
			}
			return Object{Fd: -1, ParentFd: -1}, err, true
		}
		obj.Name = lastName(c.req.Path)
		c.keepOrClose(&obj, fd)
		return obj, nil, true
	case unix.ENOENT:
		if c.req.MayCreate || c.r.foreignPidNS(c.req.Tid) || c.mayCrossProc(basefd, how) {
			// Only the walk resolves /proc/self (or /dev/fd, which leads
			// there) as the watchee's: vigil's own "self" names another
			// process, and in another pid namespace (a container) none.
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		return Object{Fd: -1, ParentFd: -1}, unix.ENOENT, true
	case unix.EACCES:
		// vigil's credentials, not the watchee's, were judged: root is
		// refused a symlink another user owns in a sticky world-writable
		// directory (fs.protected_symlinks) that its owner may follow.
		// The walk reads links without following them; permissions are
		// then the kernel's for the watchee's own call, or the
		// emulation worker's, which takes the watchee's credentials.
		return Object{Fd: -1, ParentFd: -1}, nil, false
	case unix.ELOOP, unix.EXDEV, unix.EAGAIN, unix.ENOSYS, unix.E2BIG:
		if err == unix.EXDEV && c.req.Resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_NO_XDEV) != 0 {
			// Possibly the watchee's own flags refusing; the walk tells
			// which (it also sees magic links, which give EXDEV here).
			return Object{Fd: -1, ParentFd: -1}, nil, false
		}
		return Object{Fd: -1, ParentFd: -1}, nil, false
	}
	return Object{Fd: -1, ParentFd: -1}, err, true
}

// mayCrossProc reports whether an ENOENT of the fast path may come from a
// procfs directory, whose contents depend on who reads it (vigil has no fd
// 63 where the watchee does): the parent of the missing name is looked up
// with the same flags, and only a parent that exists and is not on procfs
// makes the ENOENT the watchee's.
func (c *walkCtx) mayCrossProc(basefd int, how unix.OpenHow) bool {
	dir, name := splitLast(c.req.Path)
	if name == "" {
		return true
	}
	h := how
	h.Flags = unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY
	dfd, err := c.r.openat2(basefd, dir, &h)
	if err != nil {
		return true
	}
	defer unix.Close(dfd)
	return isProc(dfd)
}

func (c *walkCtx) keepOrClose(obj *Object, fd int) {
	if c.req.Keep {
		obj.Fd = fd
		return
	}
	obj.Fd = -1
	unix.Close(fd)
}

func lastName(p string) string {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "/"
	}
	return p[strings.LastIndexByte(p, '/')+1:]
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

// errLeak marks a fast-path result that went through vigil's own /proc/self.
var errLeak = errors.New("lookup went through vigil's /proc/self")

// leaksSelf reports whether a result passed through vigil's own /proc/self,
// which names a different process than the watchee's.
func (r *Resolver) leaksSelf(p string) bool {
	s := r.selfProc
	return strings.HasPrefix(p, s) && (len(p) == len(s) || p[len(s)] == '/')
}

// procPid reports whether p lies in a /proc/<pid> directory.
func procPid(p string) bool {
	rest, ok := strings.CutPrefix(p, "/proc/")
	return ok && rest != "" && rest[0] >= '0' && rest[0] <= '9'
}

// describe names the object fd holds in the reference view. parent and base
// are the directory it was found in and its name there (-1 if unknown).
// fast marks fast-path results, which must not have gone through vigil's
// own /proc/self.
func (c *walkCtx) describe(fd, parent int, base string, fast bool) (Object, error) {
	var stx unix.Statx_t
	if err := statxFd(fd, unix.AT_SYMLINK_NOFOLLOW, view.StatxMask, &stx); err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	name, err := c.r.ref.Name(&view.Object{Fd: fd, Stx: &stx, Parent: parent, Base: base, Tid: c.req.Tid, WatcheeRoot: c.watcheeRoot})
	if err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	if fast && (c.r.leaksSelf(name) || procPid(name)) {
		// Through vigil's own /proc/self, or into a /proc/<pid>
		// directory the walk must check (ErrProtected).
		return Object{Fd: -1, ParentFd: -1}, errLeak
	}
	return Object{Path: name, Exists: true, Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino, Mode: uint32(stx.Mode),
		Rdev: unix.Mkdev(stx.Rdev_major, stx.Rdev_minor), Fd: -1, ParentFd: -1,
		MntID: int(stx.Mnt_id), FastName: c.r.ref.Fast(int(stx.Mnt_id))}, nil
}

// watcheeRoot returns how vigil reads the path of the watchee's root.
func (c *walkCtx) watcheeRoot() string {
	if c.rootPath == "" {
		p, err := c.r.readFdLink(c.rootfd)
		if err != nil {
			return ""
		}
		c.rootPath = p
	}
	return c.rootPath
}

func (r *Resolver) readFdLink(fd int) (string, error) {
	r.fdPath = append(r.fdPath[:0], "/proc/self/fd/"...)
	r.fdPath = strconv.AppendInt(r.fdPath, int64(fd), 10)
	n, err := unix.Readlink(string(r.fdPath), r.link)
	if err != nil {
		return "", fmt.Errorf("reading path of fd %d: %w", fd, err)
	}
	return string(r.link[:n]), nil
}

// ResolveFd describes the object behind the watchee's fd (fsetxattr, or
// AT_EMPTY_PATH with a dirfd). With keep, Object.Fd holds it (O_PATH).
func (r *Resolver) ResolveFd(tid, fd int, keep bool) (Object, error) {
	if fd < 0 {
		return Object{Fd: -1, ParentFd: -1}, unix.EBADF
	}
	rootfd, err := r.openProc(tid, "root")
	if err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	defer unix.Close(rootfd)
	ofd, err := r.openProc(tid, "fd/"+strconv.Itoa(fd))
	if err != nil {
		var st unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(tid)+"/fd", &st) != nil {
			return Object{Fd: -1, ParentFd: -1}, unix.ESRCH
		}
		return Object{Fd: -1, ParentFd: -1}, unix.EBADF
	}
	c := walkCtx{r: r, req: Request{Tid: tid, Keep: keep}, rootfd: rootfd}
	obj, err := c.describe(ofd, -1, "", false)
	if err != nil {
		unix.Close(ofd)
		return Object{Fd: -1, ParentFd: -1}, err
	}
	obj.Magic = true
	c.keepOrClose(&obj, ofd)
	return obj, nil
}

// maxInterpreterDepth is the kernel's BINPRM_MAX_RECURSION: how many "#!"
// levels an exec may go through.
const maxInterpreterDepth = 4

// ExecTarget returns the object the kernel will map when the watchee execs
// obj: obj itself for a binary, or for a "#!" script the interpreter its
// first line names, resolved in the watchee's view (following nested
// scripts as binfmt_script does). obj must have been resolved with Keep: the
// script is read through its descriptor, so a swapped file is never read in
// its place.
func (r *Resolver) ExecTarget(req Request, obj Object) (Object, error) {
	fd := obj.Fd
	owned := false
	defer func() {
		if owned {
			unix.Close(fd)
		}
	}()
	for depth := 0; depth < maxInterpreterDepth; depth++ {
		interp, err := r.interpreter(fd, obj)
		if err != nil || interp == "" {
			obj.Fd = -1
			return obj, err
		}
		next := req
		next.Path, next.Dirfd, next.Follow, next.MayCreate, next.Identity, next.Keep, next.Resolve = interp, unix.AT_FDCWD, true, false, true, true, 0
		if obj, err = r.Resolve(next); err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		if owned {
			unix.Close(fd)
		}
		fd, owned = obj.Fd, true
	}
	return Object{Fd: -1, ParentFd: -1}, unix.ELOOP
}

// interpreter reads the "#!" line of the object fd holds, or returns "" for
// other files.
func (r *Resolver) interpreter(fd int, obj Object) (string, error) {
	if fd < 0 {
		return "", fmt.Errorf("reading the #! line of %s: no descriptor kept", obj.Path)
	}
	r.fdPath = append(r.fdPath[:0], "/proc/self/fd/"...)
	r.fdPath = strconv.AppendInt(r.fdPath, int64(fd), 10)
	rfd, err := unix.Open(string(r.fdPath), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		// Not readable by vigil: the kernel will map this very file if it
		// can, so bind it as it is.
		return "", nil
	}
	defer unix.Close(rfd)
	var st unix.Stat_t
	if err := unix.Fstat(rfd, &st); err != nil || st.Dev != obj.Dev || st.Ino != obj.Ino {
		return "", unix.EAGAIN
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", nil
	}
	buf := r.link[:256]
	n, _ := unix.Pread(rfd, buf, 0)
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
