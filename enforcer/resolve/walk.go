package resolve

import (
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/procinfo"
)

// procRootIno is the inode number of procfs's root (PROC_ROOT_INO).
const procRootIno = 1

// walk resolves path component by component the way fs/namei.c does, but from
// vigil with the watchee's root and base: ".." never climbs above the
// watchee's root (nor the dirfd of a scoped openat2), absolute symlinks
// restart at it, /proc/self and /proc/thread-self name the watchee, procfs
// magic links are followed through their explicit pid so they land on the
// watchee's objects, and RESOLVE_* flags refuse what the kernel refuses.
//
//	cur := base (or root for an absolute path); queue := components(path)
//	while queue: c := pop
//	    "." / "": skip;  "..": cur = parent(cur) unless cur is root (BENEATH: EXDEV)
//	    on procfs root: self -> <tgid>, thread-self -> <tgid>/task/<tid>;
//	                    vigil's own pids -> ErrProtected
//	    fd := openat(cur, c, O_PATH|O_NOFOLLOW)
//	    missing and last and mayCreate: object = cur + "/" + c
//	    NO_XDEV and fd on another mount: EXDEV
//	    symlink and (not last or follow):
//	        NO_SYMLINKS: ELOOP
//	        procfs: follow it as a magic link (NO_MAGICLINKS: ELOOP; scoped: EXDEV)
//	        else push readlink(fd) in front (absolute: cur = root; BENEATH: EXDEV)
//	    cur = fd, remembering the directory it was found in
func (c *walkCtx) walk(basefd int, path string, follow, mayCreate bool) (Object, error) {
	w := walkState{cur: -1, parent: -1, startMnt: -1, mustDir: strings.HasSuffix(path, "/") && !c.req.Entry}
	defer w.close()
	if err := c.start(&w, basefd, path); err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	w.queue = splitPath(path)
	for len(w.queue) > 0 {
		name := w.queue[0]
		w.queue = w.queue[1:]
		last := len(w.queue) == 0
		absent, err := c.step(&w, name, last, follow, mayCreate)
		if err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		if absent {
			// Also for a trailing slash: mkdir("newdir/") creates newdir.
			return c.missing(w.cur, name, w.magic)
		}
	}
	return c.finish(&w, path)
}

// walkState is one walk in progress. It owns the descriptors cur and parent
// (-1 when it holds none).
type walkState struct {
	// cur is the directory the walk stands in; after the last component,
	// the object itself.
	cur int
	// parent is the directory the final object was found in and base its
	// name there; -1 and "" when a "..", a symlink or a magic link made
	// them unknown.
	parent int
	base   string
	// startMnt is the mount RESOLVE_NO_XDEV keeps the walk on, -1 without.
	startMnt int
	// queue holds the components still to resolve; symlink targets are
	// pushed in front.
	queue []string
	// links counts the symlinks followed (at most maxSymlinks).
	links int
	// mustDir: the path ends in "/", so its object must be a directory
	// (unless the request is for an entry, Request.Entry).
	mustDir bool
	// magic: the walk followed a procfs magic link; foreign: one of another
	// process than the watchee.
	magic, foreign bool
	// ownPid says whether the last /proc/<pid> directory the walk entered
	// is the watchee's own, to tell its magic links from another process's.
	ownPid bool
}

// close releases the descriptors the walk still owns.
func (w *walkState) close() {
	if w.cur >= 0 {
		unix.Close(w.cur)
	}
	if w.parent >= 0 {
		unix.Close(w.parent)
	}
}

// dropParent forgets the directory the current object was found in.
func (w *walkState) dropParent() {
	if w.parent >= 0 {
		unix.Close(w.parent)
		w.parent, w.base = -1, ""
	}
}

