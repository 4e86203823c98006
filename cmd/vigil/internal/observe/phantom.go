package observe

import (
	"bytes"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/loader"
)

// Verdict is what the phantom check concluded about one call.
type Verdict uint8

const (
	// NotJudged: nothing to compare (not an open or exec, a failed call, no
	// object).
	NotJudged Verdict = iota
	// Literal: the path argument spells, component by component, the
	// kernel's path of the object below the object the lookup started
	// from. The kernel itself passed through that start (captured at
	// sys_enter), so the argument named what the kernel opened.
	Literal
	// Resolved: the spelling differs (symlinks, ".."), and looking the
	// argument up again from the same start objects found the kernel's
	// object.
	Resolved
	// KernelName: an exec whose filename the kernel copied is byte for
	// byte what user memory held at sys_enter.
	KernelName
	// Phantom: user memory at sys_enter named another object than the
	// kernel used: a racing rewrite of the argument, a symlink swapped
	// under the lookup, or a descriptor replaced between sys_enter and the
	// kernel's lookup.
	Phantom
	// Unchecked: the spelling differs and the lookup could not be
	// repeated from the same start objects (they are gone or replaced, a
	// magic link, procfs); never flagged.
	Unchecked
)

func (v Verdict) String() string {
	switch v {
	case NotJudged:
		return "not judged"
	case Literal:
		return "literal"
	case Resolved:
		return "resolved"
	case KernelName:
		return "kernel name"
	case Phantom:
		return "phantom"
	case Unchecked:
		return "unchecked"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// judge decides whether calls are phantoms. It is used by one goroutine.
type judge struct {
	// rootfd is vigil's own root, O_PATH; root its identity. A watchee
	// whose root at sys_enter was this same object (same mount) resolves
	// absolute paths exactly as a lookup from rootfd does.
	rootfd int
	root   loader.ObjectIdent
	// dirs caches O_PATH descriptors of start and root directories by the
	// identity they were verified to have. A descriptor pins its inode and
	// mount, so the identity cannot pass to another object while cached.
	dirs  map[loader.ObjectIdent]int
	buf   []byte
	comps [][]byte
}

// maxCachedDirs bounds judge.dirs.
const maxCachedDirs = 128

func newJudge() (*judge, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening vigil's root: %w", err)
	}
	id, err := identOf(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("identifying vigil's root: %w", err)
	}
	return &judge{rootfd: fd, root: id, dirs: make(map[loader.ObjectIdent]int), buf: make([]byte, 0, 256)}, nil
}

func (j *judge) close() {
	for _, fd := range j.dirs {
		unix.Close(fd)
	}
	unix.Close(j.rootfd)
}

// remember caches fd as the directory with identity id; j owns it then.
func (j *judge) remember(id loader.ObjectIdent, fd int) {
	if len(j.dirs) >= maxCachedDirs {
		for k, v := range j.dirs {
			unix.Close(v)
			delete(j.dirs, k)
			break
		}
	}
	j.dirs[id] = fd
}

// identOf returns the identity of the file behind fd, as the programs
// capture it.
func identOf(fd int) (loader.ObjectIdent, error) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_INO|unix.STATX_MNT_ID, &st); err != nil {
		return loader.ObjectIdent{}, err
	}
	id := loader.ObjectIdent{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino}
	if st.Mask&unix.STATX_MNT_ID != 0 {
		id.MntID = uint32(st.Mnt_id)
	}
	return id, nil
}

// sameObject compares the kernel's object with one statx describes. The
// inode number decides; device or mount agreeing is enough for the rest,
// because stacking filesystems (overlayfs) may report another st_dev than
// the superblock the kernel holds.
func sameObject(k, u loader.ObjectIdent) bool {
	return k.Ino == u.Ino && (k.Dev == u.Dev || (k.MntID != 0 && k.MntID == u.MntID))
}