// start places the walk at its base (the root for an absolute path) and
// notes the mount RESOLVE_NO_XDEV keeps it on.
func (c *walkCtx) start(w *walkState, basefd int, path string) error {
	cur, err := unix.Dup(basefd)
	if err != nil {
		return err
	}
	w.cur = cur
	if strings.HasPrefix(path, "/") {
		if err := c.reset(&w.cur, c.rootfd); err != nil {
			return err
		}
	}
	if c.req.Resolve&unix.RESOLVE_NO_XDEV != 0 {
		if w.startMnt, err = mountID(w.cur); err != nil {
			return err
		}
	}
	return nil
}

// step resolves component name in the walk's directory (last when no
// component follows it). absent reports a final component that does not
// exist and may be created; the caller describes it.
func (c *walkCtx) step(w *walkState, name string, last, follow, mayCreate bool) (absent bool, err error) {
	switch name {
	case "", ".":
		return false, nil
	case "..":
		if err := c.dotdot(&w.cur, w.startMnt); err != nil {
			return false, err
		}
		w.dropParent()
		return false, nil
	}
	if isProcRoot(w.cur) {
		if handled, err := c.procEntry(w, name); handled || err != nil {
			return false, err
		}
	}
	fd, err := unix.Openat(w.cur, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT && last && mayCreate {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var stx unix.Statx_t
	if err := w.statOnMount(fd, &stx); err != nil {
		return false, err
	}
	if stx.Mode&unix.S_IFMT == unix.S_IFLNK && (!last || follow || w.mustDir) {
		return false, c.followSymlink(w, fd, name, last)
	}
	return false, w.enter(fd, name, last, stx.Mode)
}

// procEntry handles name in a procfs root before it is opened: self and
// thread-self become the watchee's ids (handled: the walk goes on with
// them), vigil's own pids are ErrProtected, and whether name is the
// watchee's own pid directory is remembered for its magic links.
func (c *walkCtx) procEntry(w *walkState, name string) (handled bool, err error) {
	if sub := c.procSelf(w.cur, name); sub != "" {
		// /proc/self is a symlink the kernel follows for the caller.
		if err := c.countLink(w); err != nil {
			return true, err
		}
		w.queue = append(splitPath(sub), w.queue...)
		return true, nil
	}
	if c.protectedPid(w.cur, name) {
		return true, ErrProtected
	}
	w.ownPid = c.ownPidDir(w.cur, name)
	return false, nil
}

// countLink counts one more symlink the walk follows, refused (ELOOP) under
// RESOLVE_NO_SYMLINKS or beyond maxSymlinks, as the kernel refuses it.
func (c *walkCtx) countLink(w *walkState) error {
	if c.req.Resolve&unix.RESOLVE_NO_SYMLINKS != 0 {
		return unix.ELOOP
	}
	if w.links++; w.links > maxSymlinks {
		return unix.ELOOP
	}
	return nil
}

// statOnMount stats fd, the component just opened, refusing one on another
// mount under RESOLVE_NO_XDEV (EXDEV). It closes fd when it fails.
func (w *walkState) statOnMount(fd int, stx *unix.Statx_t) error {
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MNT_ID, stx); err != nil {
		unix.Close(fd)
		return err
	}
	if w.startMnt >= 0 && int(stx.Mnt_id) != w.startMnt {
		unix.Close(fd)
		return unix.EXDEV
	}
	return nil
}

// followSymlink follows symlink fd, named name in the walk's directory; it
// always closes fd. A procfs magic link is followed by the kernel; any other
// target's components are pushed in front of the queue (from the root for
// an absolute target).
func (c *walkCtx) followSymlink(w *walkState, fd int, name string, last bool) error {
	if err := c.countLink(w); err != nil {
		unix.Close(fd)
		return err
	}
	n, err := unix.Readlinkat(fd, "", c.r.link)
	unix.Close(fd)
	target := ""
	switch {
	case err == nil:
		target = string(c.r.link[:n])
	case err == unix.ENAMETOOLONG && isProc(w.cur):
		// A magic link to an object deeper than the kernel prints
		// (PATH_MAX): its text is not needed to follow it.
	default:
		return err
	}
	if isProc(w.cur) && !strings.HasPrefix(target, "self") && !strings.HasPrefix(target, "thread-self") {
		// A procfs magic link (fd/N, cwd, root, exe, ...) under an
		// explicit pid: its readlink text is a description, not a
		// path, so let the kernel follow it. Plain procfs symlinks
		// (mounts -> self/mounts) are walked below, where "self"
		// becomes the watchee's pid.
		if err := c.magicLink(&w.cur, name, last, w.startMnt); err != nil {
			return err
		}
		w.dropParent()
		w.magic = true
		w.foreign = w.foreign || !w.ownPid
		return nil
	}
	if strings.HasPrefix(target, "/") {
		// The kernel refuses to jump to the root through a symlink under
		// RESOLVE_NO_XDEV even when the root is on the same mount (seen
		// on 6.18), unlike an absolute path argument.
		if c.req.Resolve&(unix.RESOLVE_BENEATH|unix.RESOLVE_NO_XDEV) != 0 {
			return unix.EXDEV
		}
		if err := c.reset(&w.cur, c.rootfd); err != nil {
			return err
		}
		w.dropParent()
	}
	// A dangling final symlink under O_CREAT creates its target, so the
	// target's components keep the create semantics.
	w.queue = append(splitPath(target), w.queue...)
	return nil
}

// enter moves the walk onto fd, component name of mode mode, which only the
// last component may be other than a directory (ENOTDIR; fd is closed). The
// last component's directory is kept as the object's parent.
func (w *walkState) enter(fd int, name string, last bool, mode uint16) error {
	if !last && mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return unix.ENOTDIR
	}
	w.dropParent()
	if last {
		w.parent, w.base = w.cur, name
	} else {
		unix.Close(w.cur)
	}
	w.cur = fd
	return nil
}