// judge returns c's verdict and, for Phantom and Unchecked, why.
func (j *judge) judge(c loader.Call) (Verdict, string) {
	nr, f := c.Nr(), c.Flags()
	switch nr {
	case unix.SYS_EXECVE, unix.SYS_EXECVEAT:
		if !f.Has(loader.FlagObsKNameChecked) {
			return NotJudged, ""
		}
		if f.Has(loader.FlagObsKNameDiffers) {
			return Phantom, "the kernel's own copy of the filename differs from what user memory held at sys_enter"
		}
		return KernelName, ""
	case unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CREAT:
	default:
		return NotJudged, ""
	}
	if !f.Has(loader.FlagObsHasRet) || c.Ret() < 0 || !f.Has(loader.FlagObsHasObject) {
		return NotJudged, ""
	}
	switch {
	case !f.Has(loader.FlagObsHasPath):
		return Unchecked, "path argument unreadable"
	case f.Has(loader.FlagObsPathTrunc):
		return Unchecked, "path argument longer than PATH_MAX"
	case c.StartKind() == loader.StartNone || c.Errors()&loader.ErrObsStartUnreadable != 0:
		return Unchecked, "the lookup's start directory was unreadable at sys_enter"
	}
	if f.Has(loader.FlagObsStartFound) && spellsBelow(c.Path(), c.KPath()[c.StartOff():]) {
		return Literal, ""
	}
	if !f.Has(loader.FlagObsKPathTrunc) {
		if sp := startPath(c); sp != nil && j.spellsLexically(sp, c.Path(), c.KPath()) {
			return Literal, ""
		}
	}
	return j.resolve(c)
}

// spellsLexically reports whether path, looked up from the start object
// whose kernel path is spath, names kpath when ".." removes the component
// before it (and stops at the root): what the kernel does when none of
// those components is a symlink. A match means the kernel's object is what
// the bytes spell; anything else goes to a repeated lookup.
func (j *judge) spellsLexically(spath, path, kpath []byte) bool {
	if bytes.IndexByte(path, '.') < 0 {
		return false // no "..": spellsBelow already decided
	}
	st := j.comps[:0]
	push := func(p []byte) {
		for len(p) > 0 {
			comp := p
			if k := bytes.IndexByte(p, '/'); k >= 0 {
				comp, p = p[:k], p[k+1:]
			} else {
				p = nil
			}
			switch {
			case len(comp) == 0 || string(comp) == ".":
			case string(comp) == "..":
				if len(st) > 0 {
					st = st[:len(st)-1]
				}
			default:
				st = append(st, comp)
			}
		}
	}
	if len(path) == 0 || path[0] != '/' {
		push(spath)
	}
	push(path)
	j.comps = st[:0]
	i := 0
	for _, comp := range st {
		if i >= len(kpath) || kpath[i] != '/' || !bytes.HasPrefix(kpath[i+1:], comp) {
			return false
		}
		i += 1 + len(comp)
	}
	return i == len(kpath) || (len(st) == 0 && string(kpath) == "/")
}

// spellsBelow reports whether path, looked up from some start object,
// names the components of rel (the kernel's path below that start: "" or
// "/a/b") one by one: no symlink, no "..", only empty and "." components
// besides.
func spellsBelow(path, rel []byte) bool {
	i := 0
	for len(path) > 0 {
		comp := path
		if k := bytes.IndexByte(path, '/'); k >= 0 {
			comp, path = path[:k], path[k+1:]
		} else {
			path = nil
		}
		switch {
		case len(comp) == 0 || (len(comp) == 1 && comp[0] == '.'):
			continue
		case len(comp) == 2 && comp[0] == '.' && comp[1] == '.':
			return false
		}
		if i >= len(rel) || rel[i] != '/' || !bytes.HasPrefix(rel[i+1:], comp) {
			return false
		}
		i += 1 + len(comp)
		if i < len(rel) && rel[i] != '/' {
			return false
		}
	}
	return i == len(rel)
}

// procSuperMagic is PROC_SUPER_MAGIC (include/uapi/linux/magic.h).
const procSuperMagic = 0x9fa0

// resolve repeats an open's lookup from the start objects the programs
// captured at sys_enter, reached without the watchee's descriptor numbers
// where possible (the start's kernel path from the root, checked by
// identity), and compares the result with the kernel's object.
func (j *judge) resolve(c loader.Call) (Verdict, string) {
	if c.FsMagic() == procSuperMagic {
		return Unchecked, "procfs object (its inodes are made per lookup)"
	}
	switch c.Mode() & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
	default:
		return Unchecked, "the object has no name (reached through a magic link)"
	}
	flags, resolveFlags := openFlags(c)
	base, path, extra, why := j.lookupFrom(c, resolveFlags&unix.RESOLVE_IN_ROOT != 0)
	if why != "" {
		return Unchecked, why
	}
	// Magic links (/proc/PID/fd/N, cwd, root) name whatever the watchee
	// holds at the time of the lookup: not repeatable later. Without them,
	// a path that leaves procfs's non-magic links ("self") on procfs names
	// a procfs object, which the kernel's object (checked above) is not.
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS | extra}
	// O_CREAT|O_EXCL never follows a final symlink (fs/namei.c
	// open_last_lookups).
	if flags&unix.O_NOFOLLOW != 0 || flags&(unix.O_CREAT|unix.O_EXCL) == unix.O_CREAT|unix.O_EXCL {
		how.Flags |= unix.O_NOFOLLOW
	}
	fd, err := openat2(base, path, &how)
	switch err {
	case nil:
	case unix.ELOOP:
		return Unchecked, "the path goes through a magic link (/proc/PID/fd, cwd, root)"
	default:
		return Unchecked, "the argument no longer resolves: " + unix.ErrnoName(err.(unix.Errno))
	}
	defer unix.Close(fd)
	id, err := identOf(fd)
	if err != nil {
		return Unchecked, "identifying the argument's object: " + err.Error()
	}
	if sameObject(c.Object(), id) {
		return Resolved, ""
	}
	// The argument names another object now. If the kernel's object is
	// no longer at its own path either, the names changed after the call
	// (a build replacing its output under a symlinked directory): that is
	// not evidence against what the kernel did.
	if !j.stillNamed(c, resolveFlags&unix.RESOLVE_IN_ROOT != 0) {
		return Unchecked, "the kernel's object was moved, replaced or removed after the call"
	}
	return Phantom, "the argument names " + j.fdPath(fd) + " (ino " + strconv.FormatUint(id.Ino, 10) +
		") but the kernel opened " + string(c.KPath()) + " (ino " + strconv.FormatUint(c.Object().Ino, 10) + ")"
}

// stillNamed reports whether the kernel's path of c's object, from the
// root the lookup had, still names that object (no symlink followed).
func (j *judge) stillNamed(c loader.Call, inRoot bool) bool {
	if c.Flags().Has(loader.FlagObsKPathTrunc) || len(c.KPath()) == 0 {
		return false
	}
	var root int
	var why string
	if inRoot {
		root, why = j.procDir(c, c.StartKind(), c.Start())
	} else {
		root, why = j.rootOf(c)
	}
	if why != "" {
		return false
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2(root, string(c.KPath()), &how)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	id, err := identOf(fd)
	return err == nil && sameObject(c.Object(), id)
}

// openat2 is unix.Openat2, retried on EAGAIN: with RESOLVE_IN_ROOT (or
// BENEATH) a ".." fails that way whenever a rename anywhere on the system
// raced the lookup (fs/namei.c, rename_lock), which is no verdict.
func openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for try := 0; ; try++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if err != unix.EAGAIN || try == 8 {
			return fd, err
		}
	}
}

// openFlags returns the call's open flags and openat2's resolve flags.
func openFlags(c loader.Call) (flags, resolve uint64) {
	switch c.Nr() {
	case unix.SYS_OPEN:
		return c.Arg(1), 0
	case unix.SYS_OPENAT:
		return c.Arg(2), 0
	case unix.SYS_CREAT:
		return unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, 0
	case unix.SYS_OPENAT2:
		f, _, r := c.How()
		return f, r
	}
	return 0, 0
}