// finish describes the object the walk ended on, with the directory it was
// found in, and hands the walk's descriptors to it when the request keeps
// them.
func (c *walkCtx) finish(w *walkState, path string) (Object, error) {
	if w.mustDir {
		var st unix.Stat_t
		if err := unix.Fstat(w.cur, &st); err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return Object{Fd: -1, ParentFd: -1}, unix.ENOTDIR
		}
	}
	obj, err := c.describe(w.cur, w.parent, w.base, false)
	if err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	obj.Name, obj.Magic, obj.ForeignMagic = w.base, w.magic, w.foreign
	if w.base == "" && !w.magic {
		obj.Name = lastName(path)
	}
	if w.parent >= 0 {
		var pst unix.Stat_t
		if err := unix.Fstat(w.parent, &pst); err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		obj.ParentDev, obj.ParentIno = pst.Dev, pst.Ino
	}
	if c.req.Keep {
		obj.Fd, w.cur = w.cur, -1
		obj.ParentFd, w.parent = w.parent, -1
	}
	return obj, nil
}

// magicLink follows procfs magic link name in cur to the object it names,
// refusing it as openat2's flags say (in the kernel's order: NO_MAGICLINKS,
// NO_XDEV, then scoped lookups).
func (c *walkCtx) magicLink(cur *int, name string, last bool, startMnt int) error {
	flags := c.req.Resolve
	if flags&(unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_SYMLINKS) != 0 {
		return unix.ELOOP
	}
	fd, err := unix.Openat(*cur, name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_MNT_ID, &stx); err != nil {
		unix.Close(fd)
		return err
	}
	if startMnt >= 0 && int(stx.Mnt_id) != startMnt {
		unix.Close(fd)
		return unix.EXDEV
	}
	if flags&(unix.RESOLVE_BENEATH|unix.RESOLVE_IN_ROOT) != 0 {
		unix.Close(fd)
		return unix.EXDEV
	}
	if !last && stx.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return unix.ENOTDIR
	}
	unix.Close(*cur)
	*cur = fd
	return nil
}