// lookupFrom returns how to repeat c's lookup: a directory descriptor
// (owned by the judge), the path to look up from it and the resolve flags
// that make it the same lookup; or why it cannot be repeated.
//
//   - absolute path: the task's root at sys_enter, with RESOLVE_IN_ROOT;
//   - relative path, same root as vigil: the start directory itself;
//   - relative path, another root (chroot): the start's kernel path joined
//     with the argument, from the task's root, with RESOLVE_IN_ROOT (".."
//     and absolute symlinks stay inside that root, as for the kernel);
//   - openat2 RESOLVE_IN_ROOT: the dirfd is the root and the start.
func (j *judge) lookupFrom(c loader.Call, inRoot bool) (fd int, path string, resolve uint64, why string) {
	kind, arg := c.StartKind(), c.Path()
	if inRoot {
		fd, why = j.procDir(c, kind, c.Start())
		return fd, string(arg), unix.RESOLVE_IN_ROOT, why
	}
	rootfd, why := j.rootOf(c)
	if why != "" {
		return -1, "", 0, why
	}
	if kind == loader.StartRoot {
		return rootfd, string(arg), unix.RESOLVE_IN_ROOT, ""
	}
	spath := startPath(c)
	sameRoot := c.Root() == j.root
	if fd, ok := j.dirs[c.Start()]; ok && sameRoot {
		return fd, string(arg), 0, ""
	}
	if spath != nil {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		if sfd, err := openat2(rootfd, string(spath), &how); err == nil {
			if id, err := identOf(sfd); err == nil && id == c.Start() {
				if sameRoot {
					j.remember(id, sfd)
					return sfd, string(arg), 0, ""
				}
				unix.Close(sfd)
				j.buf = append(append(append(j.buf[:0], spath...), '/'), arg...)
				return rootfd, string(j.buf), unix.RESOLVE_IN_ROOT, ""
			}
			unix.Close(sfd)
		}
	}
	if !sameRoot {
		return -1, "", 0, "the start directory of a relative lookup in another root is gone or was replaced"
	}
	fd, why = j.procDir(c, kind, c.Start())
	return fd, string(arg), 0, why
}

// startPath is the kernel's path of c's start object from its root, or
// nil: the part of the object's path above the start when the walk met it,
// else the start's own path the programs recorded.
func startPath(c loader.Call) []byte {
	switch f := c.Flags(); {
	case f.Has(loader.FlagObsStartFound) && !f.Has(loader.FlagObsKPathTrunc):
		if p := c.KPath()[:c.StartOff()]; len(p) > 0 {
			return p
		}
		return []byte{'/'}
	case f.Has(loader.FlagObsStartPath):
		return c.SPath()
	}
	return nil
}

// rootOf returns a descriptor on c's root at sys_enter: vigil's own, a
// cached one, or the watchee's through /proc, checked by identity.
func (j *judge) rootOf(c loader.Call) (int, string) {
	id := c.Root()
	if id == j.root {
		return j.rootfd, ""
	}
	if fd, ok := j.dirs[id]; ok {
		return fd, ""
	}
	return j.openProc(c.Tid(), "root", id)
}

// procDir opens the watchee's cwd or dirfd through /proc and checks that
// it is still the object captured at sys_enter.
func (j *judge) procDir(c loader.Call, kind loader.StartKind, want loader.ObjectIdent) (int, string) {
	if fd, ok := j.dirs[want]; ok {
		return fd, ""
	}
	if kind == loader.StartCwd {
		return j.openProc(c.Tid(), "cwd", want)
	}
	return j.openProc(c.Tid(), "fd/"+strconv.Itoa(int(int32(c.Arg(0)))), want)
}

// openProc opens /proc/<tid>/<name> with O_PATH, checks its identity and
// caches it.
func (j *judge) openProc(tid int, name string, want loader.ObjectIdent) (int, string) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/"+name, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "the lookup's start directory is gone (thread exited or descriptor closed)"
	}
	if id, err := identOf(fd); err != nil || id != want {
		unix.Close(fd)
		return -1, "the lookup's start directory was replaced since sys_enter"
	}
	j.remember(want, fd)
	return fd, ""
}

// fdPath is the path of one of vigil's descriptors, for messages.
func (j *judge) fdPath(fd int) string {
	b := make([]byte, unix.PathMax)
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), b)
	if err != nil {
		return "?"
	}
	return string(b[:n])
}