func mountID(fd int) (int, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return -1, err
	}
	return int(stx.Mnt_id), nil
}

func (c *walkCtx) reset(cur *int, to int) error {
	fd, err := unix.Dup(to)
	if err != nil {
		return err
	}
	unix.Close(*cur)
	*cur = fd
	return nil
}

func (c *walkCtx) dotdot(cur *int, startMnt int) error {
	var st, rst unix.Stat_t
	if err := unix.Fstat(*cur, &st); err != nil {
		return err
	}
	if err := unix.Fstat(c.rootfd, &rst); err != nil {
		return err
	}
	if st.Dev == rst.Dev && st.Ino == rst.Ino && sameMount(*cur, c.rootfd) {
		if c.req.Resolve&unix.RESOLVE_BENEATH != 0 {
			return unix.EXDEV
		}
		return nil
	}
	fd, err := unix.Openat(*cur, "..", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if startMnt >= 0 {
		if id, err := mountID(fd); err != nil || id != startMnt {
			unix.Close(fd)
			return unix.EXDEV
		}
	}
	unix.Close(*cur)
	*cur = fd
	return nil
}

func sameMount(a, b int) bool {
	x, err1 := mountID(a)
	y, err2 := mountID(b)
	return err1 == nil && err2 == nil && x == y
}

// procSelf rewrites /proc/self and /proc/thread-self of the procfs root
// procRoot, which procfs resolves for the *reading* process, into the
// watchee's explicit ids there.
func (c *walkCtx) procSelf(procRoot int, name string) string {
	if name != "self" && name != "thread-self" {
		return ""
	}
	tgid, tid := c.procIDs(procRoot)
	if name == "self" {
		return tgid
	}
	return tgid + "/task/" + tid
}

// protectedPid reports whether name, a directory of the procfs root cur,
// is vigil's own process or one of its helpers, as that procfs numbers
// them. A procfs of a pid namespace vigil is not in (a container's) does
// not show vigil at all.
func (c *walkCtx) protectedPid(cur int, name string) bool {
	pid, err := strconv.Atoi(name)
	if err != nil || pid <= 0 {
		return false
	}
	n, err := unix.Readlinkat(cur, "self", c.r.link)
	if err != nil {
		return false
	}
	self, err := strconv.Atoi(string(c.r.link[:n]))
	if err != nil {
		return false
	}
	tgid := pid
	if b, err := readAt(cur, name+"/status"); err == nil {
		if v, ok := statusField(b, "Tgid"); ok {
			tgid = v
		}
	}
	if tgid == self || pid == self {
		// vigil resolving for itself (tests do) may use its own entries.
		return c.req.Tgid != c.r.selfPid
	}
	// Helpers are numbered in vigil's own pid namespace: only when this
	// procfs numbers vigil as vigil does can the numbers be compared.
	return self == c.r.selfPid && c.r.Protected != nil && (c.r.Protected(tgid) || c.r.Protected(pid))
}

func readAt(dirfd int, p string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var buf [4096]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func statusField(b []byte, key string) (int, bool) {
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		return n, err == nil
	}
	return 0, false
}

// ownPidDir reports whether directory name of the procfs root procRoot is
// the watchee's own thread group, in that procfs's numbering (the watchee's
// pid namespace's, for a procfs it mounted; procIDs gives its ids there).
func (c *walkCtx) ownPidDir(procRoot int, name string) bool {
	if _, err := strconv.Atoi(name); err != nil {
		return false
	}
	tgid, tid := c.procIDs(procRoot)
	if name == tgid || name == tid {
		return true
	}
	b, err := readAt(procRoot, name+"/status")
	if err != nil {
		return false
	}
	t, ok := statusField(b, "Tgid")
	return ok && strconv.Itoa(t) == tgid
}

// procIDs is procIDs for this walk's watchee, asked once per procfs.
func (c *walkCtx) procIDs(procRoot int) (string, string) {
	var st unix.Stat_t
	if unix.Fstat(procRoot, &st) != nil {
		return procIDs(procRoot, c.req.Tgid, c.req.Tid)
	}
	if c.idsTgid == "" || c.idsDev != st.Dev {
		c.idsDev = st.Dev
		c.idsTgid, c.idsTid = procIDs(procRoot, c.req.Tgid, c.req.Tid)
	}
	return c.idsTgid, c.idsTid
}

// procIDs returns the watchee's thread-group and thread ids as the procfs
// whose root is procRoot numbers them. That procfs may belong to any of the
// watchee's pid namespaces: a container's /proc numbers it in the
// innermost, the host's /proc that runc init still has mounted after
// entering its new pid namespace numbers it as vigil does (vigil's ids name
// another process, or none, in the first; the innermost ids another process
// in the second: runc init reading /proc/self/mountinfo was killed for an
// object mismatch). NStgid and NSpid in /proc/<tid>/status (Linux 4.1) list
// the ids from vigil's namespace inward; the level is the one whose thread
// id, looked up in procRoot, is a thread that started when the watchee did
// (the same number at another level is another process). Without them,
// vigil's own view is the best guess.
func procIDs(procRoot, tgid, tid int) (string, string) {
	tgids, tids := nsIDLists(tid)
	if len(tgids) == 0 || len(tgids) != len(tids) {
		return strconv.Itoa(tgid), strconv.Itoa(tid)
	}
	last := len(tids) - 1
	if last == 0 {
		return tgids[0], tids[0]
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/stat"); err == nil {
		if start := startTime(b); start != "" {
			for i := last; i >= 0; i-- {
				if b, err := readAt(procRoot, tids[i]+"/stat"); err == nil && startTime(b) == start {
					return tgids[i], tids[i]
				}
			}
		}
	}
	return tgids[last], tids[last]
}

// startTime returns field 22 of a /proc/<pid>/stat line, the task's start
// in clock ticks since boot, or "".
func startTime(b []byte) string {
	f, _ := procinfo.StatField(b, 22)
	return string(f)
}

// nsIDLists returns NStgid and NSpid of thread tid as vigil's /proc shows
// them: its ids from vigil's pid namespace inward.
func nsIDLists(tid int) (tgids, tids []string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return nil, nil
	}
	return statusList(b, "NStgid"), statusList(b, "NSpid")
}

// statusList returns the fields of a /proc/<pid>/status line.
func statusList(b []byte, key string) []string {
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.Fields(v)
		}
	}
	return nil
}

// missing describes a final component that does not exist yet.
func (c *walkCtx) missing(dirfd int, name string, magic bool) (Object, error) {
	dir, err := c.describe(dirfd, -1, "", false)
	if err != nil {
		return Object{Fd: -1, ParentFd: -1}, err
	}
	if dir.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Object{Fd: -1, ParentFd: -1}, unix.ENOTDIR
	}
	p := dir.Path
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	obj := Object{Path: p + name, Exists: false, Dev: dir.Dev, Ino: dir.Ino, Name: name, Magic: magic, Fd: -1, ParentFd: -1,
		ParentDev: dir.Dev, ParentIno: dir.Ino}
	if c.req.Keep {
		fd, err := unix.Dup(dirfd)
		if err != nil {
			return Object{Fd: -1, ParentFd: -1}, err
		}
		fd2, err := unix.Dup(dirfd)
		if err != nil {
			unix.Close(fd)
			return Object{Fd: -1, ParentFd: -1}, err
		}
		obj.Fd, obj.ParentFd = fd, fd2
	}
	return obj, nil
}

func isProc(fd int) bool {
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC
}

func isProcRoot(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Ino == procRootIno && isProc(fd)
}

func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
